"""A precise second check for candidate near-duplicate pairs: align the two pictures, compare them tile by tile.

SSCD cosine and pHash distance are global summaries: charts drawn from one template with
different data look alike to both, while a cropped, bordered or captioned copy of one picture
can score lower than such a look-alike. This check looks at the pixels of one pair:

1. both images lose their uniform borders (udfs.signatures.trim_uniform_border);
2. alignment, per axis and separably: the column (row) profiles of the luminance's horizontal
   (vertical) gradient are matched at zooms 1.00-1.12, so a crop of up to ~10% per axis, on
   either image, is found; the likeliest alignments per axis are kept, and for each both images
   are resampled to the part they share, `CHECK_SIDE` pixels square;
3. the shared part is cut into GRID x GRID tiles; a tile matches when its normalised correlation
   (over the three colour channels, each centred: a block drawn yellow instead of blue differs)
   with the other image's tile, shifted by up to `SHIFT` pixels, is >= `TILE_NCC` after a slight
   blur of both (so brightness, contrast, recompression, resampling and a pixel of misalignment
   do not matter). Tiles flat in both images carry no evidence and are not counted.

The score is the share of informative tiles that match under the best alignment: copies score
~1 (a caption or watermark costs a few tiles), look-alike charts lose the tiles where their data
differ. Pure numpy and Pillow; a pair costs ~5 ms when the likeliest alignment settles it, up to
~40 ms when all CANDIDATES**2 are tried (one 2020s CPU core), plus ~10 ms to prepare each image.
Limits: a caption over a sparse chart can cover most of its informative tiles; tables drawn from
one template with different numbers agree at this resolution (see tests/bench/eval_dedup_quality.py).
"""

from __future__ import annotations

import io

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from udfs.signatures import trim_uniform_border

CHECK_SIDE = 128  # the shared part is compared at this side
PROFILE_SIDE = 96  # alignment works on profiles of this length
WORK_SIDE = 256  # prepared images keep at most this side (detail enough for CHECK_SIDE)
GRID = 8
SHIFT = 2
TILE_NCC = 0.7
FLAT = 3.0  # grey levels: a tile whose std is below this in both images is uninformative
ZOOMS = np.round(np.arange(1.0, 1.1201, 0.01), 3)
CANDIDATES = 3  # alignments kept per axis; the pair's score is the best of CANDIDATES**2
GOOD_ENOUGH = 0.97  # a score this high stops the search over alignments


def prepared(data: bytes) -> Image.Image:
    """Decoded, RGB, uniform borders trimmed, at most WORK_SIDE on its longest side."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = trim_uniform_border(image.convert("RGB"))
    if max(rgb.size) > WORK_SIDE:
        scale = WORK_SIDE / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BOX)
    return rgb


def _square(image: Image.Image, side: int, box=None) -> np.ndarray:
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR, box=box), dtype=np.float32)


def _blurred(square: np.ndarray) -> np.ndarray:
    """Binomial 5-tap blur (sigma ~1 pixel) each way: thin lines resampled differently still agree."""
    kernel = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16
    padded = np.pad(square, ((2, 2), (2, 2), (0, 0)), mode="edge")
    rows = sum(w * padded[:, k : k + square.shape[1]] for k, w in enumerate(kernel))
    return sum(w * rows[k : k + square.shape[0], :] for k, w in enumerate(kernel))


def _profiles(square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean |horizontal gradient| per column, mean |vertical gradient| per row, lightly smoothed."""
    kernel = np.array([1, 2, 1], dtype=np.float32) / 4
    columns = np.convolve(np.abs(np.diff(square, axis=1)).mean(axis=0), kernel, mode="same")
    rows = np.convolve(np.abs(np.diff(square, axis=0)).mean(axis=1), kernel, mode="same")
    return columns, rows


def _offsets(inner: np.ndarray, outer: np.ndarray) -> list[tuple[float, float, float]]:
    """(ncc, lo, hi) per zoom of ZOOMS: where `inner` best sits inside `outer` zoomed, as a fraction of `outer`."""
    n = len(inner)
    x = np.arange(len(outer))
    inner = inner - inner.mean()
    inner_norm = np.sqrt((inner * inner).sum()) + 1e-6
    found = []
    for zoom in ZOOMS:
        m = int(round(n * zoom))
        big = np.interp(np.linspace(0, len(outer) - 1, m), x, outer)
        windows = sliding_window_view(big, n)
        centred = windows - windows.mean(axis=1, keepdims=True)
        ncc = centred @ inner / (np.sqrt((centred * centred).sum(axis=1)) * inner_norm + 1e-6)
        k = int(np.argmax(ncc))
        found.append((float(ncc[k]), k / m, (k + n) / m))
    return found


def _shared_intervals(a: np.ndarray, b: np.ndarray, keep: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The `keep` likeliest (part of axis [0, 1] of a, part of b) showing the same content: one is the whole axis."""
    whole = (0.0, 1.0)
    scored = [(ncc, whole, (lo, hi)) for ncc, lo, hi in _offsets(a, b)]  # a is the crop, inside [lo, hi] of b
    scored += [(ncc, (lo, hi), whole) for ncc, lo, hi in _offsets(b, a)[1:]]
    scored.sort(key=lambda c: -c[0])
    return [(left, right) for _, left, right in scored[:keep]]


def _crop_square(image: Image.Image, xs, ys, side: int) -> np.ndarray:
    box = (xs[0] * image.width, ys[0] * image.height, xs[1] * image.width, ys[1] * image.height)
    return _blurred(_square(image, side, box))


def alignments(a: Image.Image, b: Image.Image, side: int = CHECK_SIDE, keep: int = CANDIDATES):
    """Candidate alignments: (a's shared part, b's) resampled to side x side, likeliest first."""
    sa, sb = _square(a.convert("L"), PROFILE_SIDE), _square(b.convert("L"), PROFILE_SIDE)
    (ca, ra), (cb, rb) = _profiles(sa), _profiles(sb)
    for ax, bx in _shared_intervals(ca, cb, keep):
        for ay, by in _shared_intervals(ra, rb, keep):
            yield _crop_square(a, ax, ay, side), _crop_square(b, bx, by, side)


def _integral(x: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row and column: sums of any box from four corners."""
    table = x.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    return np.pad(table, ((1, 0), (1, 0)) + ((0, 0),) * (x.ndim - 2))


def _box_sums(table: np.ndarray, ys: np.ndarray, xs: np.ndarray, side: int) -> np.ndarray:
    """Sums of side x side boxes with top-left corners ys (..., gy) x xs (..., gx) -> (..., gy, gx[, C])."""
    y, x = ys[..., :, None], xs[..., None, :]
    return table[y + side, x + side] - table[y, x + side] - table[y + side, x] + table[y, x]


def tile_agreement(a: np.ndarray, b: np.ndarray, grid: int = GRID, shift: int = SHIFT,
                   tile_ncc: float = TILE_NCC, flat: float = FLAT) -> tuple[float, int]:
    """(share of informative tiles that match, informative tiles) for two aligned squares (H, W, C).

    Per tile and shift: the correlation of a's tile with b's tile shifted by (dy, dx), each
    channel centred on its own mean. b's sums come from summed-area tables; only the cross term
    is computed per shift (a is centred, so b need not be).
    """
    s = b.shape[0] // grid
    n, channels, span = grid * s, b.shape[2], 2 * shift + 1
    pixels = s * s * channels
    a = np.ascontiguousarray(a[:n, :n], dtype=np.float64)
    corners = np.arange(grid) * s
    a_mean = a.reshape(grid, s, grid, s, channels).mean(axis=(1, 3))  # (grid, grid, C)
    a_centred = a - np.repeat(np.repeat(a_mean, s, axis=0), s, axis=1)
    a_energy = (a_centred * a_centred).sum(axis=2).reshape(grid, s, grid, s).sum(axis=(1, 3)).ravel()
    padded = np.pad(b[:n, :n], ((shift, shift), (shift, shift), (0, 0)), mode="edge")
    dy, dx = np.divmod(np.arange(span * span), span)  # (shifts,)
    ys, xs = corners[None, :] + dy[:, None], corners[None, :] + dx[:, None]  # (shifts, grid)
    b_sums = _box_sums(_integral(padded), ys, xs, s)  # (shifts, grid, grid, C)
    b_squares = _box_sums(_integral((padded * padded).sum(axis=2)), ys, xs, s)  # (shifts, grid, grid)
    b_energy = (b_squares - (b_sums * b_sums).sum(axis=3) / (s * s)).reshape(span * span, -1)
    padded = np.ascontiguousarray(padded, dtype=np.float32)
    row, col, chan = padded.strides  # every (shift, tile) window of b, as a view: no copy
    windows = np.lib.stride_tricks.as_strided(
        padded, (span, span, grid, grid, s, s, channels), (row, col, s * row, s * col, row, col, chan), writeable=False)
    tiles = a_centred.astype(np.float32).reshape(grid, s, grid, s, channels).transpose(0, 2, 1, 3, 4)
    cross = np.einsum("yxijabc,ijabc->yxij", windows, tiles).reshape(span * span, grid * grid)  # plain loop: fastest
    sa = np.sqrt(np.maximum(a_energy, 0) / pixels)
    sb = np.sqrt(np.maximum(b_energy, 0) / pixels)  # (shifts, tiles)
    ncc = cross / pixels / np.maximum(sa[None, :] * sb, 1e-6)
    pick = np.argmax(ncc, axis=0)
    best, spread = ncc[pick, np.arange(len(pick))], sb[pick, np.arange(len(pick))]
    informative = (sa > flat) | (spread > flat)
    # a tile flat in one image and textured in the other does not match, whatever the correlation
    comparable = np.minimum(sa, spread) > 0.25 * np.maximum(sa, spread)
    matched = informative & comparable & (best >= tile_ncc)
    count = int(informative.sum())
    return (float(matched.sum()) / count if count else 1.0), count


def copy_score(a: Image.Image, b: Image.Image) -> float:
    """0..1: how much of two prepared images agrees under their best candidate alignment."""
    best = 0.0
    for left, right in alignments(a, b):
        score, informative = tile_agreement(left, right)
        if informative == 0:  # both (nearly) blank: alike when their levels are
            score = float(abs(left.mean() - right.mean()) < 16)
        best = max(best, score)
        if best >= GOOD_ENOUGH:  # the likeliest alignment usually settles a copy
            break
    return best


def copy_score_bytes(a: bytes, b: bytes) -> float:
    return copy_score(prepared(a), prepared(b))
