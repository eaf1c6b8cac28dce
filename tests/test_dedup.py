"""Dedup's pieces on data made in the test: signatures, LSH searches against brute force, components, clusters, rules."""

import io
import itertools
import random

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from pyspark.sql import functions as F

from jobs.ops.clusters import clusters, recluster
from jobs.ops.components import components, overlay, relabel
from jobs.ops.groups import regroup
from jobs.ops.pairs import phash_pairs, sscd_buckets, sscd_pairs, text_pairs
from jobs.runtime.config import DedupConf
from schemas import duplicate_groups
from tests.bench import eval_dedup_quality as quality
from tests.conftest import screenshot
from udfs import demo_sources
from udfs.signatures import hamming, normalized_text, phash, phashes, shingles

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


def test_a_padded_copy_is_close_by_its_trimmed_phash():
    photo = Image.open(io.BytesIO(next(p for p in demo_sources.load_photos() if p.name == "chelsea").data)).convert("RGB")
    padded = Image.new("RGB", (photo.width + 120, photo.height + 40), (0, 0, 0))
    padded.paste(photo, (60, 20))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert phashes(jpeg(noise, 95))[1] is None  # nothing to trim: the plain hash stands for both
    plain = phash(jpeg(photo, 95))
    padded_plain, padded_trimmed, _ = phashes(jpeg(padded, 95))
    assert hamming(plain, padded_trimmed) <= 6 < hamming(plain, padded_plain)


def test_turned_and_mirrored_copies_are_pairs_by_the_turned_phashes(spark):
    from jobs.ops.leaks import phash_leaks
    from jobs.ops.signatures import hash_images

    photos = {p.name: Image.open(io.BytesIO(p.data)).convert("RGB") for p in demo_sources.load_photos()}
    cat, coffee = photos["chelsea"], photos["coffee"]
    turns = {"rot90": cat.transpose(Image.Transpose.ROTATE_90), "mirror": cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
             "rot180": cat.transpose(Image.Transpose.ROTATE_180)}
    data = {"cat": jpeg(cat, 90), "coffee": jpeg(coffee, 90), **{name: jpeg(turned, 80) for name, turned in turns.items()}}
    images = spark.createDataFrame(list(data.items()), "image_id string, bytes binary")
    plain = hash_images(images).withColumn("is_new", F.lit(True))
    assert not [p for p in phash_pairs(plain, 6).collect() if "cat" in (p.left_id, p.right_id)]
    # the turned images are new, the cat and the coffee are in the table already
    known = plain.where(F.col("image_id").isin("cat", "coffee")).withColumn("is_new", F.lit(False))
    new = hash_images(images.where(~F.col("image_id").isin("cat", "coffee")), turned=True).withColumn("is_new", F.lit(True))
    found = {(p.left_id, p.right_id): p.evidence
             for p in phash_pairs(known.unionByName(new, allowMissingColumns=True), 6).collect()}
    assert {("cat", name) for name in turns} <= set(found)
    assert "turned=mirror" in found[("cat", "mirror")] and "turned=rotate" in found[("cat", "rot90")]
    assert not [pair for pair in found if "coffee" in pair]
    # decontamination: the benchmark image is turned, the training copies are not
    bench = images.where(F.col("image_id") == "cat").join(hash_images(images), "image_id")
    train = hash_images(images.where(F.col("image_id") != "cat"))
    leaks = {r.image_id for r in phash_leaks(train, bench, 6).collect()}
    assert leaks == set(turns) and not {r.image_id for r in phash_leaks(train, bench, 6, turns=False).collect()}


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
    # a quarter of the images also have a trimmed pHash: close to another image's plain one
    rng = random.Random(3)
    trimmed = [values[rng.randrange(len(values))] ^ (1 << rng.randrange(63)) if i % 4 == 0 else None
               for i in range(len(values))]
    frame = spark.createDataFrame([(f"{i:04d}", v, t, True) for i, (v, t) in enumerate(zip(values, trimmed))],
                                  "image_id string, phash long, phash_trimmed long, is_new boolean")
    found = {(r.left_id, r.right_id): r.similarity for r in phash_pairs(frame, radius).collect()}

    def closest(i: int, j: int) -> int:
        return min(hamming(a, b) for a in (values[i], trimmed[i]) for b in (values[j], trimmed[j])
                   if a is not None and b is not None)

    brute = {(f"{i:04d}", f"{j:04d}"): 1 - closest(i, j) / 64
             for i, j in itertools.combinations(range(len(values)), 2) if closest(i, j) <= radius}
    assert found == brute and len(brute) >= 40
    assert sum(closest(i, j) < hamming(values[i], values[j]) for i, j in (tuple(int(x) for x in k) for k in brute)) >= 20


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


def smallest_members(edges: list[tuple[str, str]], vertices=()) -> dict[str, str]:
    """Components by union-find in Python: the reference the Spark algorithm must equal."""
    parent: dict[str, str] = {}

    def find(v: str) -> str:
        parent.setdefault(v, v)
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    for v in vertices:
        find(v)
    return {v: find(v) for v in parent}


def keep(spark, folder):
    """A checkpoint function like JobContext.checkpoint, into `folder`."""
    def write(frame, name):
        frame.write.mode("overwrite").parquet(str(folder / name))
        return spark.read.parquet(str(folder / name))

    return write


def test_large_small_star_equals_union_find_on_chains_stars_and_random_graphs(spark, tmp_path):
    rng = random.Random(11)
    chain = [(f"c{i:03d}", f"c{i + 1:03d}") for i in range(60)]  # a long chain, in a shuffled order
    rng.shuffle(chain)
    star = [("s999", f"s{i:03d}") for i in range(40)]  # the hub is the largest id
    scattered = [(f"r{rng.randrange(200):03d}", f"r{rng.randrange(200):03d}") for _ in range(150)]
    edges = chain + star + [e for e in scattered if e[0] != e[1]]
    frame = spark.createDataFrame(edges, "src string, dst string")
    found = {r.member: r.component for r in components(frame, keep(spark, tmp_path)).collect()}
    assert found == smallest_members(edges)


def test_new_pairs_relabel_only_the_components_they_join(spark, tmp_path):
    first = [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("x1", "x2")]
    labels = spark.createDataFrame(sorted(smallest_members(first, ["lone"]).items()), "member string, component string")
    new_edges = spark.createDataFrame([("b", "d"), ("h", "k"), ("m", "n")], "left_id string, right_id string")
    members = spark.createDataFrame([("k",), ("m",), ("n",), ("z",)], "member string")
    changed = {r.member: r.component for r in relabel(labels, new_edges, members, keep(spark, tmp_path)).collect()}
    # c and d join a's component, k joins g's; m-n and z are new; e-f, x1-x2 and lone are untouched
    assert changed == {"c": "a", "d": "a", "k": "g", "m": "m", "n": "m", "z": "z"}
    relabelled = spark.createDataFrame(list(changed.items()), "member string, component string")
    after = {r.member: r.component for r in overlay(labels, relabelled).collect()}
    assert after == smallest_members(first + [("b", "d"), ("h", "k"), ("m", "n")], ["lone", "z"])


def test_incremental_labels_equal_a_full_run_on_random_batches(spark, tmp_path):
    rng = random.Random(5)
    edges = [(f"v{rng.randrange(120):03d}", f"v{rng.randrange(120):03d}") for _ in range(160)]
    edges = [e for e in edges if e[0] != e[1]]
    labels = spark.createDataFrame([], "member string, component string")
    seen: set[str] = set()
    for batch, part in enumerate((edges[:60], edges[60:61], edges[61:])):
        vertices = sorted({v for e in part for v in e} - seen)
        seen |= set(vertices)
        new = spark.createDataFrame(part, "left_id string, right_id string")
        members = spark.createDataFrame([(v,) for v in vertices], "member string")
        changed = relabel(labels, new, members, keep(spark, tmp_path / f"run{batch}"))
        labels = keep(spark, tmp_path / f"labels{batch}")(overlay(labels, changed), "labels")
    assert {r.member: r.component for r in labels.collect()} == smallest_members(edges)


def cluster_labels(spark, folder, pairs, members=()):
    """clusters() on Python lists: pairs (a, b, overlays) -> {member: cluster}."""
    vertices = sorted({v for a, b, _ in pairs for v in (a, b)} | set(members))
    frame = spark.createDataFrame([(a, b, o) for a, b, o in pairs], "left_id string, right_id string, overlays int")
    found = clusters(spark.createDataFrame([(v,) for v in vertices], "member string"), frame, keep(spark, folder))
    return {r.member: r.cluster for r in found.collect()}


def expected_clusters(pairs, members=()):
    """The evaluations' clustering (tests/bench/eval_dedup_quality.py) of the same pairs."""
    ids = sorted({v for a, b, _ in pairs for v in (a, b)} | set(members))
    index = {v: k for k, v in enumerate(ids)}
    edges, weak = np.zeros((len(ids), len(ids)), bool), np.zeros((len(ids), len(ids)), bool)
    for a, b, overlays in pairs:
        edges[index[a], index[b]] = True
        weak[index[a], index[b]] = bool(overlays)
    labels = quality.clusters(ids, edges, weak)
    return {v: ids[labels[k]] for k, v in enumerate(ids)}


def test_clusters_equal_the_evaluations_clustering_on_random_graphs(spark, tmp_path):
    rng = random.Random(3)
    pairs = [(f"v{rng.randrange(90):03d}", f"v{rng.randrange(90):03d}", rng.choice([None, 0, 1, 2])) for _ in range(150)]
    pairs = [(min(a, b), max(a, b), o) for a, b, o in pairs if a != b]
    assert cluster_labels(spark, tmp_path, pairs, ["lone"]) == expected_clusters(pairs, ["lone"])


def test_differences_do_not_chain_but_clean_pairs_do(spark, tmp_path):
    """Scenes a-b-c-d, each pair differing in one region (overlays 1): components would make one
    group; a cluster holds a pivot and members one such pair from it (b or c: b, c and a neighbour).
    A clean chain x-y-z is one cluster."""
    pairs = [("a", "b", 1), ("b", "c", 1), ("c", "d", 1), ("x", "y", 0), ("y", "z", None)]
    found = cluster_labels(spark, tmp_path, pairs)
    assert found["x"] == found["y"] == found["z"] == "x"
    assert found in ({"a": "b", "b": "b", "c": "b", "d": "d", "x": "x", "y": "x", "z": "x"},
                     {"a": "a", "b": "c", "c": "c", "d": "c", "x": "x", "y": "x", "z": "x"})


def test_captioned_copies_join_the_original_and_its_clean_copies(spark, tmp_path):
    """An original o with clean copies (jpeg, crop) and captioned copies (overlays 1): the clean core
    outranks a captioned copy, so every captioned copy with a pair to the core joins it."""
    core = [("o", "o-jpeg", 0), ("o", "o-crop", None), ("o-crop", "o-jpeg", 0)]
    captioned = [("o", "o-caption", 1), ("o-jpeg", "o-logo", 2), ("o-caption", "o-logo", 2)]
    found = cluster_labels(spark, tmp_path, core + captioned)
    assert set(found.values()) == {"o"}


def test_reclustering_the_touched_components_equals_a_full_run(spark, tmp_path):
    """Member k arrives in run k // 30; a run's pairs have a new end (dedup searches new against all)."""
    rng = random.Random(8)
    ends = [sorted((rng.randrange(90), rng.randrange(90))) for _ in range(140)]
    pairs = [(f"v{a:03d}", f"v{b:03d}", rng.choice([None, 0, 1])) for a, b in ends if a != b]
    schema = "left_id string, right_id string, overlays int"
    labels = spark.createDataFrame([], "member string, component string, cluster string")
    stored = spark.createDataFrame([], schema)
    for run in range(3):
        part = spark.createDataFrame([p for p in pairs if int(p[1][1:]) // 30 == run], schema)
        members = spark.createDataFrame([(f"v{k:03d}",) for k in range(30 * run, 30 * run + 30)], "member string")
        folder = tmp_path / f"run{run}"
        moved = keep(spark, folder)(relabel(labels.select("member", "component"), part, members, keep(spark, folder)),
                                    "moved")
        changed = recluster(labels, moved, part, stored, keep(spark, folder))
        labels = keep(spark, folder)(overlay(labels, changed), "labels")
        stored = keep(spark, folder)(stored.unionByName(part), "stored")
    found = {r.member: r.cluster for r in labels.collect()}
    assert found == expected_clusters(pairs, [f"v{k:03d}" for k in range(90)])


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("image_and_text", {"s1": 2, "s2": 2, "s3": 1, "s4": 1}), ("image", {"s1": 3, "s2": 3, "s3": 3, "s4": 1}),
     ("text", {"s1": 3, "s2": 3, "s3": 1, "s4": 3})],
)
def test_rules_and_keep_policy(spark, rule, expected):
    texts = spark.createDataFrame(
        [("s1", "b_src", ["i1"], "t1", 30), ("s2", "a_src", ["i2"], "t1", 10), ("s3", "a_src", ["i1"], "t2", 10),
         ("s4", "c_src", ["i9"], "t1", 99)],
        "sample_id string, source string, image_ids array<string>, text_hash string, text_chars long",
    )
    images = spark.createDataFrame([("i1", "i1"), ("i2", "i1"), ("i9", "i9")], "member string, cluster string")
    text_groups = spark.createDataFrame([("t1", "t1"), ("t2", "t2")], "member string, cluster string")
    settings = DedupConf(rule=rule, source_priority=["a_src"])
    nothing = spark.createDataFrame([], duplicate_groups.SCHEMA)
    rows = {r.sample_id: r for r in regroup(texts, nothing, texts, nothing.select("sample_id"), images, text_groups,
                                            settings, "run").collect()}
    assert {s: r.group_size for s, r in rows.items()} == expected
    if rule == "image_and_text":
        assert rows["s1"].representative == rows["s2"].representative == "s2"  # a_src comes first
    representatives = {r.group_id: r.representative for r in rows.values()}
    assert all(rows[rep].is_representative for rep in representatives.values())


def test_a_new_pair_regroups_the_members_of_both_groups_and_no_other(spark):
    """s1 (image i1) and s2 (i2) are in two groups; s3 is alone; a new pair joins i2 to i1."""
    settings = DedupConf(rule="image")
    samples = spark.createDataFrame([("s1", "a", ["i1"], "t1", 5), ("s2", "a", ["i2"], "t2", 9), ("s3", "a", ["i3"], "t3", 1)],
                                    "sample_id string, source string, image_ids array<string>, text_hash string, text_chars long")
    nothing = spark.createDataFrame([], duplicate_groups.SCHEMA)
    before = spark.createDataFrame([("i1", "i1"), ("i2", "i2"), ("i3", "i3")], "member string, cluster string")
    texts = spark.createDataFrame([(t, t) for t in ("t1", "t2", "t3")], "member string, cluster string")
    first = regroup(samples, nothing, samples, nothing.select("sample_id"), before, texts, settings, "r1")
    old = spark.createDataFrame(first.collect(), duplicate_groups.SCHEMA)
    assert old.select("group_id").distinct().count() == 3
    after = spark.createDataFrame([("i1", "i1"), ("i2", "i1"), ("i3", "i3")], "member string, cluster string")
    affected = spark.createDataFrame([("s2",)], "sample_id string")
    none_new = samples.limit(0)
    rows = {r.sample_id: r for r in regroup(none_new, old, samples, affected, after, texts, settings, "r2").collect()}
    assert set(rows) == {"s1", "s2"}  # s3's group is not touched
    assert rows["s1"].group_id == rows["s2"].group_id and rows["s1"].group_size == 2
    assert rows["s1"].representative == "s2"  # the most text


def test_uncertain_pairs_are_kept_only_when_the_pixel_check_agrees(spark, tmp_path):
    import random

    from jobs.ops.pairs import image_pairs
    from jobs.ops.signatures import hash_images
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
    pairs, counts = image_pairs(hashes, vectors, images, unchecked, keep(spark, tmp_path / "unchecked"))
    assert {(r.left_id, r.right_id) for r in pairs.collect()} >= {("a", "b")}
    assert counts["candidates"] == 0  # nothing is uncertain: SSCD >= 0.3 is certain, pHash unchecked
    checked = DedupConf(sscd_tau=1.0, sscd_band_low=0.3, phash_radius=20, phash_verify=True)
    pairs, counts = image_pairs(hashes, vectors, images, checked, keep(spark, tmp_path / "checked"))
    found = {(r.kind, r.left_id, r.right_id): r for r in pairs.collect()}
    copy = found[("sscd", "a", "copy")]
    assert "check=" in copy.evidence and copy.check >= checked.verify_min and 0 < copy.inlier_share <= 1
    assert copy.transform in ("identity", "scale")  # a crop and a border: neither turned nor mirrored
    assert ("a", "b") not in {(left, right) for _, left, right in found}  # the look-alike fails the check
    # every candidate (three images: at most two per image) is checked; what passed is what was kept
    assert counts["candidates"] == counts["checked"] >= 3
    assert counts["passed"] == len(found)


def test_a_picture_framed_in_a_screenshot_meets_its_original_through_its_framed_view(spark, tmp_path):
    from jobs.ops.embeddings import image_views
    from jobs.ops.pairs import image_pairs
    from jobs.ops.signatures import hash_images
    from udfs.embedding import EmbeddingSettings, embed_views

    photos = {p.name: p.data for p in demo_sources.load_photos()}
    ids = ["cat", "framed", "other"]
    data = [photos["chelsea"], screenshot(photos["chelsea"], dark=True), photos["grass"]]
    whole, framed = embed_views(data, EmbeddingSettings("onnx", "sscd", None, "auto", True, 4, 1, 288, framed=True))
    band_low = 0.7
    assert float(whole[1] @ whole[0]) < band_low <= float(framed[1] @ whole[0])  # only the framed view is close
    images = spark.createDataFrame(list(zip(ids, data)), "image_id string, bytes binary")
    hashes = hash_images(images).withColumn("is_new", F.lit(True))
    rows = [(i, w.tolist(), None if f is None else f.tolist(), True) for i, w, f in zip(ids, whole, framed)]
    vectors = spark.createDataFrame(rows, "image_id string, vector array<float>, framed_vector array<float>, is_new boolean")
    settings = DedupConf(sscd_tau=1.0, sscd_band_low=band_low, phash_verify=True)
    pairs, counts = image_pairs(hashes, vectors.transform(image_views), images, settings, keep(spark, tmp_path))
    found = {(r.kind, r.left_id, r.right_id): r for r in pairs.collect()}
    assert set(found) == {("sscd", "cat", "framed")}, found  # one pair, though both views of `framed` were searched
    assert found[("sscd", "cat", "framed")].similarity >= band_low and found[("sscd", "cat", "framed")].check >= 0.9
    assert counts["candidates"] == 1


def test_the_pixel_check_looks_only_at_each_images_nearest_candidates(spark, tmp_path):
    from jobs.ops.pairs import pixel_check
    from udfs import planted

    charts = [data for _, data in planted.render_charts(3, seed=2)]
    images = spark.createDataFrame([(f"i{k}", d) for k, d in enumerate(charts)], "image_id string, bytes binary")
    # i0 is a hub with five candidates; i5's own best candidate is i0
    rows = [("sscd", "i0", f"i{k}", 0.9 - k / 100, "e") for k in range(1, 6)] + [("sscd", "i4", "i5", 0.8, "e")]
    pairs = spark.createDataFrame(rows, "kind string, left_id string, right_id string, similarity double, evidence string")
    checkpoint = keep(spark, tmp_path)
    both = {(r.left_id, r.right_id) for r in pixel_check(pairs, images, 1, checkpoint).where("check IS NOT NULL").collect()}
    # the nearest candidate of i0 is i1, of i1..i5 i0 (i4 and i5 are each other's second): (i4, i5) is not checked
    assert both == {("i0", "i1"), ("i0", "i2"), ("i0", "i3"), ("i0", "i4"), ("i0", "i5")}
    # ranked by the left image only (decontamination: a training image's nearest benchmark images)
    left_only = pixel_check(pairs, images, 2, checkpoint, ranked=("left_id",)).where("check IS NOT NULL")
    assert {(r.left_id, r.right_id) for r in left_only.collect()} == {("i0", "i1"), ("i0", "i2"), ("i4", "i5")}
    assert pixel_check(pairs, images, 2, checkpoint).count() == len(rows)  # unchecked pairs stay, with a null check
    # an image that does not decode fails its pairs with a reason, and the others are still checked
    broken = images.unionByName(spark.createDataFrame([("i9", b"not an image")], "image_id string, bytes binary"))
    with_broken = pairs.unionByName(spark.createDataFrame([("sscd", "i1", "i9", 0.7, "e")], pairs.schema))
    verdicts = {(r.left_id, r.right_id): r for r in pixel_check(with_broken, broken, 2, checkpoint).collect()}
    assert verdicts[("i1", "i9")].check == 0.0 and verdicts[("i1", "i9")].geometry == "undecodable"
    assert verdicts[("i0", "i1")].check is not None
