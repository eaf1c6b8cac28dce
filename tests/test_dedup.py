"""Dedup's pieces on data made in the test: signatures, LSH searches against brute force, components, rules."""

import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from pyspark.sql import functions as F

from jobs import demo_sources
from jobs.dedup import connected_components, phash_pairs, sample_groups, sscd_pairs, sscd_buckets, text_pairs
from jobs.runtime.config import DedupConf
from udfs.signatures import hamming, normalized_text, phash, shingles

pytestmark = pytest.mark.usefixtures("spark")


def jpeg(image: Image.Image, quality: int = 75) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_phash_is_stable_under_small_changes_and_far_between_photos():
    photos = {p.name: Image.open(io.BytesIO(p.data)).convert("RGB") for p in demo_sources.load_photos()}
    cat = photos["chelsea"]
    original = phash(jpeg(cat, 95))
    for changed in (cat.resize((300, 200)), ImageEnhance.Brightness(cat).enhance(1.2)):
        assert hamming(original, phash(jpeg(changed))) <= 6
    others = [phash(jpeg(photos[name])) for name in ("coffee", "rocket", "astronaut", "moon")]
    assert min(hamming(original, other) for other in others) > 16


def test_text_normalisation_and_shingles():
    assert normalized_text("  Whát IS   this?!\n") == "what is this"
    assert shingles("What is in the box?", 3) == ["what is in", "is in the", "in the box"]
    assert shingles("Hi!", 3) == ["hi"] and shingles("?!", 3) == []


def random_hashes(count: int, planted: int, radius: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    values = [int(v) for v in rng.integers(-(1 << 63), (1 << 63) - 1, size=count, dtype=np.int64)]
    for i in range(planted):  # near copies: flip up to `radius` bits of an earlier hash
        bits = rng.choice(64, size=rng.integers(1, radius + 1), replace=False)
        flipped = values[i]
        for bit in bits:
            flipped ^= 1 << int(bit)
        values.append(flipped - (1 << 64) if flipped >= 1 << 63 else flipped)
    return values


def test_banded_lsh_finds_exactly_the_pairs_all_pairs_finds(spark):
    radius = 6
    values = random_hashes(300, 40, radius)
    frame = spark.createDataFrame([(f"{i:04d}", v, True) for i, v in enumerate(values)], "image_id string, phash long, is_new boolean")
    found = {(r.left_id, r.right_id) for r in phash_pairs(frame, radius).collect()}
    brute = {
        (f"{i:04d}", f"{j:04d}")
        for i, j in itertools.combinations(range(len(values)), 2)
        if hamming(values[i], values[j]) <= radius
    }
    assert found == brute and len(brute) >= 40


def test_only_pairs_with_a_new_side_are_searched(spark):
    values = random_hashes(50, 10, 4)
    rows = [(f"{i:04d}", v, i >= 55) for i, v in enumerate(values)]  # the last 5 planted copies are new
    frame = spark.createDataFrame(rows, "image_id string, phash long, is_new boolean")
    pairs = phash_pairs(frame, 4).collect()
    assert pairs and all(int(p.right_id) >= 55 for p in pairs)


def test_sscd_bucket_search_recall_against_brute_force(spark):
    rng = np.random.default_rng(5)
    base = rng.normal(size=(400, 64)).astype(np.float32)
    copies = base[:60] + rng.normal(scale=0.1, size=(60, 64)).astype(np.float32)
    vectors = np.concatenate([base, copies])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    frame = spark.createDataFrame([(f"{i:04d}", v.tolist(), True) for i, v in enumerate(vectors)],
                                  "image_id string, vector array<float>, is_new boolean")
    tau = 0.95
    centers = sscd_buckets(frame, 12)
    found = {(r.left_id, r.right_id) for r in sscd_pairs(frame, tau, centers, probes=3).collect()}
    sims = vectors @ vectors.T
    brute = {(f"{i:04d}", f"{j:04d}") for i, j in zip(*np.nonzero(np.triu(sims, 1) >= tau))}
    assert len(brute) >= 50 and found <= brute
    assert len(found) / len(brute) >= 0.95


def test_minhash_finds_near_duplicate_instructions(spark):
    texts = [
        ("a", "What color is the car parked next to the red brick building?", True),
        ("b", "what colour is the car parked next to the red brick building", True),
        ("c", "What color is the car parked next to the red brick building ?", True),
        ("d", "How many people are sitting on the wooden bench in the park?", True),
    ]
    frame = spark.createDataFrame(texts, "text_hash string, text string, is_new boolean")
    pairs = {(r.left_id, r.right_id) for r in text_pairs(frame, DedupConf(text_jaccard=0.6)).collect()}
    assert ("a", "c") in pairs and ("a", "b") in pairs and not any("d" in p for p in pairs)  # a~b: J = 8/12


def test_connected_components_label_every_vertex_with_its_smallest_member(spark):
    vertices = spark.createDataFrame([(v,) for v in "abcdefgh"], "id string")
    edges = spark.createDataFrame([("a", "b"), ("c", "d"), ("b", "d"), ("e", "f")], "left_id string, right_id string")
    labels = {r.id: r.component for r in connected_components(vertices, edges).collect()}
    assert labels == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "e", "f": "e", "g": "g", "h": "h"}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("image_and_text", {"s1": 2, "s2": 2, "s3": 1, "s4": 1}), ("image", {"s1": 3, "s2": 3, "s3": 3, "s4": 1}),
     ("text", {"s1": 3, "s2": 3, "s3": 1, "s4": 3})],
)
def test_rules_and_keep_policy(spark, rule, expected):
    texts = spark.createDataFrame(
        [("s1", "b_src", ["i1"], "t1", 30), ("s2", "a_src", ["i2"], "t1", 10), ("s3", "a_src", ["i1"], "t2", 10),
         ("s4", "c_src", ["i9"], "t1", 99)],
        "sample_id string, source string, image_ids array<string>, text_hash string, text_chars int",
    )
    images = spark.createDataFrame([("i1", "i1"), ("i2", "i1"), ("i9", "i9")], "id string, component string")
    text_groups = spark.createDataFrame([("t1", "t1"), ("t2", "t2")], "id string, component string")
    settings = DedupConf(rule=rule, source_priority=["a_src"])
    rows = {r.sample_id: r for r in sample_groups(texts, images, text_groups, settings, "run").collect()}
    assert {s: r.group_size for s, r in rows.items()} == expected
    if rule == "image_and_text":
        assert rows["s1"].representative == rows["s2"].representative == "s2"  # a_src comes first
    representatives = {r.group_id: r.representative for r in rows.values()}
    assert all(rows[rep].is_representative for rep in representatives.values())


def test_uncertain_pairs_are_kept_only_when_the_pixel_check_agrees(spark):
    import random

    from jobs.dedup import hash_images, image_pairs
    from udfs import planted
    from udfs.embedding import EmbeddingSettings, embed_images

    (_, chart), (_, look_alike) = planted.render_charts(1, seed=5)  # one template, different data
    ids, data = ["a", "b", "copy"], [chart, look_alike, planted.transformed(chart, "crop+border", random.Random(1))]
    images = spark.createDataFrame(list(zip(ids, data)), "image_id string, bytes binary")
    hashes = hash_images(images).withColumn("is_new", F.lit(True))
    embedded = embed_images(data, EmbeddingSettings("onnx", "sscd", None, "auto", True, 4, 1, 288))
    vectors = spark.createDataFrame([(i, v.tolist(), True) for i, v in zip(ids, embedded)],
                                    "image_id string, vector array<float>, is_new boolean")
    unchecked = DedupConf(sscd_tau=0.3, phash_radius=20, phash_verify=False)
    assert {(r.left_id, r.right_id) for r in image_pairs(hashes, vectors, images, unchecked).collect()} >= {("a", "b")}
    checked = DedupConf(sscd_tau=1.0, sscd_band_low=0.3, phash_radius=20, phash_verify=True)
    found = {(r.kind, r.left_id, r.right_id): r.evidence for r in image_pairs(hashes, vectors, images, checked).collect()}
    assert ("sscd", "a", "copy") in found and "check=" in found[("sscd", "a", "copy")]
    assert ("a", "b") not in {(left, right) for _, left, right in found}  # the look-alike fails the check
