"""A planted near-duplicate set: originals, transformed copies of them, and the truth about which pairs are copies.

Pure Python and Pillow (matplotlib for the charts), no Spark: the dedup quality benchmark
(tests/bench/eval_dedup_quality.py) and tests/test_planted_quality.py build their sets here.

- Originals are real photos (passed in) and rendered charts (`render_charts`). Charts come in
  look-alike pairs: the same kind, style, size, colours, titles and axes, different data. Two
  such charts are NOT copies of each other; they are the hard negatives.
- Each original gets one copy per transformation (`TRANSFORMS`): resized, recompressed as a
  low-quality JPEG, cropped 3-8%, padded with a uniform border of 5-15%, brightness +-10-20%,
  a small text overlay, and combinations of them.
- True pairs are the pairs of images with the same `original_id` (original-copy and copy-copy).
- Distractors (unrelated real images, e.g. rendered tables or scenes) join as singletons.

Everything is deterministic given the seed.
"""

from __future__ import annotations

import io
import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont


@dataclass(frozen=True)
class PlantedImage:
    image_id: str
    original_id: str  # the group: copies carry their original's id; an original carries its own
    kind: str  # photo | chart | distractor (a singleton, never a copy of anything)
    transform: str  # "original" for an original or a distractor, else a TRANSFORMS key
    data: bytes


# ---------------------------------------------------------------- encoding


def encode(image: Image.Image, fmt: str = "PNG", quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


# ---------------------------------------------------------------- transformations (image, rng) -> (image, format)


def _resize(image: Image.Image, rng: random.Random) -> Image.Image:
    scale = rng.uniform(0.4, 0.75)
    return image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))), Image.Resampling.BICUBIC)


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """Remove 3-8% of the width and of the height, split unevenly between the two sides."""
    w, h = image.size
    cut_w, cut_h = round(w * rng.uniform(0.03, 0.08)), round(h * rng.uniform(0.03, 0.08))
    left, top = rng.randint(0, cut_w), rng.randint(0, cut_h)
    return image.crop((left, top, w - (cut_w - left), h - (cut_h - top)))


BORDER_COLOURS = [(255, 255, 255), (0, 0, 0), (128, 128, 128), (250, 240, 230), (20, 30, 60)]


def _border(image: Image.Image, rng: random.Random) -> Image.Image:
    """Pad with a uniform colour: 5-15% of the side on each side (letterboxed or all round)."""
    w, h = image.size
    colour = rng.choice(BORDER_COLOURS)
    fraction = rng.uniform(0.05, 0.15)
    if rng.random() < 0.3:  # letterbox: top and bottom only
        pads = (0, round(h * fraction), 0, round(h * fraction))
    else:
        pads = (round(w * fraction), round(h * fraction), round(w * rng.uniform(0.05, 0.15)), round(h * rng.uniform(0.05, 0.15)))
    out = Image.new("RGB", (w + pads[0] + pads[2], h + pads[1] + pads[3]), colour)
    out.paste(image, (pads[0], pads[1]))
    return out


def _brightness(image: Image.Image, rng: random.Random) -> Image.Image:
    factor = rng.choice([-1, 1]) * rng.uniform(0.1, 0.2) + 1
    return ImageEnhance.Brightness(image).enhance(factor)


def _text(image: Image.Image, rng: random.Random) -> Image.Image:
    """A short caption or watermark, about 5% of the image's height, somewhere near an edge."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    words = ["copyright", "sample", "stock", "photo", "demo", "draft", "source", "www.example.com", "2024", "(c)"]
    text = " ".join(rng.sample(words, 2))
    size = max(9, round(out.height * rng.uniform(0.04, 0.06)))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = rng.randint(0, max(0, out.width - (right - left)))
    y = rng.choice([rng.randint(0, max(0, out.height // 6)), rng.randint(out.height * 5 // 6 - (bottom - top), out.height - (bottom - top))])
    fill = rng.choice([(255, 255, 255), (0, 0, 0), (255, 0, 0)])
    stroke = (0, 0, 0) if fill == (255, 255, 255) else (255, 255, 255)
    draw.text((x, max(0, y)), text, font=font, fill=fill, stroke_width=1, stroke_fill=stroke)
    return out


Transform = Callable[[Image.Image, random.Random], tuple[Image.Image, str, int]]


def _single(step, fmt: str = "PNG") -> Transform:
    return lambda image, rng: (step(image, rng), fmt, 92)


def _jpeg(image: Image.Image, rng: random.Random) -> tuple[Image.Image, str, int]:
    return image, "JPEG", rng.randint(25, 45)


def _chain(*steps, quality: tuple[int, int] | None = None) -> Transform:
    def apply(image: Image.Image, rng: random.Random):
        for step in steps:
            image = step(image, rng)
        if quality is None:
            return image, "PNG", 92
        return image, "JPEG", rng.randint(*quality)

    return apply


# name -> transformation; every original gets one copy per entry
TRANSFORMS: dict[str, Transform] = {
    "resize": _single(_resize),
    "jpeg": _jpeg,
    "crop": _single(_crop),
    "border": _single(_border),
    "brightness": _single(_brightness),
    "text": _single(_text),
    "crop+jpeg": _chain(_crop, quality=(50, 75)),
    "border+resize+jpeg": _chain(_border, _resize, quality=(60, 85)),
    "brightness+text+jpeg": _chain(_brightness, _text, quality=(60, 85)),
    "crop+border": _chain(_crop, _border),
}


def transformed(data: bytes, name: str, rng: random.Random) -> bytes:
    image, fmt, quality = TRANSFORMS[name](decode(data), rng)
    return encode(image, fmt, quality)


# ---------------------------------------------------------------- charts


CHART_KINDS = ["bar", "barh", "line", "scatter", "hist", "stacked", "area", "pie", "step", "errorbar", "grouped", "stem"]
PALETTES = ["tab10", "viridis", "Set2", "plasma", "Dark2", "coolwarm", "Paired", "cividis"]


def _chart_style(rng: random.Random) -> dict:
    return {
        "kind": rng.choice(CHART_KINDS),
        "palette": rng.choice(PALETTES),
        "size": rng.choice([(6.4, 4.8), (6.0, 4.0), (5.0, 5.0), (7.0, 4.0)]),
        "dpi": rng.choice([72, 80, 96]),
        "grid": rng.random() < 0.5,
        "style": rng.choice(["default", "ggplot", "seaborn-v0_8-whitegrid", "bmh", "classic", "fivethirtyeight"]),
        "title": " ".join(rng.sample(["Monthly", "sales", "revenue", "of", "region", "growth", "index", "users", "by", "year", "Q3"], 3)).capitalize(),
        "n": rng.randint(5, 12),
        "series": rng.randint(1, 3),
    }


def render_chart(style: dict, rng: np.random.Generator) -> bytes:
    """One chart of `style` with fresh random data, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n, series = style["n"], style["series"]
    with plt.style.context(style["style"]):
        fig, ax = plt.subplots(figsize=style["size"], dpi=style["dpi"])
        colours = plt.get_cmap(style["palette"])(np.linspace(0.1, 0.9, max(series, n if style["kind"] == "pie" else 1)))
        x = np.arange(n)
        data = rng.uniform(1, 10, size=(series, n)).round(1)
        kind = style["kind"]
        labels = [f"s{k + 1}" for k in range(series)]
        if kind == "bar":
            ax.bar(x, data[0], color=colours[0])
        elif kind == "barh":
            ax.barh(x, data[0], color=colours[0])
        elif kind == "line":
            for k in range(series):
                ax.plot(x, np.cumsum(data[k]), marker="o", color=colours[k], label=labels[k])
        elif kind == "scatter":
            for k in range(series):
                ax.scatter(rng.uniform(0, 10, 4 * n), rng.uniform(0, 10, 4 * n), color=colours[k], label=labels[k])
        elif kind == "hist":
            ax.hist(rng.normal(0, 1, 60 * n), bins=2 * n, color=colours[0])
        elif kind == "stacked":
            bottom = np.zeros(n)
            for k in range(series):
                ax.bar(x, data[k], bottom=bottom, color=colours[k], label=labels[k])
                bottom += data[k]
        elif kind == "area":
            ax.stackplot(x, *data, colors=colours[:series], labels=labels)
        elif kind == "pie":
            ax.pie(data[0], colors=colours[:n], labels=[chr(65 + i) for i in range(n)])
        elif kind == "step":
            for k in range(series):
                ax.step(x, data[k], where="mid", color=colours[k], label=labels[k])
        elif kind == "errorbar":
            for k in range(series):
                ax.errorbar(x, data[k], yerr=rng.uniform(0.2, 1.5, n), fmt="o-", capsize=3, color=colours[k], label=labels[k])
        elif kind == "grouped":
            width = 0.8 / series
            for k in range(series):
                ax.bar(x + k * width, data[k], width=width, color=colours[k], label=labels[k])
        else:  # stem
            ax.stem(x, data[0])
        ax.set_title(style["title"])
        if kind != "pie":
            ax.set_xlabel("x")
            ax.set_ylabel("value")
            ax.grid(style["grid"])
            if series > 1 and kind not in {"bar", "barh", "hist", "stem"}:
                ax.legend(loc="upper left")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
    return buffer.getvalue()


def render_charts(look_alike_pairs: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """2 x `look_alike_pairs` charts as (id, png): chart-{k}a and chart-{k}b share everything but the data."""
    rng = random.Random(seed)
    charts = []
    for k in range(look_alike_pairs):
        style = _chart_style(rng)
        data_rng = np.random.default_rng(seed * 100_003 + k)
        charts.append((f"chart-{k:03d}a", render_chart(style, data_rng)))
        charts.append((f"chart-{k:03d}b", render_chart(style, data_rng)))
    return charts


# ---------------------------------------------------------------- the set


def planted_set(
    originals: Iterable[tuple[str, str, bytes]],
    transforms: Sequence[str] | None = None,
    distractors: Iterable[tuple[str, bytes]] = (),
    seed: int = 0,
) -> list[PlantedImage]:
    """Originals ((id, kind, bytes)), one copy of each per transformation, then the distractors.

    Copies are named `{original_id}~{transform}`.
    """
    names = list(TRANSFORMS) if transforms is None else list(transforms)
    out = []
    for original_id, kind, data in originals:
        out.append(PlantedImage(original_id, original_id, kind, "original", data))
        for name in names:
            rng = random.Random(f"{seed}:{original_id}:{name}")
            out.append(PlantedImage(f"{original_id}~{name}", original_id, kind, name, transformed(data, name, rng)))
    out.extend(PlantedImage(i, i, "distractor", "original", d) for i, d in distractors)
    return out


def true_pairs(images: Sequence[PlantedImage]) -> set[tuple[int, int]]:
    """Index pairs (i < j) of images that share an original."""
    groups: dict[str, list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.original_id, []).append(i)
    return {pair for members in groups.values() for pair in itertools.combinations(members, 2)}


def look_alike_pairs(images: Sequence[PlantedImage]) -> set[tuple[int, int]]:
    """Index pairs of the chart look-alikes' members (chart-Ka* x chart-Kb*): hard negatives."""
    by_stem: dict[str, dict[str, list[int]]] = {}
    for i, image in enumerate(images):
        if image.kind == "chart":
            stem, side = image.original_id[:-1], image.original_id[-1]
            by_stem.setdefault(stem, {}).setdefault(side, []).append(i)
    return {
        tuple(sorted(pair))
        for sides in by_stem.values()
        for pair in itertools.product(sides.get("a", []), sides.get("b", []))
    }

