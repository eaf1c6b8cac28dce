"""A second planted near-duplicate set, made of what the first one lacks: other content and the
copy-detection edit families of DISC21 (the Image Similarity Challenge's augmentations).

- Content: rendered documents, forms, receipts, app screens, flow diagrams and street maps, each
  drawn from a template (layout, colours, fonts, sizes) and filled with random words and numbers;
  every template is drawn twice with different text: the two are NOT copies (same-template
  negatives, the look-alikes that fool global signatures). Real photos (passed in) join as
  originals without look-alikes.
- Edits (`FAMILIES`, one copy of each original per entry): mirror; rotations by 90, 180 and 270
  degrees, small (3-8 degrees) and large (15-40); framing inside a screenshot of an image viewer;
  overlays of text, emoji-like marks and a logo; hue, saturation, gamma and grayscale; blur and
  noise; aspect changes; crops removing 10-30%; and combinations of them.

Deterministic given the seed; pure Pillow and numpy. Images are udfs.planted.PlantedImage, so
tests/bench/eval_dedup_quality.py scores both sets with one scorer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from udfs.planted import PlantedImage, decode, encode

# ---------------------------------------------------------------- text


SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "de", "pa", "zu", "ber", "ton", "lin", "mar", "gel", "fos",
             "qui", "dra", "ven", "sel", "hop", "wa", "ex", "or", "ul", "im", "an"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))


def _words(rng: random.Random, count: int, capital: bool = True) -> str:
    text = " ".join(_word(rng) for _ in range(count))
    return text.capitalize() if capital else text


def _amount(rng: random.Random) -> str:
    return f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}"


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _colour(rng: random.Random, low: int = 0, high: int = 255) -> tuple[int, int, int]:
    return tuple(rng.randint(low, high) for _ in range(3))


# ---------------------------------------------------------------- content: template(rng) -> layout; fill(layout, rng) -> image


def _document(t: random.Random, c: random.Random) -> Image.Image:
    width, height = t.choice([(620, 820), (700, 900), (560, 760)])
    image = Image.new("RGB", (width, height), _colour(t, 235, 255))
    draw = ImageDraw.Draw(image)
    margin, size, ink = t.randint(40, 70), t.randint(13, 17), _colour(t, 0, 60)
    header = _colour(t, 20, 160)
    draw.rectangle((0, 0, width, t.randint(50, 80)), fill=header)
    draw.text((margin, 18), _words(c, 3).upper(), font=_font(size + 8), fill=(255, 255, 255))
    y = 110
    for _ in range(t.randint(5, 8)):
        draw.text((margin, y), _words(c, 2), font=_font(size + 4), fill=header)
        y += size + 14
        for _ in range(t.randint(3, 5)):
            draw.text((margin, y), _words(c, t.randint(7, 9), capital=False), font=_font(size), fill=ink)
            y += size + 6
        y += 14
        if y > height - 80:
            break
    draw.text((margin, height - 40), f"page {c.randint(1, 40)} - {_words(c, 2)}", font=_font(size - 2), fill=ink)
    return image


def _form(t: random.Random, c: random.Random) -> Image.Image:
    width, height = t.choice([(640, 760), (720, 680)])
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    accent, size = _colour(t, 0, 140), t.randint(14, 17)
    draw.text((30, 20), _words(t, 3).upper(), font=_font(size + 10), fill=accent)  # the form's title: template
    labels = [_words(t, 2) for _ in range(t.randint(8, 11))]
    y, box_left = 80, t.randint(200, 260)
    for label in labels:
        draw.text((30, y + 6), label + ":", font=_font(size), fill=(40, 40, 40))
        draw.rectangle((box_left, y, width - 30, y + size + 16), outline=accent, width=2)
        value = c.choice([_words(c, c.randint(1, 3)), str(c.randint(10000, 99999)), f"{c.randint(1, 28)}/{c.randint(1, 12)}/19{c.randint(50, 99)}"])
        draw.text((box_left + 8, y + 6), value, font=_font(size), fill=(10, 10, 90))
        y += size + 34
    for k in range(3):  # check boxes: which are ticked is content
        x = 30 + k * 200
        draw.rectangle((x, y + 10, x + 18, y + 28), outline=accent, width=2)
        if c.random() < 0.5:
            draw.line((x + 3, y + 19, x + 8, y + 25, x + 16, y + 12), fill=(10, 10, 90), width=3)
        draw.text((x + 26, y + 10), _words(t, 1), font=_font(size), fill=(40, 40, 40))
    return image


def _receipt(t: random.Random, c: random.Random) -> Image.Image:
    width = t.choice([320, 360, 400])
    lines = t.randint(10, 15)
    size = t.randint(14, 16)
    height = 170 + lines * (size + 8)
    image = Image.new("RGB", (width, height), _colour(t, 240, 255))
    draw = ImageDraw.Draw(image)
    ink = _colour(t, 0, 50)
    draw.text((20, 15), _words(t, 2).upper(), font=_font(size + 8), fill=ink)  # the shop: template
    draw.text((20, 50), f"{c.randint(1, 28):02d}.{c.randint(1, 12):02d}.20{c.randint(10, 29)}  {c.randint(0, 23):02d}:{c.randint(0, 59):02d}",
              font=_font(size), fill=ink)
    y = 85
    for _ in range(lines):
        draw.text((20, y), _words(c, c.randint(1, 2), capital=False), font=_font(size), fill=ink)
        draw.text((width - 90, y), _amount(c), font=_font(size), fill=ink)
        y += size + 8
    draw.line((20, y + 5, width - 20, y + 5), fill=ink, width=1)
    draw.text((20, y + 15), "TOTAL", font=_font(size + 4), fill=ink)
    draw.text((width - 100, y + 15), _amount(c), font=_font(size + 4), fill=ink)
    return image


def _app_screen(t: random.Random, c: random.Random) -> Image.Image:
    width, height = t.choice([(360, 740), (390, 800)])
    background, bar = _colour(t, 230, 255), _colour(t, 20, 200)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 28), fill=tuple(max(0, v - 40) for v in bar))
    draw.text((12, 6), f"{c.randint(0, 23):02d}:{c.randint(0, 59):02d}", font=_font(13), fill=(255, 255, 255))
    draw.rectangle((0, 28, width, 88), fill=bar)
    draw.text((16, 44), _words(t, 2), font=_font(22), fill=(255, 255, 255))
    y, row = 100, t.randint(70, 90)
    while y + row < height - 70:
        draw.ellipse((16, y + 10, 16 + row - 24, y + row - 14), fill=_colour(c, 60, 220))
        draw.text((row + 4, y + 12), _words(c, 2), font=_font(17), fill=(20, 20, 20))
        draw.text((row + 4, y + 38), _words(c, 4, capital=False), font=_font(13), fill=(110, 110, 110))
        draw.line((row + 4, y + row - 2, width, y + row - 2), fill=(210, 210, 210))
        y += row
    draw.rectangle((0, height - 60, width, height), fill=(250, 250, 250))
    for k in range(4):
        x = width * (2 * k + 1) // 8
        draw.rounded_rectangle((x - 14, height - 48, x + 14, height - 22), radius=6, outline=bar, width=3)
    return image


def _diagram(t: random.Random, c: random.Random) -> Image.Image:
    width, height = t.choice([(800, 560), (720, 620)])
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    fill, line = _colour(t, 150, 250), _colour(t, 0, 90)
    columns, rows = t.randint(3, 4), t.randint(2, 3)
    boxes = []
    for r in range(rows):
        for k in range(columns):
            x = 40 + k * (width - 80) // columns
            y = 50 + r * (height - 100) // rows
            boxes.append((x, y, x + (width - 80) // columns - 50, y + 70))
    for (x0, y0, x1, y1), (u0, v0, u1, v1) in zip(boxes, boxes[1:]):
        draw.line(((x1 + x0) // 2, y1, (u0 + u1) // 2, v0), fill=line, width=3)
    for x0, y0, x1, y1 in boxes:
        draw.rounded_rectangle((x0, y0, x1, y1), radius=t.randint(0, 14), fill=fill, outline=line, width=3)
        draw.text((x0 + 10, y0 + 14), _words(c, 1), font=_font(18), fill=line)
        draw.text((x0 + 10, y0 + 40), _words(c, 2, capital=False), font=_font(13), fill=line)
    return image


def _street_map(t: random.Random, c: random.Random) -> Image.Image:
    width, height = t.choice([(760, 620), (700, 700)])
    image = Image.new("RGB", (width, height), (242, 239, 233))
    draw = ImageDraw.Draw(image)
    grid = t.randint(90, 130)
    for x in range(t.randint(20, 60), width, grid):  # the street grid: template
        draw.line((x, 0, x + t.randint(-40, 40), height), fill=(255, 255, 255), width=t.randint(6, 12))
    for y in range(t.randint(20, 60), height, grid):
        draw.line((0, y, width, y + t.randint(-40, 40)), fill=(255, 255, 255), width=t.randint(6, 12))
    draw.line((0, t.randint(0, height), width, t.randint(0, height)), fill=(250, 200, 90), width=14)
    for _ in range(c.randint(2, 4)):  # parks, water and places: content
        x, y = c.randint(0, width - 150), c.randint(0, height - 120)
        draw.rectangle((x, y, x + c.randint(60, 150), y + c.randint(40, 120)), fill=c.choice([(200, 230, 190), (170, 210, 240)]))
    for _ in range(c.randint(6, 10)):
        x, y = c.randint(10, width - 120), c.randint(10, height - 20)
        draw.ellipse((x, y, x + 9, y + 9), fill=(220, 60, 60))
        draw.text((x + 14, y - 3), _words(c, 1), font=_font(14), fill=(60, 60, 60))
    return image


CONTENT: dict[str, Callable[[random.Random, random.Random], Image.Image]] = {
    "document": _document, "form": _form, "receipt": _receipt, "app_screen": _app_screen,
    "diagram": _diagram, "map": _street_map,
}


def render_templates(per_kind: int, seed: int = 0) -> list[tuple[str, str, bytes]]:
    """(original id, kind, PNG) for `per_kind` templates of every CONTENT kind, each filled twice
    (ids `<kind>-<n>a` and `<kind>-<n>b`: same template, different text)."""
    out = []
    for kind, draw in CONTENT.items():
        for n in range(per_kind):
            for side in "ab":
                template_seed = f"{seed}-{kind}-{n}"
                image = draw(random.Random(template_seed), random.Random(f"{template_seed}-{side}"))
                out.append((f"{kind}-{n}{side}", kind, encode(image)))
    return out


# ---------------------------------------------------------------- the edit families


def _rotate(image: Image.Image, angle: float, rng: random.Random) -> Image.Image:
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True,
                        fillcolor=rng.choice([(0, 0, 0), (255, 255, 255), (128, 128, 128)]))


def _small_rotation(image, rng):
    return _rotate(image, rng.choice([-1, 1]) * rng.uniform(3, 8), rng)


def _large_rotation(image, rng):
    return _rotate(image, rng.choice([-1, 1]) * rng.uniform(15, 40), rng)


def _framed(image: Image.Image, rng: random.Random) -> Image.Image:
    """The image shown in an image viewer, screenshotted: title bar, tool bar, side panel, status bar."""
    scale = rng.uniform(0.55, 0.9)
    shown = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))), Image.Resampling.LANCZOS)
    panel, bar = rng.randint(120, 220), 34
    width, height = shown.width + panel + rng.randint(40, 120), shown.height + 2 * bar + rng.randint(60, 140)
    dark = rng.random() < 0.5
    canvas = Image.new("RGB", (width, height), (45, 45, 50) if dark else (235, 235, 238))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, bar), fill=(25, 25, 30) if dark else (210, 210, 215))
    draw.text((12, 9), f"{_word(rng)}_{rng.randint(100, 9999)}.jpg - Viewer", font=_font(14),
              fill=(230, 230, 230) if dark else (20, 20, 20))
    draw.rectangle((0, bar, panel, height - bar), fill=(60, 60, 66) if dark else (245, 245, 248))
    for k in range(6):
        draw.rectangle((12, bar + 14 + k * 44, panel - 12, bar + 48 + k * 44), fill=(90, 90, 100) if dark else (220, 220, 228))
    draw.rectangle((0, height - bar, width, height), fill=(25, 25, 30) if dark else (210, 210, 215))
    draw.text((12, height - bar + 9), f"{shown.width} x {shown.height}  {rng.randint(10, 400)} KB", font=_font(13),
              fill=(200, 200, 200) if dark else (40, 40, 40))
    x = panel + rng.randint(10, width - panel - shown.width - 10)
    y = bar + rng.randint(10, height - 2 * bar - shown.height - 10)
    canvas.paste(shown, (x, y))
    return canvas


def _overlay_text(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    size = max(12, round(out.height * rng.uniform(0.05, 0.08)))
    text = _words(rng, rng.randint(2, 3))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=_font(size))
    x = rng.randint(0, max(0, out.width - (right - left)))
    y = rng.randint(0, max(0, out.height - (bottom - top)))
    draw.text((x, y), text, font=_font(size), fill=_colour(rng), stroke_width=2, stroke_fill=(0, 0, 0))
    return out


def _overlay_emoji(image: Image.Image, rng: random.Random) -> Image.Image:
    """Two or three emoji-like faces (drawn: no emoji font ships with Pillow)."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    for _ in range(rng.randint(2, 3)):
        r = max(8, round(min(out.size) * rng.uniform(0.05, 0.09)))
        x, y = rng.randint(r, out.width - r), rng.randint(r, out.height - r)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=rng.choice([(255, 205, 40), (255, 120, 150), (120, 200, 255)]),
                     outline=(60, 40, 0), width=2)
        draw.ellipse((x - r // 2, y - r // 3, x - r // 4, y), fill=(40, 30, 0))
        draw.ellipse((x + r // 4, y - r // 3, x + r // 2, y), fill=(40, 30, 0))
        draw.arc((x - r // 2, y - r // 4, x + r // 2, y + r // 2), 20, 160, fill=(40, 30, 0), width=2)
    return out


def _overlay_logo(image: Image.Image, rng: random.Random) -> Image.Image:
    """A half-transparent badge with letters in a corner, as a watermark."""
    out = image.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = round(out.width * rng.uniform(0.18, 0.28)), round(out.height * rng.uniform(0.07, 0.12))
    x = rng.choice([8, out.width - w - 8])
    y = rng.choice([8, out.height - h - 8])
    draw.rounded_rectangle((x, y, x + w, y + h), radius=h // 3, fill=(*_colour(rng), 150))
    draw.text((x + 8, y + h // 4), _word(rng).upper(), font=_font(max(10, h // 2)), fill=(255, 255, 255, 220))
    return Image.alpha_composite(out, layer).convert("RGB")


def _hue(image: Image.Image, rng: random.Random) -> Image.Image:
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + rng.randint(30, 220)) % 256
    shifted = Image.fromarray(hsv, "HSV").convert("RGB")
    return ImageEnhance.Color(shifted).enhance(rng.uniform(0.6, 1.5))


def _gamma(image: Image.Image, rng: random.Random) -> Image.Image:
    gamma = rng.choice([rng.uniform(0.5, 0.75), rng.uniform(1.4, 2.0)])
    table = [round(255 * (v / 255) ** gamma) for v in range(256)]
    return image.point(table * 3)


def _grayscale(image, rng):
    return ImageOps.grayscale(image).convert("RGB")


def _blur(image, rng):
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.5)))


def _noise(image: Image.Image, rng: random.Random) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    noisy = pixels + np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, rng.uniform(8, 16), pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _aspect(image: Image.Image, rng: random.Random) -> Image.Image:
    factor = rng.choice([rng.uniform(0.65, 0.8), rng.uniform(1.25, 1.5)])
    if rng.random() < 0.5:
        return image.resize((round(image.width * factor), image.height), Image.Resampling.BICUBIC)
    return image.resize((image.width, round(image.height * factor)), Image.Resampling.BICUBIC)


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """Removes 10-30% of the area, unevenly from the sides."""
    keep = np.sqrt(1 - rng.uniform(0.1, 0.3))
    w, h = round(image.width * keep), round(image.height * keep)
    x, y = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
    return image.crop((x, y, x + w, y + h))


def _steps(*steps) -> Callable[[Image.Image, random.Random], Image.Image]:
    def apply(image, rng):
        for step in steps:
            image = step(image, rng)
        return image

    return apply


# name -> (edit, output format); every original gets one copy per entry
FAMILIES: dict[str, tuple[Callable[[Image.Image, random.Random], Image.Image], str]] = {
    "mirror": (lambda im, rng: ImageOps.mirror(im), "PNG"),
    "rotate90": (lambda im, rng: im.transpose(Image.Transpose.ROTATE_90), "PNG"),
    "rotate180": (lambda im, rng: im.transpose(Image.Transpose.ROTATE_180), "PNG"),
    "rotate270": (lambda im, rng: im.transpose(Image.Transpose.ROTATE_270), "PNG"),
    "rotate_small": (_small_rotation, "PNG"),
    "rotate_large": (_large_rotation, "PNG"),
    "framed": (_framed, "PNG"),
    "overlay_text": (_overlay_text, "PNG"),
    "overlay_emoji": (_overlay_emoji, "PNG"),
    "overlay_logo": (_overlay_logo, "PNG"),
    "hue": (_hue, "PNG"),
    "gamma": (_gamma, "PNG"),
    "grayscale": (_grayscale, "PNG"),
    "blur": (_blur, "PNG"),
    "noise": (_noise, "JPEG"),
    "aspect": (_aspect, "PNG"),
    "crop": (_crop, "PNG"),
    "mirror+crop+jpeg": (_steps(lambda im, rng: ImageOps.mirror(im), _crop), "JPEG"),
    "rotate_small+logo+jpeg": (_steps(_small_rotation, _overlay_logo), "JPEG"),
    "framed+hue": (_steps(_framed, _hue), "PNG"),
    "grayscale+blur+crop": (_steps(_grayscale, _blur, _crop), "PNG"),
    "rotate90+aspect+noise": (_steps(lambda im, rng: im.transpose(Image.Transpose.ROTATE_90), _aspect, _noise), "JPEG"),
}


def planted_set(originals: Sequence[tuple[str, str, bytes]], seed: int = 0) -> list[PlantedImage]:
    """Every original and one copy of it per FAMILIES entry."""
    out = []
    for original_id, kind, data in originals:
        out.append(PlantedImage(original_id, original_id, kind, "original", data))
        image = decode(data)
        for family, (edit, fmt) in FAMILIES.items():
            rng = random.Random(f"{seed}-{original_id}-{family}")
            out.append(PlantedImage(f"{original_id}~{family}", original_id, kind, family,
                                    encode(edit(image, rng), fmt, rng.randint(55, 85))))
    return out

