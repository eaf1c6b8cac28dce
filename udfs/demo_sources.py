"""The embedded demo dataset: real photos from PyPI packages written out in all four source formats.

Photos come from scikit-image, scikit-learn and matplotlib (public domain, CC0 or CC-BY; see
their package READMEs). Each format also carries a few bad inputs of the kinds normalisation must
turn into reason codes. `EXPECTED` says, per (source, key), what the pipeline should do with it;
the demo prints it and the tests check it.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance

from schemas.silver_rejects import Reason

# (package, path inside the package, what the photo shows)
PHOTOS: list[tuple[str, str, str]] = [
    ("skimage", "data/astronaut.png", "Astronaut Eileen Collins in her flight suit, in front of the US flag"),
    ("skimage", "data/coffee.png", "a cup of coffee on a saucer, seen from above"),
    ("skimage", "data/chelsea.png", "a tabby cat looking at the camera"),
    ("skimage", "data/rocket.jpg", "a rocket on its launch pad"),
    ("skimage", "data/hubble_deep_field.jpg", "thousands of distant galaxies seen by the Hubble telescope"),
    ("skimage", "data/coins.png", "old coins laid out in rows"),
    ("skimage", "data/camera.png", "a photographer standing behind a camera on a tripod"),
    ("skimage", "data/moon.png", "craters on the surface of the moon"),
    ("skimage", "data/page.png", "a scanned page of printed text"),
    ("skimage", "data/ihc.png", "a stained tissue sample under a microscope"),
    ("skimage", "data/retina.jpg", "a photograph of the back of a human eye"),
    ("skimage", "data/motorcycle_left.png", "a motorcycle parked indoors"),
    ("skimage", "data/brick.png", "a brick wall"),
    ("skimage", "data/grass.png", "a patch of grass"),
    ("skimage", "data/phantom.png", "a medical imaging test phantom made of ellipses"),
    ("sklearn", "datasets/images/china.jpg", "a Chinese temple with trees in front of it"),
    ("sklearn", "datasets/images/flower.jpg", "a pink flower in close-up"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "a portrait of Grace Hopper in uniform"),
]
ANIMATED_TINY = ("skimage", "data/no_time_for_that_tiny.gif")


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    caption: str
    is_color: bool
    width: int
    height: int


@dataclass(frozen=True)
class Expected:
    """What should happen to one demo record: kept (reason None), or rejected with `reason`.

    `key` is the record's key in its source, or the file name for a file that cannot be read.
    """

    source: str
    key: str
    reason: str | None
    stage: str = "normalize"
    note: str | None = None  # a normalisation note the kept image must carry (e.g. "mode:CMYK->RGB")


def package_file(package: str, inner: str) -> Path:
    module = __import__(package)
    return Path(module.__file__).parent / inner


def load_photos() -> list[Photo]:
    photos, seen = [], set()
    for package, inner, caption in PHOTOS:
        path = package_file(package, inner)
        if path.name in seen:
            continue
        seen.add(path.name)
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
            is_color = bool(np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean() > 2)
            photos.append(Photo(path.stem, data, caption, is_color, image.width, image.height))
    return photos


def questions(photo: Photo) -> list[tuple[str, str]]:
    """Questions whose answers are true of the photo (from its caption and its pixels)."""
    shape = "wider than it is tall" if photo.width > photo.height else "taller than it is wide" if photo.height > photo.width else "square"
    return [
        ("What is shown in this image?", f"The image shows {photo.caption}."),
        ("Is this photo in color or in grayscale? Answer with a single word.", "Color" if photo.is_color else "Grayscale"),
        ("Is the image wider than it is tall, taller than it is wide, or square?", f"It is {shape}."),
    ]


# ---------------------------------------------------------------- bad inputs, made from real photos


def jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **options)
    return buffer.getvalue()


def png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def hard_images(photos: list[Photo]) -> dict[str, tuple[bytes, str | None, str | None]]:
    """name -> (bytes, expected reason or None, expected note): every decode case normalise handles."""
    by_name = {p.name: p for p in photos}
    coffee = Image.open(io.BytesIO(by_name["coffee"].data)).convert("RGB")
    cat = Image.open(io.BytesIO(by_name["chelsea"].data)).convert("RGB")
    camera = Image.open(io.BytesIO(by_name["camera"].data)).convert("L")
    moon = np.asarray(Image.open(io.BytesIO(by_name["moon"].data)).convert("L"), dtype=np.uint16)

    rotated = Image.Exif()
    rotated[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    palette = cat.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    alpha = Image.linear_gradient("L").resize(camera.size)
    sixteen_bit = Image.fromarray(moon * moon)  # 16-bit values that do not scale back to the 8-bit photo
    frames = [cat.rotate(angle) for angle in (0, 10, 20)]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    whole = jpeg(coffee)
    bomb = png(Image.new("1", (8000, 8000)))

    return {
        "cmyk.jpg": (jpeg(coffee.convert("CMYK")), None, "mode:CMYK->RGB"),
        "palette_transparent.png": (png(palette, transparency=0), None, "alpha:flattened_on_white"),
        "gray_alpha.png": (png(Image.merge("LA", (camera, alpha))), None, "mode:LA->RGB"),
        "sixteen_bit.png": (png(sixteen_bit), None, "mode:I;16->RGB"),
        "exif_rotated.jpg": (jpeg(coffee, exif=rotated), None, "exif_orientation:6"),
        "animated.gif": (animated.getvalue(), None, "animated:3_frames:first_kept"),
        "animated_tiny.gif": (package_file(*ANIMATED_TINY).read_bytes(), Reason.IMAGE_TOO_SMALL, None),
        "truncated.jpg": (whole[: len(whole) * 2 // 3], Reason.TRUNCATED_IMAGE, None),
        "zero_bytes.jpg": (b"", Reason.EMPTY_FILE, None),
        "not_an_image.png": (b"<html>404 not found</html>", Reason.UNDECODABLE_IMAGE, None),
        "bomb.png": (bomb, Reason.DECOMPRESSION_BOMB, None),
        "tiny.png": (png(cat.resize((16, 12))), Reason.IMAGE_TOO_SMALL, None),
        "banner.png": (png(coffee.resize((1200, 60))), Reason.EXTREME_ASPECT_RATIO, None),
    }


def long_text(words: int, seed: int = 7) -> str:
    vocabulary = "galaxy coffee saucer rocket tissue retina temple flower portrait coins moon grass brick".split()
    rng = random.Random(seed)
    return " ".join(rng.choice(vocabulary) + rng.choice(["", ",", "."]) for _ in range(words))


# ---------------------------------------------------------------- the four formats


def build(root: Path) -> list[Expected]:
    """Write the demo sources under `root` (replacing what was there); return the expected outcomes."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    photos = load_photos()
    expected: list[Expected] = []
    expected += _hf_parquet(root / "hf_vqa", photos)
    expected += _llava(root / "llava", photos)
    expected += _webdataset(root / "webdataset", photos)
    expected += _cauldron(root / "cauldron", photos)
    _benchmark(root / "benchmark", photos)
    (root / "EXPECTED.json").write_text(json.dumps([e.__dict__ for e in expected], indent=1))
    return expected


def load_expected(root: Path) -> list[Expected]:
    return [Expected(**e) for e in json.loads((root / "EXPECTED.json").read_text())]


def _image_struct(name: str, data: bytes) -> dict:
    return {"bytes": data, "path": name}


def _hf_parquet(folder: Path, photos: list[Photo]) -> list[Expected]:
    """Hugging Face datasets parquet: an `image` struct column and question/answer columns."""
    folder.mkdir(parents=True)
    source, rows, expected = "demo_hf_vqa", [], []
    for photo in photos:
        for n, (question, answer) in enumerate(questions(photo)[:2]):
            rows.append({"id": f"{photo.name}-{n}", "image": _image_struct(f"{photo.name}.img", photo.data), "question": question, "answer": answer})
            expected.append(Expected(source, f"{photo.name}-{n}", None))
    bad = hard_images(photos)
    for name in ("truncated.jpg", "zero_bytes.jpg", "not_an_image.png"):
        data, reason, _ = bad[name]
        rows.append({"id": f"bad-{name}", "image": _image_struct(name, data), "question": "What is in this picture?", "answer": "A photo."})
        expected.append(Expected(source, f"bad-{name}", reason))
    rows.append({"id": "empty-answer", "image": _image_struct("coffee.png", photos[1].data), "question": "What is this?", "answer": "  "})
    expected.append(Expected(source, "empty-answer", Reason.EMPTY_TEXT))
    schema = pa.schema(
        [("id", pa.string()), ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
         ("question", pa.string()), ("answer", pa.string())]
    )
    half = len(rows) // 2
    pq.write_table(pa.Table.from_pylist(rows[:half], schema=schema), folder / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[half:], schema=schema), folder / "train-00001-of-00002.parquet")
    return expected


def _llava(folder: Path, photos: list[Photo]) -> list[Expected]:
    """LLaVA JSON: `conversations` of human/gpt turns with `<image>`, images in a folder."""
    images = folder / "images"
    images.mkdir(parents=True)
    source, records, expected = "demo_llava", [], []

    def add(key: str, image: str | list | None, conversation: list, reason: str | None, note: str | None = None):
        record = {"id": key, "conversations": conversation}
        if image is not None:
            record["image"] = image
        records.append(record)
        expected.append(Expected(source, key, reason, note=note))

    def chat(*pairs: tuple[str, str]) -> list[dict]:
        turns = []
        for i, (question, answer) in enumerate(pairs):
            turns.append({"from": "human", "value": ("<image>\n" if i == 0 else "") + question})
            turns.append({"from": "gpt", "value": answer})
        return turns

    for photo in photos:
        extension = ".jpg" if photo.data[:2] == b"\xff\xd8" else ".png"
        (images / f"{photo.name}{extension}").write_bytes(photo.data)
        add(f"llava-{photo.name}", f"images/{photo.name}{extension}", chat(*questions(photo)), None)
    for name, (data, reason, note) in hard_images(photos).items():
        (images / name).write_bytes(data)
        add(f"hard-{name}", f"images/{name}", chat(("Describe the image.", "It is a test image.")), reason, note)
    first = f"images/{photos[0].name}.png"
    add("missing-file", "images/does_not_exist.jpg", chat(("What is this?", "A photo.")), Reason.MISSING_IMAGE)
    add("two-tokens-one-image", first, [{"from": "human", "value": "<image>\n<image>\nCompare the two images."}, {"from": "gpt", "value": "They match."}], Reason.MISSING_IMAGE)
    add("repeated", first, chat(("What is this? " * 8, "An astronaut.")), Reason.REPEATED_TEXT)
    add("too-long", first, chat(("Tell me a long story about this image.", long_text(6000))), Reason.TEXT_TOO_LONG)
    add("not-a-list", first, "human: hi", Reason.MALFORMED_RECORD)
    add("unknown-role", first, [{"from": "narrator", "value": "Once upon a time"}], Reason.MALFORMED_RECORD)
    add("no-image", None, [{"from": "human", "value": "What is two plus two?"}, {"from": "gpt", "value": "Four."}], Reason.NO_IMAGE)
    add("cleaned", first, chat(("Who is in this photo? Answer directly.", "Eileen Collins.")), None)
    add("bench-question", first, chat((BENCHMARK_LEAKS["text"][1], "Four of them.")), None)
    records.append({"id": "llava-coffee", "image": "images/coffee.png", "conversations": chat(("Duplicate id.", "Yes."))})
    expected.append(Expected(source, "llava-coffee", Reason.DUPLICATE_KEY, stage="ingest"))
    (folder / "llava_demo.json").write_text(json.dumps(records, indent=1))
    return expected


NEAR_COPIES = {
    # name: (photo, what was done to it): a second copy of a photo demo_hf_vqa already asks about,
    # with the same question, so dedup groups the pair (HoneyPipe: image and instruction collide)
    "near-chelsea": ("chelsea", lambda im: im.resize((im.width * 4 // 5, im.height * 4 // 5))),
    "near-coffee": ("coffee", lambda im: ImageEnhance.Brightness(im).enhance(1.15)),
}


def near_copy(photo: Photo, change) -> bytes:
    buffer = io.BytesIO()
    change(Image.open(io.BytesIO(photo.data)).convert("RGB")).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def _webdataset(folder: Path, photos: list[Photo]) -> list[Expected]:
    """WebDataset: tar shards of <key>.jpg/png + <key>.json members; one shard is corrupt, and the
    second carries near-copies of two photos (see NEAR_COPIES) for dedup to find."""
    folder.mkdir(parents=True)
    source, expected = "demo_webdataset", []
    by_name = {p.name: p for p in photos}
    shards = [photos[: len(photos) // 2], photos[len(photos) // 2 :]]
    for number, shard in enumerate(shards):
        path = folder / f"shard-{number:05d}.tar"
        members = []
        for photo in shard:
            extension = "jpg" if photo.data[:2] == b"\xff\xd8" else "png"
            question, answer = questions(photo)[2]
            members.append((photo.name, extension, photo.data, {"question": question, "answer": answer, "caption": photo.caption}))
        if number == 1:
            for name, (original, change) in NEAR_COPIES.items():
                question, answer = questions(by_name[original])[0]
                members.append((name, "jpg", near_copy(by_name[original], change), {"question": question, "answer": answer}))
        with tarfile.open(path, "w") as archive:
            for key, extension, data, payload in members:
                for member, content in ((f"{key}.{extension}", data), (f"{key}.json", json.dumps(payload).encode())):
                    info = tarfile.TarInfo(member)
                    info.size = len(content)
                    archive.addfile(info, io.BytesIO(content))
                expected.append(Expected(source, f"{path.name}/{key}", None))
    (folder / "shard-00002.tar").write_bytes(b"this shard was cut off during upload" * 10)
    expected.append(Expected(source, "shard-00002.tar", Reason.UNREADABLE_FILE, stage="ingest"))
    return expected


def _cauldron(folder: Path, photos: list[Photo]) -> list[Expected]:
    """The Cauldron / FineVision parquet: `images` list + `texts` list of {user, assistant}."""
    folder.mkdir(parents=True)
    source, rows, expected = "demo_cauldron", [], []
    for first, second in zip(photos[::2], photos[1::2]):
        rows.append(
            {
                "images": [_image_struct(f"{first.name}.img", first.data), _image_struct(f"{second.name}.img", second.data)],
                "texts": [
                    {"user": "What does the first image show?", "assistant": f"It shows {first.caption}.", "source": "demo"},
                    {"user": "And the second one?", "assistant": f"It shows {second.caption}.", "source": "demo"},
                ],
            }
        )
        expected.append(Expected(source, f"part-0.parquet:{len(rows) - 1}", None))
    rows.append({"images": [_image_struct("china.img", photos[-3].data)], "texts": []})
    expected.append(Expected(source, f"part-0.parquet:{len(rows) - 1}", Reason.EMPTY_TEXT))
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet")
    return expected


# ---------------------------------------------------------------- a benchmark to decontaminate against

BENCHMARK_LEAKS = {
    # kind: (benchmark item, what leaks): the image is a recompressed, shrunken rocket photo that
    # training sources hold; the question is asked word for word by the llava sample `bench-question`.
    "image": ("rocket-launch", "rocket"),
    "text": ("coins-count", "Counting only the coins in the top row of this chart, how many of them are older than the coin in the middle?"),
}


def chart(values: list[float], title: str) -> bytes:
    """A rendered bar chart: benchmark-like images that no training source contains."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(4, 3), dpi=80)
    axes.bar([f"Q{i + 1}" for i in range(len(values))], values, color="#4c72b0")
    axes.set_title(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


def _benchmark(folder: Path, photos: list[Photo]) -> None:
    """A three-item benchmark in LLaVA JSON: one image leak, one question leak, one clean item."""
    images = folder / "images"
    images.mkdir(parents=True)
    by_name = {p.name: p for p in photos}
    item, photo = BENCHMARK_LEAKS["image"]
    (images / f"{item}.jpg").write_bytes(near_copy(by_name[photo], lambda im: im.resize((im.width * 9 // 10, im.height * 9 // 10))))
    coins_item, coins_question = BENCHMARK_LEAKS["text"]
    (images / f"{coins_item}.png").write_bytes(chart([3, 5, 2, 4], "Coins by row"))
    (images / "sales-trend.png").write_bytes(chart([10, 12, 9, 15], "Quarterly sales"))
    items = [
        (item, f"{item}.jpg", "What is about to happen to the vehicle in this photo, judging by its surroundings?", "It will launch."),
        (coins_item, f"{coins_item}.png", coins_question, "2"),
        ("sales-trend", "sales-trend.png", "In which quarter were sales highest, and by how much did they exceed the first quarter?", "Q4, by 5."),
    ]
    records = [
        {"id": key, "image": f"images/{image}",
         "conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]}
        for key, image, question, answer in items
    ]
    (folder / "benchmark.json").write_text(json.dumps(records, indent=1))
