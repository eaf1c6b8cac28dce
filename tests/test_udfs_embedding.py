"""Embedding backends without Spark: the real SSCD ONNX models, and TorchScript on CPU."""

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageEnhance

from tests.conftest import screenshot
from udfs import demo_sources
from udfs.embedding import EmbeddingSettings, backend_for, embed_images, embed_series, pixels

ONNX = EmbeddingSettings("onnx", "sscd", None, "auto", True, batch_size=4, threads=1, image_size=288)


@pytest.fixture(scope="module")
def photos():
    return {p.name: p.data for p in demo_sources.load_photos()}


def variant(data: bytes, transform) -> bytes:
    buffer = io.BytesIO()
    transform(Image.open(io.BytesIO(data)).convert("RGB")).save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


@pytest.mark.parametrize("model", ["sscd", "sscd_distilled"])
def test_onnx_sscd_separates_copies_from_other_photos(photos, model):
    settings = EmbeddingSettings("onnx", model, None, "auto", True, 4, 1, 288)
    cat = photos["chelsea"]
    copies = [
        variant(cat, lambda im: im.resize((im.width // 2, im.height // 2))),
        variant(cat, lambda im: ImageEnhance.Brightness(im).enhance(1.3)),
    ]
    others = [photos["coffee"], photos["rocket"], photos["astronaut"]]
    vectors = embed_images([cat, *copies, *others], settings)
    assert vectors.shape == (6, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors[0]
    assert min(similarity[1:3]) > 0.8, similarity
    assert max(similarity[3:]) < 0.5, similarity


def test_backend_is_built_once_per_settings():
    assert backend_for(ONNX) is backend_for(ONNX)


def test_preprocessing_contract(photos):
    batch = pixels([photos["coffee"], photos["camera"]], 64)  # a color and a grayscale photo
    assert batch.shape == (2, 64, 64, 3) and batch.dtype == np.uint8


def test_a_bad_image_costs_its_own_row(photos):
    out = next(embed_series(iter([pd.Series([photos["coffee"], b"not an image", photos["moon"]])]), ONNX))
    assert out["error"].isna().tolist() == [True, False, True]
    assert "UnidentifiedImageError" in out["error"][1]
    assert len(out["vector"][0]) == 512 and out["vector"][1] is None


class TinyCopyNet(torch.nn.Module):
    """Stands in for the SSCD TorchScript file: NCHW float in, one vector per image out."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 2).flatten(1)


@pytest.fixture(scope="module")
def scripted_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.torchscript.pt"
    torch.jit.script(TinyCopyNet().eval()).save(str(path))
    return path


def test_torchscript_backend_on_cpu(scripted_model, photos):
    settings = EmbeddingSettings("torchscript", "tiny", str(scripted_model), "cpu", True, 2, 1, 64)
    images = [photos["coffee"], photos["rocket"], photos["coffee"]]
    vectors = embed_images(images, settings)
    assert vectors.shape == (3, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2])
    # the same ImageNet normalisation, done by hand on the contract's pixels, gives the same vectors
    reference = TinyCopyNet()
    reference.load_state_dict(torch.jit.load(str(scripted_model)).state_dict())
    batch = pixels(images, 64).astype(np.float32) / 255.0
    batch = (batch - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    expected = reference(torch.tensor(batch.transpose(0, 3, 1, 2), dtype=torch.float32)).detach().numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (fp16 TorchScript path)")
def test_torchscript_fp16_on_cuda(scripted_model, photos):
    cpu = EmbeddingSettings("torchscript", "tiny", str(scripted_model), "cpu", False, 2, 1, 64)
    gpu = EmbeddingSettings("torchscript", "tiny", str(scripted_model), "cuda", True, 2, 1, 64)
    images = [photos["coffee"], photos["rocket"]]
    assert np.allclose(embed_images(images, cpu), embed_images(images, gpu), atol=2e-2)


def test_a_picture_framed_in_a_screenshot_gets_a_vector_close_to_its_original(photos):
    from dataclasses import replace

    from udfs import planted_disc
    from udfs.embedding import embed_views

    originals = [photos["chelsea"], photos["coffee"], photos["astronaut"], photos["page"]]
    document = planted_disc.render_templates(1, seed=3)[0][2]  # a rendered page of text, no picture inside
    framed = [screenshot(photos["chelsea"], dark=False), screenshot(photos["coffee"], dark=True)]
    whole, inner = embed_views([*originals, document, *framed], replace(ONNX, framed=True))
    assert [v is None for v in inner] == [True] * 5 + [False] * 2  # no frame found in plain photos or a page
    for copy, original in ((5, 0), (6, 1)):
        assert float(inner[copy] @ whole[original]) > 0.75, "the framed picture is close to its original"
        assert float(inner[copy] @ whole[original]) > float(whole[copy] @ whole[original]) + 0.1
    assert all(inner[k] is None for k in range(5))
    assert np.allclose([np.linalg.norm(inner[k]) for k in (5, 6)], 1.0, atol=1e-5)
    _, none = embed_views(framed, ONNX)  # framed views only when asked
    assert none == [None, None]


def test_a_picture_turned_on_a_fill_gets_an_upright_vector_close_to_its_original(photos):
    """Turned copies (small and large angles, dark, grey and white fills) of photos and of a page on
    a grey fill: the upright view is close to the original, far closer than the whole copy."""
    from dataclasses import replace

    from udfs import planted_disc
    from udfs.embedding import embed_views

    originals = [photos["chelsea"], photos["coffee"], photos["astronaut"], planted_disc.render_templates(1, seed=3)[0][2]]
    turns = [(6, (0, 0, 0)), (-25, (128, 128, 128)), (38, (255, 255, 255)), (-12, (128, 128, 128))]
    turned = [turned_copy(original, angle, fill) for original, (angle, fill) in zip(originals, turns)]
    whole, inner = embed_views([*originals, *turned], replace(ONNX, framed=True))
    assert all(v is None for v in inner[:4]), "an upright photo or page shows nothing turned inside it"
    for k in range(4):
        upright, as_is = float(inner[4 + k] @ whole[k]), float(whole[4 + k] @ whole[k])
        assert upright > 0.8 and upright > as_is + 0.1, (turns[k], upright, as_is)


def turned_copy(data: bytes, angle: float, fill: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill).save(buffer, format="PNG")
    return buffer.getvalue()
