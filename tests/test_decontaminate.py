"""Decontamination's pieces on data made in the test: n-gram text checks, pHash and SSCD image search."""

import numpy as np
import pytest

from jobs.ops.leaks import image_hits, phash_leaks, question_grams, sscd_leaks, text_hits, unchecked
from jobs.runtime.config import DecontaminateConf

pytestmark = pytest.mark.usefixtures("spark")

LONG_QUESTION = "Counting only the coins in the top row of this chart, how many of them are older than the middle one?"
SHORT_QUESTION = "Which club has the fewest members this year?"  # 8 words: one 8-gram


def test_question_grams_short_questions_are_one_gram_and_generic_ones_none():
    assert question_grams(SHORT_QUESTION, 13, 8) == [["8", "which club has the fewest members this year"]]
    assert question_grams("What is shown here?", 13, 8) == []
    grams = question_grams(LONG_QUESTION, 13, 8)
    assert len(grams) == len(LONG_QUESTION.split()) - 12 and {g[0] for g in grams} == {"13"}


def samples_frame(spark, texts: dict[str, str]):
    rows = [(key, "train", [{"user": text, "assistant": "ok"}], []) for key, text in texts.items()]
    return spark.createDataFrame(rows, "sample_id string, source string, turns array<struct<user:string,assistant:string>>, "
                                       "image_ids array<string>")


def items_frame(spark, questions: dict[str, str], images: dict[str, list[str]] | None = None):
    images = images or {}
    rows = [("bench", item, [question], images.get(item, [])) for item, question in questions.items()]
    return spark.createDataFrame(rows, "benchmark string, item_id string, questions array<string>, image_ids array<string>")


def test_text_hits_find_pasted_questions_and_only_them(spark):
    samples = samples_frame(spark, {
        "pasted_long": f"Here is a puzzle for you. {LONG_QUESTION.upper()} Think step by step.",
        "pasted_short": f"Look at the table. {SHORT_QUESTION} Answer with a name.",
        "half_long": " ".join(LONG_QUESTION.split()[:14]) + " and what else do you see in the photo today?",
        "generic": "What is shown here? Describe the coins.",
        "unrelated": "How many birds sit on the wire in this photo of a quiet street at dawn?",
    })
    items = items_frame(spark, {"long": LONG_QUESTION, "short": SHORT_QUESTION, "generic": "What is shown here?"})
    hits = {(r.sample_id, r.item_id): r for r in text_hits(samples, items, DecontaminateConf()).collect()}
    assert set(hits) == {("pasted_long", "long"), ("pasted_short", "short")}
    assert hits[("pasted_long", "long")].similarity == 1.0
    assert hits[("pasted_short", "short")].evidence == "1 of 1 question 8-grams"
    # two of the long question's nine 13-grams is below the 0.5 overlap; at 0.2 it is flagged
    lenient = text_hits(samples, items, DecontaminateConf(text_min_overlap=0.2)).where("sample_id = 'half_long'").collect()
    assert [(r.item_id, round(r.similarity, 3)) for r in lenient] == [("long", round(2 / 9, 3))]


def test_only_unchecked_pairs_are_pending_and_only_hashed_samples_are_ready(spark):
    samples = spark.createDataFrame([("hashed", "train", ["i1"]), ("unhashed", "train", ["i1", "i2"]), ("text", "train", [])],
                                    "sample_id string, source string, image_ids array<string>")
    hashes = spark.createDataFrame([("i1",)], "image_id string")
    checks = spark.createDataFrame([("hashed", "old_bench", "d1")], "sample_id string, benchmark string, settings string")

    def pending(settings):
        found = unchecked(samples, ["old_bench", "new_bench"], checks, hashes, settings).collect()
        return {(r.sample_id, r.benchmark): r.ready for r in found}

    # a new benchmark sees old samples; a sample waits until dedup hashed all its images
    assert pending("d1") == {("hashed", "new_bench"): True, ("text", "old_bench"): True, ("text", "new_bench"): True,
                             ("unhashed", "old_bench"): False, ("unhashed", "new_bench"): False}
    assert pending("d2")[("hashed", "old_bench")] is True  # other settings: checked again


def unit(vectors: np.ndarray) -> list[list[float]]:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32).tolist()


def test_image_search_flags_near_benchmark_images_by_sscd_or_phash(spark):
    rng = np.random.default_rng(3)
    bench_vectors = rng.normal(size=(3, 64))
    near = bench_vectors[0] + 0.1 * rng.normal(size=64)  # cosine ~0.99 with benchmark image b0
    far = rng.normal(size=(2, 64))
    bench = spark.createDataFrame(
        [(f"b{i}", v, p) for i, (v, p) in enumerate(zip(unit(bench_vectors), [0x0F0F, 0x7777_0000_1234, 1 << 40]))],
        "image_id string, vector array<float>, phash long",
    )
    train = spark.createDataFrame(
        [("near", unit(near[None])[0], 0x5555), ("far0", unit(far)[0], 0x7777_0000_1234 ^ 0b111), ("far1", unit(far)[1], -1)],
        "image_id string, vector array<float>, phash long",
    )
    by_sscd = {(r.image_id, r.bench_image_id) for r in sscd_leaks(train, bench, 0.95, 2).collect()}
    by_phash = {(r.image_id, r.bench_image_id): r.evidence for r in phash_leaks(train, bench, 6, turns=False).collect()}
    assert by_sscd == {("near", "b0")}
    assert by_phash == {("far0", "b1"): "phash hamming=3"}

    samples = spark.createDataFrame([("s1", "train", ["far1", "near"]), ("s2", "train", ["far0"]), ("s3", "train", ["far1"])],
                                    "sample_id string, source string, image_ids array<string>")
    items = items_frame(spark, {"i0": "q", "i1": "q"}, {"i0": ["b0", "b2"], "i1": ["b1"]})
    pairs = sscd_leaks(train, bench, 0.95, 2).unionByName(phash_leaks(train, bench, 6, turns=False))
    hits = {(r.sample_id, r.item_id): r for r in image_hits(pairs, samples, items).collect()}
    assert set(hits) == {("s1", "i0"), ("s2", "i1")}
    assert hits[("s1", "i0")].kind == "image" and hits[("s1", "i0")].similarity > 0.95
    assert hits[("s2", "i1")].evidence.startswith("phash hamming=3 (image far0 ~ benchmark image b1)")
