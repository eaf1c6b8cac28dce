"""Image normalisation without Spark: every decode case of the demo's hard images, and determinism."""

import dataclasses
import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from udfs import demo_sources
from udfs.images import ImagePolicy, normalize_batches, normalize_image

POLICY = ImagePolicy(max_pixels=50_000_000, max_side=1536, min_side=32, max_aspect_ratio=10.0, format="JPEG", quality=95)
LOSSLESS = dataclasses.replace(POLICY, format="PNG")


@pytest.fixture(scope="module")
def photos():
    return demo_sources.load_photos()


@pytest.fixture(scope="module")
def hard(photos):
    return demo_sources.hard_images(photos)


def test_every_hard_image_gets_its_reason_or_note(hard):
    for name, (data, reason, note) in hard.items():
        result = normalize_image(data, POLICY)
        assert result.reason == reason, f"{name}: {result.reason} ({result.detail})"
        if reason is None:
            assert note in result.notes, f"{name}: notes {result.notes}"
            decoded = Image.open(io.BytesIO(result.data))
            assert decoded.mode == "RGB" and decoded.format == "JPEG"
            assert (decoded.width, decoded.height) == (result.width, result.height)
        else:
            assert result.data is None and result.image_id is None and result.detail


def test_exif_orientation_is_applied(hard):
    result = normalize_image(hard["exif_rotated.jpg"][0], POLICY)
    assert (result.width, result.height) == (400, 600)  # stored 600x400, displayed turned


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 32, 64))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    result = normalize_image(buffer.getvalue(), LOSSLESS)
    out = Image.open(io.BytesIO(result.data))
    assert out.getpixel((48, 10)) == (255, 255, 255)
    assert out.getpixel((10, 10)) == (0, 0, 255)


def test_sixteen_bit_range_is_scaled_not_clipped():
    values = Image.linear_gradient("L").resize((64, 64))
    wide = Image.fromarray(np.asarray(values, dtype=np.uint16) * 200)
    png = io.BytesIO()
    wide.save(png, format="PNG")
    result = normalize_image(png.getvalue(), LOSSLESS)
    out = Image.open(io.BytesIO(result.data)).convert("L")
    assert out.getextrema() == (0, 255)


def test_long_side_is_capped_and_output_is_deterministic(photos):
    retina = next(p for p in photos if p.name == "retina")
    policy = dataclasses.replace(POLICY, max_side=512)
    first, second = normalize_image(retina.data, policy), normalize_image(retina.data, policy)
    assert (first.width, first.height) == (512, 512)
    assert first.image_id == second.image_id and first.data == second.data
    assert "resized:1411x1411->512x512" in first.notes


def test_missing_bytes_is_missing_image():
    assert normalize_image(None, POLICY).reason == "missing_image"


def test_arrow_batch_wrapper_keeps_rows_aligned(hard):
    names = ["cmyk.jpg", "zero_bytes.jpg", "tiny.png"]
    batch = pa.RecordBatch.from_pylist([{"sha256": n, "bytes": hard[n][0]} for n in names])
    out = pa.Table.from_batches(list(normalize_batches([batch], POLICY))).to_pylist()
    assert [r["sha256"] for r in out] == names
    assert [r["reason"] for r in out] == [None, "empty_file", "image_too_small"]
    assert out[0]["format"] == "JPEG" and out[0]["width"] == 600
