"""Cheap content signatures for dedup: a 64-bit perceptual hash of images, normalised instruction text.

pHash: grayscale, 32x32, 2-D DCT, the 8x8 lowest frequencies without the DC term compared to their
median, one bit each. Near-identical pictures (resized, recompressed, slightly brighter) differ in
a few bits; different pictures in about half of them. A border padded around a copy moves many
bits: `trim_uniform_border` removes uniform borders first (phash(..., trim=True)), so a padded or
letterboxed copy hashes like its original.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
import unicodedata
from collections.abc import Iterator

import numpy as np
import pandas as pd
from PIL import Image

HASH_SIZE = 8
_SAMPLE = 32
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


@functools.lru_cache(maxsize=1)
def _dct_matrix(n: int = _SAMPLE) -> np.ndarray:
    k = np.arange(n)[:, None]
    matrix = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return matrix


TRIM_TOLERANCE = 24  # grey levels per channel a border pixel may differ from the border's colour
TRIM_FRACTION = 0.99  # share of a line's pixels that must be within the tolerance
_TRIM_WORK_SIDE = 256


def border_box(image: Image.Image, tolerance: int = TRIM_TOLERANCE, fraction: float = TRIM_FRACTION,
               rounds: int = 4, min_keep: float = 0.2) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of `image` without its uniform borders.

    A side loses its outer lines while each is uniform: `fraction` of its pixels within `tolerance`
    of the median colour of the outermost line. Rounds repeat so a border drawn around a picture
    that has a margin of its own (a chart on white padded with black) loses both. Works on a copy
    at most 256 pixels on a side; an image that would lose more than 1 - `min_keep` of a side
    (a blank image) is returned whole.
    """
    rgb, scale = _rgb_at_most(image, _TRIM_WORK_SIDE)
    pixels = np.asarray(rgb, dtype=np.int16)
    height, width = pixels.shape[:2]
    box = [0, 0, width, height]  # left, top, right, bottom
    for _ in range(rounds):
        changed = False
        for side in range(4):
            left, top, right, bottom = box
            if right - left < 3 or bottom - top < 3:
                break
            part = pixels[top:bottom, left:right]
            lines = (part, part[::-1], part.transpose(1, 0, 2), part.transpose(1, 0, 2)[::-1])[
                (2, 0, 3, 1)[side]]  # side order: left, top, right, bottom
            reference = np.median(lines[0], axis=0)

            def uniform(block):
                return (np.abs(block - reference).max(axis=-1) <= tolerance).mean(axis=-1) >= fraction

            if not uniform(lines[0]):
                continue
            count = 0  # uniform lines from the outside in, a block at a time: borders are thin
            while count < len(lines):
                flags = uniform(lines[count:count + 16])
                count += len(flags) if flags.all() else int(np.argmin(flags))
                if not flags.all():
                    break
            count = min(count, len(lines) - 1)
            box[side] += count if side < 2 else -count
            changed = True
        if not changed:
            break
    left, top, right, bottom = box
    if right - left < min_keep * width or bottom - top < min_keep * height:
        return (0, 0, image.width, image.height)
    if scale > 1:
        return (int(left * scale), int(top * scale), min(image.width, round(right * scale)), min(image.height, round(bottom * scale)))
    return (left, top, right, bottom)


def _rgb_at_most(image: Image.Image, side: int) -> tuple[Image.Image, float]:
    """(`image` in RGB with its longest side at most `side`, how many times smaller it became)."""
    rgb = image.convert("RGB")
    scale = max(rgb.size) / side
    if scale > 1:
        rgb = rgb.resize((max(1, round(rgb.width / scale)), max(1, round(rgb.height / scale))), Image.Resampling.BOX)
    return rgb, scale


def trim_uniform_border(image: Image.Image, tolerance: int = TRIM_TOLERANCE, fraction: float = TRIM_FRACTION) -> Image.Image:
    """`image` without its uniform borders (padding, letterboxing, a chart's empty margin)."""
    box = border_box(image, tolerance, fraction)
    return image if box == (0, 0, image.width, image.height) else image.crop(box)


@functools.lru_cache(maxsize=1)
def opencv():
    """OpenCV on one thread: Spark runs one task per core."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


FRAME_WORK_SIDE = 384
FRAME_EDGE = 20.0  # Sobel response (3x3) of an edge in any colour channel: a step of ~5 levels
FRAME_LINE = 0.15  # a side of the frame lies on straight edges at least this share of the image's side long ...
FRAME_SIDE_COVER = 0.8  # ... that run along this share of the side, on every side
FRAME_AREA = (0.12, 0.85)  # share of the image the framed picture covers
FRAME_MIN_SIDE = 0.25  # and of each of its sides
FRAME_CLOSED = 4  # a rectangle's score: area x (its least covered side's share) ** this
FRAME_POSITIONS = 24  # the strongest rows (and columns) of straight edges tried as the picture's sides


def framed_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of a picture shown inside a larger image (an image viewer's window,
    a screenshot of a page or an app), or None. The picture is the largest rectangle, between
    FRAME_AREA of the image, whose four sides run along long straight edges in colour (a dark photo
    on a dark page still differs in hue): the frame around it (panels, bars, text) is not uniform,
    so `border_box` cannot remove it. Works on a copy at most FRAME_WORK_SIDE pixels on a side."""
    cv2 = opencv()
    rgb, scale = _rgb_at_most(image, FRAME_WORK_SIDE)
    pixels = np.asarray(rgb, dtype=np.float32)
    height, width = pixels.shape[:2]
    if min(height, width) < 16:
        return None

    def edges(dx: int, dy: int, run: tuple[int, int], across: tuple[int, int]) -> np.ndarray:
        step = np.max(np.abs(cv2.Sobel(pixels, cv2.CV_32F, dx, dy, ksize=3)), axis=2) > FRAME_EDGE
        lines = cv2.morphologyEx(step.astype(np.uint8), cv2.MORPH_OPEN, np.ones(run, np.uint8))  # long and straight only
        return cv2.dilate(lines, np.ones(across, np.uint8))  # a side may sit a pixel or two off the edge

    horizontal = edges(0, 1, (1, max(8, round(FRAME_LINE * width))), (5, 1))
    vertical = edges(1, 0, (max(8, round(FRAME_LINE * height)), 1), (1, 5))
    rows = _strongest(horizontal.sum(axis=1), FRAME_LINE * width)
    columns = _strongest(vertical.sum(axis=0), FRAME_LINE * height)
    if len(rows) < 2 or len(columns) < 2:
        return None
    along_rows = np.concatenate([np.zeros((height, 1)), np.cumsum(horizontal, axis=1)], axis=1)  # [y, x]: edge pixels left of x
    along_columns = np.concatenate([np.zeros((1, width)), np.cumsum(vertical, axis=0)], axis=0)  # [y, x]: above y
    top, bottom = (a.ravel() for a in np.meshgrid(rows, rows, indexing="ij"))
    left, right = (a.ravel() for a in np.meshgrid(columns, columns, indexing="ij"))
    keep_y = bottom - top >= FRAME_MIN_SIDE * height
    keep_x = right - left >= FRAME_MIN_SIDE * width
    top, bottom, left, right = top[keep_y][:, None], bottom[keep_y][:, None], left[keep_x][None, :], right[keep_x][None, :]
    w, h = right - left, bottom - top
    cover = np.minimum.reduce([
        (along_rows[top, right] - along_rows[top, left]) / w, (along_rows[bottom, right] - along_rows[bottom, left]) / w,
        (along_columns[bottom, left] - along_columns[top, left]) / h, (along_columns[bottom, right] - along_columns[top, right]) / h,
    ])
    area = (w * h) / (width * height)
    # the largest closed rectangle: a side stretched past the picture to a farther line (a bar above it) covers less
    score = np.where((cover >= FRAME_SIDE_COVER) & (area >= FRAME_AREA[0]) & (area <= FRAME_AREA[1]),
                     area * cover ** FRAME_CLOSED, 0)
    if not score.size or score.max() == 0:
        return None
    y, x = np.unravel_index(np.argmax(score), score.shape)
    factor = max(scale, 1.0)
    box = (left[0, x], top[y, 0], right[0, x] + 1, bottom[y, 0] + 1)
    return (round(box[0] * factor), round(box[1] * factor), min(image.width, round(box[2] * factor)),
            min(image.height, round(box[3] * factor)))


TURN_ANGLES = (1.5, 45.0)  # degrees off the axes of a picture shown turned
TURN_AREA = 0.25  # share of the image the turned picture's rectangle covers at least ...
TURN_FILLED = 0.6  # ... and this share of that rectangle differs from the fill


def turned_picture(image: Image.Image) -> Image.Image | None:
    """The picture inside an image that shows it turned by some degrees on a uniform fill (a rotated
    copy, a scan put down askew), turned back upright and cropped; None when the image is not one.

    The four corners share the fill; the pixels that differ from it are the picture, and their
    smallest enclosing rotated rectangle (OpenCV's minAreaRect) gives its angle and size. A white
    page on a white fill shows no edge and is left alone. Works on a copy at most FRAME_WORK_SIDE
    pixels on a side; the crop is cut from the full image."""
    cv2 = opencv()
    rgb = image.convert("RGB")
    small, scale = _rgb_at_most(rgb, FRAME_WORK_SIDE)
    pixels = np.asarray(small, dtype=np.int16)
    corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
    if np.ptp(corners, axis=0).max() > TRIM_TOLERANCE:
        return None
    content = (np.abs(pixels - corners.mean(axis=0)).max(axis=2) > TRIM_TOLERANCE).astype(np.uint8)
    points = cv2.findNonZero(cv2.morphologyEx(content, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))
    if points is None:
        return None
    rect = cv2.minAreaRect(points)
    (cx, cy), (rect_w, rect_h), _ = rect
    if rect_w * rect_h < TURN_AREA * content.size or content.sum() < TURN_FILLED * rect_w * rect_h:
        return None
    box = cv2.boxPoints(rect)
    edge, other = box[1] - box[0], box[2] - box[1]
    tilt = math.degrees(math.atan2(edge[1], edge[0]))
    angle = (tilt + 45) % 90 - 45  # the turn back to the nearest axis
    if not TURN_ANGLES[0] <= abs(angle) <= TURN_ANGLES[1]:
        return None
    level = abs((tilt + 90) % 180 - 90) <= 45  # the first edge ends up horizontal
    width, height = (np.hypot(*edge), np.hypot(*other)) if level else (np.hypot(*other), np.hypot(*edge))
    factor = max(scale, 1.0)
    cx, cy, half_w, half_h = cx * factor, cy * factor, width * factor / 2, height * factor / 2
    upright = rgb.rotate(angle, resample=Image.Resampling.BILINEAR, center=(cx, cy))
    return upright.crop((round(cx - half_w), round(cy - half_h), round(cx + half_w), round(cy + half_h)))


def inner_picture(image: Image.Image) -> Image.Image | None:
    """The picture an image shows inside itself: framed (framed_box) or turned on a fill (turned_picture)."""
    box = framed_box(image)
    return image.crop(box) if box is not None else turned_picture(image)


def _strongest(counts: np.ndarray, minimum: float) -> np.ndarray:
    """Positions of the FRAME_POSITIONS largest local maxima of `counts` that reach `minimum`, in order."""
    padded = np.concatenate([[-1], counts, [-1]])
    peaks = np.flatnonzero((counts >= minimum) & (counts >= padded[:-2]) & (counts > padded[2:]))
    return np.sort(peaks[np.argsort(-counts[peaks], kind="stable")][:FRAME_POSITIONS])


def _low_frequencies(image: Image.Image) -> np.ndarray:
    gray = np.asarray(image.convert("L").resize((_SAMPLE, _SAMPLE), Image.Resampling.LANCZOS), dtype=np.float64)
    return (_dct_matrix() @ gray @ _dct_matrix().T)[:HASH_SIZE, :HASH_SIZE]


def _hash_bits(low: np.ndarray) -> int:
    flat = low.flatten()
    bits = flat > np.median(flat[1:])
    value = int("".join("1" if b else "0" for b in bits), 2)
    return value - (1 << 64) if value >= 1 << 63 else value


def _phash_of(image: Image.Image) -> int:
    return _hash_bits(_low_frequencies(image))


# A mirror negates the DCT's odd horizontal frequencies, a transposition swaps the axes: the eight
# mirror/rotation variants of an image's pHash come from its one DCT.
_ODD = (-1.0) ** np.arange(HASH_SIZE)
TURNS = ("rotate90", "rotate180", "rotate270", "mirror", "mirror+rotate90", "mirror+rotate180", "mirror+rotate270")


def _dihedral(low: np.ndarray) -> list[int]:
    mirrored = low * _ODD[None, :]
    variants = []
    for base in (low, mirrored):
        turned = base
        for _ in range(4):
            variants.append(_hash_bits(turned))
            turned = turned.T * _ODD[None, :]  # 90 degrees clockwise: transpose, then mirror
    return variants


def dihedral_phashes(data: bytes) -> list[int]:
    """The pHashes of the image as it is and turned as TURNS names, in that order (exact: one DCT)."""
    with Image.open(io.BytesIO(data)) as image:
        return _dihedral(_low_frequencies(image))


def phash(data: bytes, trim: bool = False) -> int:
    """The 64-bit pHash of an image as a signed int64 (Spark's bigint); `trim`: of the image without uniform borders."""
    with Image.open(io.BytesIO(data)) as image:
        return _phash_of(trim_uniform_border(image.convert("RGB")) if trim else image)


def phashes(data: bytes, trim: bool = True, turned: bool = False) -> tuple[int, int | None, list[int] | None]:
    """(pHash, pHash without uniform borders or None when `trim` is off or the image has none,
    the pHashes of the image turned as TURNS names or None unless `turned`).

    Both plain and trimmed, because trimming is not stable everywhere: a pale table background or a
    coloured title bar can lose a line more or less in a recompressed copy, which moves the trimmed
    hash while the plain one stays; a padded copy is the opposite case.
    """
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        trimmed = trim_uniform_border(rgb) if trim else rgb
        low = _low_frequencies(rgb)
        return (_hash_bits(low), (_phash_of(trimmed) if trimmed is not rgb else None),
                _dihedral(low)[1:] if turned else None)


def hamming(a: int, b: int) -> int:
    return bin((a ^ b) & ((1 << 64) - 1)).count("1")


def phash_frames(batches: Iterator[pd.Series], trim: bool = True, turned: bool = False) -> Iterator[pd.DataFrame]:
    """Iterator pandas UDF body: image bytes -> (phash, phash_trimmed[, phash_turned]), all null when
    the bytes do not decode (udfs.signatures.phashes)."""
    for images in batches:
        found = []
        for data in images:
            try:
                found.append(phashes(data, trim, turned))
            except (OSError, ValueError):
                found.append((None, None, None))
        frame = pd.DataFrame({
            "phash": pd.array([f[0] for f in found], dtype="Int64"),
            "phash_trimmed": pd.array([f[1] for f in found], dtype="Int64"),
        })
        if turned:
            frame["phash_turned"] = pd.Series([f[2] for f in found], dtype=object)
        yield frame


def normalized_text(text: str) -> str:
    """Case, accents, punctuation and spacing removed: what text dedup compares."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def text_hash(text: str) -> str:
    return hashlib.sha256(normalized_text(text).encode()).hexdigest()[:32]


def shingles(text: str, size: int) -> list[str]:
    """Word n-grams of the normalised text (the whole text when it is shorter than n words)."""
    words = normalized_text(text).split()
    if len(words) <= size:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + size]) for i in range(len(words) - size + 1)]
