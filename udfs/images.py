"""Safe image normalisation with Pillow: decode, orient, flatten to RGB, cap the size, re-encode, hash.

Every failure is a reason code, never an exception: one bad image must not stop a job over
millions. Conversions that keep the image (a CMYK JPEG, an EXIF-rotated photo, an animated GIF)
are recorded as notes next to the image, so nothing changes silently either.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from schemas import silver_images
from schemas.contract import arrow_schema
from schemas.silver_rejects import Reason
from udfs.arrow import rows_of, to_batches

ImageFile.LOAD_TRUNCATED_IMAGES = False
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa", "P"}
_SAVE_OPTIONS = {
    "JPEG": lambda q: {"quality": q, "optimize": False, "progressive": False, "subsampling": 0 if q >= 90 else 2},
    "PNG": lambda q: {"compress_level": 6, "optimize": False},
    "WEBP": lambda q: {"quality": q, "method": 4},
}


DECODED = arrow_schema(silver_images.DECODED)  # one row per distinct raw image (by the SHA-256 of its bytes)



@dataclass(frozen=True)
class ImagePolicy:
    max_pixels: int
    max_side: int
    min_side: int
    max_aspect_ratio: float
    format: str
    quality: int


@dataclass
class NormalizedImage:
    image_id: str | None = None
    data: bytes | None = None
    width: int | None = None
    height: int | None = None
    source_width: int | None = None
    source_height: int | None = None
    source_format: str | None = None
    source_mode: str | None = None
    notes: list[str] = field(default_factory=list)
    reason: str | None = None
    detail: str | None = None


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalize_image(data: bytes | None, policy: ImagePolicy) -> NormalizedImage:
    """One image's bytes -> the normalised image, or the reason it was rejected."""
    if data is None:
        return NormalizedImage(reason=Reason.MISSING_IMAGE, detail="no bytes for this image")
    if len(data) == 0:
        return NormalizedImage(reason=Reason.EMPTY_FILE, detail="0 bytes")
    # Pillow checks the cap too; ours is exact where Pillow only errors above twice the cap.
    Image.MAX_IMAGE_PIXELS = policy.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            result = NormalizedImage(source_format=image.format, source_mode=image.mode)
            width, height = image.size
            if width * height > policy.max_pixels:
                return _reject(result, Reason.DECOMPRESSION_BOMB, f"{width}x{height} = {width * height} px > max_pixels {policy.max_pixels}")
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                image.seek(0)
                result.notes.append(f"animated:{frames}_frames:first_kept")
            image.load()
            image = _oriented(image, result)
            image = _to_rgb(image, result)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return NormalizedImage(reason=Reason.DECOMPRESSION_BOMB, detail=str(err)[:300])
    except UnidentifiedImageError:
        return NormalizedImage(reason=Reason.UNDECODABLE_IMAGE, detail=f"not an image Pillow can identify ({len(data)} bytes)")
    except OSError as err:
        reason = Reason.TRUNCATED_IMAGE if "truncated" in str(err).lower() or "broken data" in str(err).lower() else Reason.UNDECODABLE_IMAGE
        return NormalizedImage(reason=reason, detail=f"{type(err).__name__}: {err}"[:300])
    except (ValueError, SyntaxError, EOFError, MemoryError, IndexError, TypeError, ZeroDivisionError) as err:
        return NormalizedImage(reason=Reason.UNDECODABLE_IMAGE, detail=f"{type(err).__name__}: {err}"[:300])

    result.source_width, result.source_height = image.size
    short, long_ = sorted(image.size)
    if short < policy.min_side:
        return _reject(result, Reason.IMAGE_TOO_SMALL, f"{image.width}x{image.height}: shorter side < min_side {policy.min_side}")
    if long_ / short > policy.max_aspect_ratio:
        return _reject(result, Reason.EXTREME_ASPECT_RATIO, f"{image.width}x{image.height}: ratio {long_ / short:.1f} > {policy.max_aspect_ratio}")
    if long_ > policy.max_side:
        scale = policy.max_side / long_
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
        result.notes.append(f"resized:{result.source_width}x{result.source_height}->{size[0]}x{size[1]}")
    result.data = encode(image, policy.format, policy.quality)
    result.image_id = content_hash(result.data)
    result.width, result.height = image.size
    return result


def encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    """Deterministic encoding: fixed options, no metadata carried over."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **_SAVE_OPTIONS[fmt](quality))
    return buffer.getvalue()


def _reject(result: NormalizedImage, reason: str, detail: str) -> NormalizedImage:
    result.reason, result.detail = reason, detail
    return result


def _oriented(image: Image.Image, result: NormalizedImage) -> Image.Image:
    orientation = image.getexif().get(ImageOps.ExifTags.Base.Orientation, 1)
    if orientation in (None, 1):
        return image
    result.notes.append(f"exif_orientation:{orientation}")
    return ImageOps.exif_transpose(image)


def _to_rgb(image: Image.Image, result: NormalizedImage) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    result.notes.append(f"mode:{mode}->RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        # convert("L") clips 16-bit and float values to 0..255; scale the real range instead.
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if high <= low else (values - low) * (255.0 / (high - low))
        return Image.fromarray(np.round(scaled).astype(np.uint8), "L").convert("RGB")
    if mode in _ALPHA_MODES and (mode != "P" or "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        result.notes.append("alpha:flattened_on_white")
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def normalize_batches(batches, policy: ImagePolicy):
    """mapInArrow body: (sha256, bytes) batches -> DECODED batches, one row per distinct sha256.

    A raw image seen earlier in the same partition is skipped; hash-partitioning the input by
    sha256 makes that a global deduplication without aggregating the bytes in Spark.
    """

    def rows():
        seen: set[str] = set()
        for row in rows_of(batches):
            if row["sha256"] in seen:
                continue
            seen.add(row["sha256"])
            image = normalize_image(row["bytes"], policy)
            yield {
                "sha256": row["sha256"],
                "image_id": image.image_id,
                "bytes": image.data,
                "width": image.width,
                "height": image.height,
                "format": policy.format if image.data is not None else None,
                "source_width": image.source_width,
                "source_height": image.source_height,
                "source_format": image.source_format,
                "source_mode": image.source_mode,
                "notes": image.notes,
                "reason": image.reason,
                "detail": image.detail,
            }

    yield from to_batches(rows(), DECODED, size_of=lambda row: len(row["bytes"] or b""))
