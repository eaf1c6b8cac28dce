"""A precise second check for candidate near-duplicate pairs: find the geometry that maps one
picture onto the other, then compare what they show where they overlap, tile by tile.

SSCD cosine and pHash distance are global summaries: two receipts, forms or charts drawn from
one template with other text or data look alike to both, while a mirrored, rotated, cropped or
framed copy can score lower than such a look-alike. This check looks at the pixels of one pair:

1. geometry (`verify`): ORB features of both images (borders trimmed, at most WORK_SIDE), matched
   with Lowe's ratio test, and an affine map (rotation at any angle, scale, aspect, translation)
   fitted by RANSAC (OpenCV); tried on the second image as it is and mirrored, the map with the
   most inliers wins. The second image is warped onto the first; `covered` is the share of each
   image inside the overlap (a crop covers part of its original, a framed copy part of its frame);
2. content: over the overlap, GRID x GRID tiles of both (FINE_SIDE pixels) are compared by
   normalised correlation (`tile_agreement`): the share of informative tiles that agree is the
   score. The shared layout of a template matches, its other text and numbers do not, so the
   score of a look-alike stays well below a copy's (an overlay of text, an emoji or a logo costs
   a few tiles). A pair whose overlap covers less than MIN_COVER of both images scores 0;
3. where the map is neither rotated nor mirrored, the separable profile alignment below
   (`copy_score`: crops of ~10% and borders) scores the pair, and the overlap's tiles only add
   what it cannot reach (an overlap of less than PROFILE_COVER of one image: a larger crop); where
   there are not enough features (flat or tiny images) it decides alone, on the image and its mirror.

Pure numpy, Pillow and OpenCV on one core: features ~5 ms per image view (once per image and
task); a pair ~30 ms on average (matching, RANSAC, warps, and the tile or profile check), above
the 10 ms the design asks for.

The profile alignment (the fallback, `copy_score`):
1. both images lose their uniform borders (udfs.signatures.trim_uniform_border);
2. alignment, per axis and separably: the column (row) profiles of the luminance's horizontal
   (vertical) gradient are matched at zooms 1.00-1.12, so a crop of up to ~10% per axis, on
   either image, is found; the likeliest alignments per axis are kept, and for each both images
   are resampled to the part they share, `CHECK_SIDE` pixels square;
3. the shared part is cut into GRID x GRID tiles; a tile matches when its normalised correlation
   (of luminance: a hue shift, a grayscale copy or a gamma curve keeps the shapes and moves the
   colours, so colour is no evidence) with the other image's tile, shifted by up to `SHIFT`
   pixels, is >= `TILE_NCC` after a slight blur of both (so brightness, contrast, recompression, resampling and a pixel of misalignment
   do not matter). Tiles flat in both images carry no evidence and are not counted.

The score is the share of informative tiles that match under the best alignment: copies score
~1 (a caption or watermark costs a few tiles), look-alike charts lose the tiles where their data
differ. Pure numpy and Pillow; a pair costs ~5 ms when the likeliest alignment settles it, up to
~40 ms when all CANDIDATES**2 are tried (one 2020s CPU core), plus ~10 ms to prepare each image.
Limits: a caption over a sparse chart can cover most of its informative tiles; tables drawn from
one template with different numbers agree at this resolution (see tests/bench/eval_dedup_quality.py).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from udfs.signatures import trim_uniform_border

CHECK_SIDE = 128  # the shared part is compared at this side
PROFILE_SIDE = 96  # alignment works on profiles of this length
WORK_SIDE = 320  # prepared images keep at most this side (detail enough for features and FINE_SIDE)
GRID = 8
FEATURES = 500  # ORB keypoints per image
FAST_THRESHOLD = 10  # ORB's corner threshold: low, so documents and charts get features too
RATIO = 0.8  # Lowe's ratio test
RANSAC_PIXELS = 4.0  # reprojection error of an inlier, at WORK_SIDE
MIN_INLIERS = 12  # fewer: no geometry found, the profile alignment decides
SURE_INLIERS = 60  # this many: the mirrored view is not tried
MAX_SCALE = 6.0  # the map's singular values stay within [1/MAX_SCALE, MAX_SCALE] ...
MAX_ASPECT = 2.5  # ... and their ratio (aspect change plus shear) below this
MIN_COVER = 0.4  # the overlap must hold at least this share of one of the two images
PROFILE_COVER = 0.8  # an unrotated, unmirrored pair overlapping this much of both: the profile check alone
FINE_SIDE = 192  # the overlap is compared at this side ...
FINE_GRID = 12  # ... in FINE_GRID x FINE_GRID tiles (16 pixels: a word, a number, a mark)
SHIFT = 2
TILE_NCC = 0.7
FLAT = 3.0  # grey levels: a tile whose std is below this in both images is uninformative
ZOOMS = np.round(np.arange(1.0, 1.1201, 0.01), 3)
CANDIDATES = 3  # alignments kept per axis; the pair's score is the best of CANDIDATES**2
GOOD_ENOUGH = 0.97  # a score this high stops the search over alignments


class Prepared:
    """One decoded image ready for checks: luminance, uniform borders trimmed, at most WORK_SIDE on its
    longest side; its features (and its mirror's) are computed on first use and kept."""

    def __init__(self, image: Image.Image):
        self.image = image
        self.pixels = np.asarray(image)
        self._features: dict[bool, tuple[np.ndarray, np.ndarray | None]] = {}

    def view(self, mirrored: bool) -> np.ndarray:
        return self.pixels[:, ::-1] if mirrored else self.pixels

    def features(self, mirrored: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(keypoint coordinates (N, 2), ORB descriptors (N, 32) or None) of the image or its mirror."""
        if mirrored not in self._features:
            keypoints, descriptors = _orb().detectAndCompute(np.ascontiguousarray(self.view(mirrored)), None)
            self._features[mirrored] = (np.float32([k.pt for k in keypoints]).reshape(-1, 2), descriptors)
        return self._features[mirrored]


def prepared(data: bytes) -> Prepared:
    """Decoded, luminance, uniform borders trimmed, at most WORK_SIDE on its longest side."""
    with Image.open(io.BytesIO(data)) as image:
        gray = trim_uniform_border(image.convert("RGB")).convert("L")
    if max(gray.size) > WORK_SIDE:
        scale = WORK_SIDE / max(gray.size)
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.Resampling.BOX)
    return Prepared(gray)


@functools.lru_cache(maxsize=1)
def _orb():
    import cv2

    cv2.setNumThreads(1)  # one Spark task per core
    return cv2.ORB_create(nfeatures=FEATURES, fastThreshold=FAST_THRESHOLD)


@dataclass(frozen=True)
class Match:
    """The verdict on one pair: `score` (share of informative tiles that agree, 0..1) and its evidence."""

    score: float
    transform: str  # "identity", or parts of "mirror+rotate<degrees>+scale"; "profile"/"profile+mirror" (no features)
    inliers: int = 0
    inlier_share: float = 0.0  # RANSAC inliers / ratio-test matches
    covered: tuple[float, float] = (0.0, 0.0)  # share of each image inside the overlap

    @property
    def evidence(self) -> str:
        return (f"transform={self.transform} inliers={self.inliers} inlier_share={self.inlier_share:.2f} "
                f"covered={self.covered[0]:.2f}/{self.covered[1]:.2f}")


def _affine(a: Prepared, b: Prepared, mirrored: bool) -> tuple[np.ndarray, int, float] | None:
    """(2x3 map from b (mirrored) to a, inliers, inlier share) by ratio-test ORB matches and RANSAC."""
    import cv2

    (points_a, descriptors_a), (points_b, descriptors_b) = a.features(False), b.features(mirrored)
    if descriptors_a is None or descriptors_b is None or min(len(points_a), len(points_b)) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(descriptors_b, descriptors_a, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    source = points_b[[m.queryIdx for m in good]]
    target = points_a[[m.trainIdx for m in good]]
    matrix, inliers = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS,
                                           maxIters=2000, confidence=0.995)
    if matrix is None or inliers is None:
        return None
    count = int(inliers.sum())
    linear = matrix[:, :2]
    scales = np.linalg.svd(linear, compute_uv=False)
    # a reflection is found by the mirrored view; strong shear or a collapse is a chance fit
    if count < MIN_INLIERS or np.linalg.det(linear) <= 0 or scales[-1] < 1 / MAX_SCALE or scales[0] > MAX_SCALE \
            or scales[0] / scales[-1] > MAX_ASPECT:
        return None
    return matrix, count, count / len(good)


def _transform_name(matrix: np.ndarray, mirrored: bool) -> str:
    linear = matrix[:, :2]
    angle = float(np.degrees(np.arctan2(linear[1, 0], linear[0, 0])))
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    parts = ["mirror"] if mirrored else []
    if abs(angle) > 1.5:
        parts.append(f"rotate{round(angle) % 360}")
    if abs(scale - 1) > 0.05:
        parts.append("scale")
    return "+".join(parts) or "identity"


def _overlap(a: Prepared, b: Prepared, matrix: np.ndarray, mirrored: bool) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(b (mirrored) warped onto a by `matrix`, the mask of a inside it, the share of each image inside the overlap)."""
    import cv2

    height, width = a.pixels.shape[:2]
    source = np.ascontiguousarray(b.view(mirrored))
    warped = cv2.warpAffine(source, matrix, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.ones(source.shape[:2], np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST)
    back = cv2.warpAffine(np.ones((height, width), np.uint8), cv2.invertAffineTransform(matrix),
                          (source.shape[1], source.shape[0]), flags=cv2.INTER_NEAREST)
    return warped, inside, (float(inside.mean()), float(back.mean()))


def _overlap_agreement(a: Prepared, warped: np.ndarray, inside: np.ndarray) -> float:
    """Tile agreement of a and the warped b over the bounding box of their overlap, at FINE_SIDE."""
    import cv2

    ys, xs = np.nonzero(inside)
    crop = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))

    def fine(pixels: np.ndarray) -> np.ndarray:
        return _blurred(cv2.resize(np.ascontiguousarray(pixels[crop]), (FINE_SIDE, FINE_SIDE),
                                   interpolation=cv2.INTER_AREA).astype(np.float32)[..., None])

    valid = cv2.resize(inside[crop].astype(np.float32), (FINE_SIDE, FINE_SIDE), interpolation=cv2.INTER_AREA)
    score, informative = tile_agreement(fine(a.pixels), fine(warped), FINE_GRID, valid=valid)
    return score if informative else float(abs(a.pixels[crop].mean() - warped[crop].mean()) < 16)


def verify(a: Prepared, b: Prepared) -> Match:
    """The pair's best geometric match (b as it is, then mirrored), or the profile alignment's."""
    found = []
    for mirrored in (False, True):
        fitted = _affine(a, b, mirrored)
        if fitted is not None:
            found.append((fitted[1], mirrored, fitted))
            if fitted[1] >= SURE_INLIERS:  # a copy this clear needs no mirrored try
                break
    if found:
        _, mirrored, (matrix, inliers, share) = max(found, key=lambda f: f[0])
        transform = _transform_name(matrix, mirrored)
        warped, inside, covered = _overlap(a, b, matrix, mirrored)
        if transform in ("identity", "scale"):
            # What the profile alignment handles (small crops, borders, rescaling): its coarser tiles
            # judge the copies of sparse charts better, and a map fitted to a few features of a small
            # table can be off; the overlap's tiles add the larger crops it cannot reach.
            score = copy_score(a.image, b.image)
            if min(covered) < PROFILE_COVER and max(covered) >= MIN_COVER:
                score = max(score, _overlap_agreement(a, warped, inside))
        else:
            score = _overlap_agreement(a, warped, inside) if max(covered) >= MIN_COVER else 0.0
        return Match(score, transform, inliers, share, covered)
    plain = copy_score(a.image, b.image)
    if plain >= GOOD_ENOUGH:
        return Match(plain, "profile", covered=(1.0, 1.0))
    mirror = copy_score(a.image, b.image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    return Match(max(plain, mirror), "profile+mirror" if mirror > plain else "profile", covered=(1.0, 1.0))


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
    return _blurred(_square(image, side, box)[..., None])


def alignments(a: Image.Image, b: Image.Image, side: int = CHECK_SIDE, keep: int = CANDIDATES):
    """Candidate alignments: (a's shared part, b's) resampled to side x side, likeliest first."""
    sa, sb = _square(a, PROFILE_SIDE), _square(b, PROFILE_SIDE)
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
                   tile_ncc: float = TILE_NCC, flat: float = FLAT, valid: np.ndarray | None = None) -> tuple[float, int]:
    """(share of informative tiles that match, informative tiles) for two aligned squares (H, W, C);
    with `valid` (H, W, 0..1), tiles less than 95% inside it carry no evidence.

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
    if valid is not None:
        informative &= valid[:n, :n].reshape(grid, s, grid, s).mean(axis=(1, 3)).ravel() >= 0.95
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


def verify_bytes(a: bytes, b: bytes) -> Match:
    return verify(prepared(a), prepared(b))
