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
    rgb = image.convert("RGB")
    scale = max(rgb.size) / _TRIM_WORK_SIDE
    if scale > 1:
        rgb = rgb.resize((max(1, round(rgb.width / scale)), max(1, round(rgb.height / scale))), Image.Resampling.BOX)
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


def trim_uniform_border(image: Image.Image, tolerance: int = TRIM_TOLERANCE, fraction: float = TRIM_FRACTION) -> Image.Image:
    """`image` without its uniform borders (padding, letterboxing, a chart's empty margin)."""
    box = border_box(image, tolerance, fraction)
    return image if box == (0, 0, image.width, image.height) else image.crop(box)


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
