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

from tests.bench import eval_dedup_quality as bench
from udfs import planted

PHOTOS = ["chelsea", "coffee", "china"]
CHART_PAIRS = 3


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
    assert verify_bytes(a, cropped).score >= 0.9
    assert verify_bytes(a, b).score < 0.9


@pytest.mark.parametrize("family", ["mirror", "rotate90", "rotate_small", "rotate_large", "framed", "crop",
                                    "mirror+crop+jpeg", "overlay_logo"])
def test_geometric_check_accepts_mirrored_rotated_framed_and_cropped_copies(family):
    """Real photos (the demo packages') and a rendered receipt, each edited by one DISC21 family."""
    import random

    from udfs import demo_sources, planted_disc
    from udfs.verify import verify_bytes

    photos = [p.data for p in demo_sources.load_photos()[:3]]
    receipt = dict((i, d) for i, _, d in planted_disc.render_templates(1, seed=3))["receipt-0a"]
    edit, fmt = planted_disc.FAMILIES[family]
    # A receipt framed at half size keeps too few features at WORK_SIDE (a known gap, see the issue-11 note).
    for k, original in enumerate(photos if family == "framed" else [*photos, receipt]):
        copy = planted.encode(edit(planted.decode(original), random.Random(f"{family}-{k}")), fmt, 75)
        match = verify_bytes(original, copy)
        assert match.score >= 0.8, (family, k, match)
        if family.startswith("mirror"):
            assert match.transform.startswith("mirror"), match
        if family == "rotate90":
            assert "rotate90" in match.transform or "rotate270" in match.transform, match


def test_geometric_check_refuses_one_template_with_other_text():
    from udfs import planted_disc
    from udfs.verify import verify_bytes

    drawn = dict((i, d) for i, _, d in planted_disc.render_templates(1, seed=3))
    for kind in ("receipt", "document", "map"):
        assert verify_bytes(drawn[f"{kind}-0a"], drawn[f"{kind}-0b"]).score < 0.8, kind
