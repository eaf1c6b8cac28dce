"""Near-duplicate detection quality on a small planted set, without Spark.

Real photos and look-alike chart pairs (udfs/planted.py), one copy of each original per
transformation (resize, JPEG, crop, border, brightness, caption, combinations). The rule the
configuration sets up (conf/base.yaml: trimmed pHash, every pHash and SSCD pair confirmed by the
pixel check, among each image's nearest candidates) must reach recall >= 0.9 at precision
>= 0.98 over the whole step (pairs -> groups) and find >= 0.9 of planted leaks with no false one;
what the stage did before (pHash <= 6 or SSCD >= 0.95, nothing checked) does not.
The full benchmark with per-transformation numbers is tests/bench/eval_dedup_quality.py.
"""

import pytest

from jobs.runtime.config import DedupConf
from tests.bench import eval_dedup_quality as bench
from udfs import planted

PHOTOS = ["chelsea", "coffee", "china"]
CHART_PAIRS = 3
VERIFY_MIN = DedupConf().verify_min


@pytest.fixture(scope="module")
def scored():
    photos = [o for o in bench.photo_originals() if o[0].removeprefix("photo-") in PHOTOS]
    images = planted.planted_set(photos + bench.chart_originals(CHART_PAIRS, seed=11), seed=11)
    return images, bench.Scorer(images, bench.signals(images, trimmed=False))  # embed.trim_borders is off


def test_the_set_is_what_the_bench_plants(scored):
    images, _ = scored
    originals = len(PHOTOS) + 2 * CHART_PAIRS
    assert len(images) == originals * (1 + len(planted.TRANSFORMS))
    assert len(planted.true_pairs(images)) == originals * 55
    assert len(planted.look_alike_pairs(images)) == CHART_PAIRS * 11 * 11


def test_configured_rule_reaches_the_target(scored):
    images, scorer = scored
    # what the stage did before, on the same signals: pHash within 6 bits or SSCD >= 0.95, nothing checked
    before = bench.dedup_scores(images, scorer, bench.Rule("before"))
    assert before["recall"] < 0.9 or before["precision"] < 0.98, before
    checked = bench.dedup_scores(images, scorer, bench.configured_rule())
    assert checked["recall"] >= 0.9 and checked["precision"] >= 0.98, checked


def test_planted_leaks_are_found_without_false_leaks(scored):
    images, scorer = scored
    leaks = bench.decontamination_scores(images, scorer, bench.configured_rule())
    assert leaks["leak_recall"] >= 0.9 and leaks["false_leaks"] == 0, leaks


def test_trim_uniform_border_undoes_padding():
    import io

    from PIL import Image

    from udfs.signatures import phash, trim_uniform_border

    photo = dict((o[0], o[2]) for o in bench.photo_originals())["photo-chelsea"]
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    padded = Image.new("RGB", (image.width + 80, image.height + 40), (0, 0, 0))
    padded.paste(image, (50, 10))
    trimmed = trim_uniform_border(padded)
    assert abs(trimmed.width - image.width) <= 3 and abs(trimmed.height - image.height) <= 3
    kept = trim_uniform_border(image)  # a photo has no uniform border (at most a stray edge line)
    assert kept.width >= image.width - 2 and kept.height >= image.height - 2
    blank = Image.new("RGB", (64, 64), (255, 255, 255))
    assert trim_uniform_border(blank).size == (64, 64)  # nothing but border: left whole
    encoded = planted.encode(padded)
    assert phash(encoded, trim=True) == phash(planted.encode(trimmed))


def test_pixel_check_accepts_a_cropped_copy_and_rejects_a_look_alike_chart():
    import random

    from udfs.verify import verify_bytes

    (_, a), (_, b) = planted.render_charts(1, seed=5)
    cropped = planted.transformed(a, "crop+border", random.Random(1))
    assert verify_bytes(a, cropped).score >= VERIFY_MIN
    assert verify_bytes(a, b).score < VERIFY_MIN


def test_a_prepared_image_carried_as_bytes_checks_as_the_original():
    import random

    import numpy as np

    from udfs.verify import Prepared, prepared, verify

    (_, a), (_, b) = planted.render_charts(1, seed=5)
    copy = planted.transformed(a, "crop+border", random.Random(1))
    for data in (a, b, copy):
        ready = prepared(data)
        carried = Prepared.from_bytes(ready.to_bytes())
        assert np.array_equal(carried.pixels, ready.pixels)  # lossless: a lossy codec changes verdicts
        for mirrored in (False, True):
            (points, descriptors), (kept_points, kept_descriptors) = ready.features(mirrored), carried.features(mirrored)
            assert np.array_equal(points, kept_points) and np.array_equal(descriptors, kept_descriptors)
    assert verify(Prepared.from_bytes(prepared(a).to_bytes()), Prepared.from_bytes(prepared(copy).to_bytes())) \
        == verify(prepared(a), prepared(copy))
    blank = Prepared.from_bytes(prepared(planted.encode(planted.decode(a).point(lambda _: 255), "PNG", 90)).to_bytes())
    assert blank.features(False)[1] is None  # a featureless image carries no descriptors and checks as no geometry
    assert verify(blank, prepared(a)).transform == "none"


@pytest.fixture(scope="module")
def drawn():
    """Real photos (the demo packages') and one template of every rendered content kind, drawn twice."""
    from udfs import demo_sources, planted_disc

    photos = [p.data for p in demo_sources.load_photos()[:2]]
    return photos, dict((i, d) for i, _, d in planted_disc.render_templates(1, seed=3))


@pytest.mark.parametrize("family", list(__import__("udfs.planted_disc", fromlist=["FAMILIES"]).FAMILIES))
def test_the_verifier_accepts_copies_of_every_edit_family(drawn, family):
    """Each DISC21 edit family on two photos and three rendered pages: at least four of the five
    copies pass (tests/bench/eval_dedup_quality.py measures the rates), and the map found is the edit's."""
    import random

    from udfs import planted_disc
    from udfs.verify import verify_bytes

    photos, pages = drawn
    edit, fmt = planted_disc.FAMILIES[family]
    originals = [*photos, pages["document-0a"], pages["receipt-0a"], pages["diagram-0a"]]
    matches = []
    for k, original in enumerate(originals):
        copy = planted.encode(edit(planted.decode(original), random.Random(f"{family}-{k}")), fmt, 75)
        matches.append(verify_bytes(original, copy))
    passed = [m for m in matches if m.score >= VERIFY_MIN]
    assert len(passed) >= len(originals) - 1, (family, matches)
    if family.startswith("mirror"):
        assert all(m.transform.startswith("mirror") for m in passed), matches
    if family.startswith("rotate90"):  # a quarter turn either way (the map of a stretched copy is a few degrees off)
        assert all(min(abs(rotation(m) - 90), abs(rotation(m) - 270)) <= 5 for m in passed), matches
    if family == "rotate180":
        assert all(abs(rotation(m) - 180) <= 5 for m in passed), matches


def rotation(match) -> int:
    import re

    found = re.search(r"rotate(\d+)", match.transform)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("family", ["original", "mirror", "rotate90", "framed", "overlay_logo", "blur", "crop"])
def test_the_verifier_refuses_one_template_with_other_text(drawn, family):
    """Two drawings of one template (same layout, other words and numbers), the second also edited:
    never a copy, for any kind of page."""
    import random

    from udfs import planted_disc
    from udfs.verify import verify_bytes

    _, pages = drawn
    edit, fmt = planted_disc.FAMILIES.get(family, (lambda image, rng: image, "PNG"))
    for kind in planted_disc.CONTENT:
        other = planted.encode(edit(planted.decode(pages[f"{kind}-0b"]), random.Random(f"{family}-{kind}")), fmt, 75)
        match = verify_bytes(pages[f"{kind}-0a"], other)
        assert match.score < VERIFY_MIN, (kind, family, match)


def test_a_refinement_cannot_slide_a_look_alike_onto_flat_ground():
    """Two app screens of one template, both turned a quarter: RANSAC finds a squeezed chance map on the
    rows of check boxes; ECC must not move it onto the flat part of the screen (where every pixel
    agrees) and call the pair a copy."""
    import random

    from udfs import planted_disc
    from udfs.verify import verify_bytes

    pages = dict((i, d) for i, _, d in planted_disc.render_templates(4, seed=0))
    edit, fmt = planted_disc.FAMILIES["rotate90"]
    a, b = (planted.encode(edit(planted.decode(pages[f"app_screen-0{side}"]), random.Random(side)), fmt, 75) for side in "ab")
    match = verify_bytes(a, b)
    assert match.score < VERIFY_MIN, match
