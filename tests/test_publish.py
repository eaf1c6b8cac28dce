"""publish and export: the policy's rules on small tables, then gold.curated on the demo lake, its views,
and every export format read back by its real reader (datasets, webdataset, finelake's own llava_json)."""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
from pathlib import Path

import datasets
import pytest
import webdataset
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from jobs import export as export_job
from jobs import registry
from jobs.ops.curation import CurationInputs, curate
from jobs.runtime.config import PolicyConf
from jobs.runtime.tables import describe_tables
from tests.conftest import run_notebook
from schemas import contamination, curated, curation_decisions, difficulty, duplicate_groups, reasoning, routing
from schemas import silver_samples, turn_ratings
from schemas.views import VIEWS

pytestmark = pytest.mark.usefixtures("spark")
PUBLISH = registry.BY_NAME["publish"]
NOW = datetime.datetime(2026, 12, 1)


def frame(spark, contract, rows: list[dict]):
    """Rows of a table: given columns, every other column null (or a timestamp), in the table's schema."""
    fields = contract.schema.fieldNames()
    filled = [{f: row.get(f, NOW if f.endswith("_at") else None) for f in fields} for row in rows]
    loose = StructType([StructField(f.name, f.dataType, True) for f in contract.schema.fields])
    return spark.createDataFrame(filled, loose)


def turn(user: str, assistant: str) -> dict:
    return {"user": user, "assistant": assistant}


def sample(sample_id: str, *turns: dict, images=("a" * 64,)) -> dict:
    return {"sample_id": sample_id, "source": "src", "subset": "default", "source_key": sample_id, "category": "vqa",
            "license": "CC0", "language": "en", "image_ids": list(images), "turns": list(turns)}


def rated(sample_id: str, turn_index: int, relevance: int, status: str = "ok") -> dict:
    scores = {axis: 4 for axis in turn_ratings.AXES} | {"relevance": relevance}
    return {"sample_id": sample_id, "turn_index": turn_index, "source": "src", "status": status, **scores}


def test_policy_keeps_verified_reasoning_and_records_every_rule(spark):
    samples = [
        sample("kept", turn("What is 2+3?", "5"), turn("Describe it.", "A red cup.")),
        sample("copy", turn("What is 2+3?", "5")),
        sample("leak", turn("Which benchmark?", "This one.")),
        sample("leak_elsewhere", turn("Another benchmark?", "Yes.")),
        sample("all_low", turn("Useless?", "Yes."), images=()),
    ]
    inputs = CurationInputs(
        frame(spark, silver_samples.CONTRACT, samples),
        frame(spark, duplicate_groups.CONTRACT, [
            {"sample_id": s, "group_id": "g1", "group_size": 2, "representative": "kept", "is_representative": s == "kept",
             "rule": "image_and_text"} for s in ("kept", "copy")]),
        frame(spark, contamination.CONTRACT, [
            {"sample_id": "leak", "benchmark": "bench_a", "item_id": "7", "kind": "text", "similarity": 0.9},
            {"sample_id": "leak_elsewhere", "benchmark": "bench_b", "item_id": "3", "kind": "image", "similarity": 0.97},
            {"sample_id": "leak_elsewhere", "benchmark": "old_bench_a", "item_id": "1", "kind": "text", "similarity": 0.8}]),
        frame(spark, turn_ratings.CONTRACT, [rated("kept", 0, 5), rated("kept", 1, 2), rated("all_low", 0, 1),
                                             rated("leak_elsewhere", 0, 1, status="unparseable") | {"relevance": None}]),
        frame(spark, routing.CONTRACT, [
            {"sample_id": "kept", "turn_index": 0, "outcome": "long_correct", "chosen_teacher": "long",
             "short_verdict": "incorrect", "long_verdict": "correct"}]),
        frame(spark, reasoning.CONTRACT, [
            {"sample_id": "kept", "turn_index": 0, "teacher": t, "status": "ok", "reasoning": f"{t} thoughts",
             "final_answer": "5"} for t in ("short", "long")]),
        frame(spark, difficulty.CONTRACT, [
            {"sample_id": "kept", "turn_index": 0, "status": "ok", "subsets": ["hardest_50"]}]),
    )
    policy = PolicyConf.model_validate({"contamination": {"benchmarks": ["bench_a*"]},
                                        "ratings": {"minimum": {"relevance": 3}}})
    result = curate(inputs, policy, "run1", {"silver.samples": 4})

    rows = {r.sample_id: r for r in result.curated.collect()}
    # bench_b and old_bench_a are not bench_a*; an unrated turn stays (unrated: keep)
    assert set(rows) == {"kept", "leak_elsewhere"}
    kept = rows["kept"]
    assert [t.turn_index for t in kept.turns] == [0]  # turn 1 rated relevance 2 < 3
    assert kept.turns[0].assistant == "<think>\nlong thoughts\n</think>\n\n5" and kept.turns[0].reasoning_teacher == "long"
    assert kept.turns[0].relevance == 5 and kept.subsets == ["hardest_50"]
    assert kept.policy_hash == policy.digest() and kept.inputs == {"silver.samples": 4}
    assert rows["leak_elsewhere"].turns[0].relevance is None

    decisions = {(d.sample_id, d.turn_index, d.rule): d for d in result.decisions.collect()}
    assert set(decisions) == {("copy", -1, "duplicate_copy"), ("leak", -1, "contaminated"), ("kept", 1, "low_rating"),
                              ("all_low", 0, "low_rating"), ("all_low", -1, "no_turns_left")}
    assert decisions[("copy", -1, "duplicate_copy")].evidence == "group g1 of 2 samples (image_and_text) keeps kept"
    assert decisions[("leak", -1, "contaminated")].evidence == "bench_a item 7 (text, similarity 0.900)"
    assert decisions[("kept", 1, "low_rating")].evidence == "relevance=2<3" and decisions[("kept", 1, "low_rating")].scope == "turn"
    outcomes = sorted((o.reason or "curated") for o in result.outcomes.collect())
    assert outcomes == ["contaminated", "curated", "curated", "duplicate_copy", "no_turns_left"]  # one per sample


def test_failed_both_and_unrated_turns_follow_the_policy(spark):
    samples = [sample("s1", turn("q1", "a1"), turn("q2", "a2"))]
    failed = {"sample_id": "s1", "turn_index": 1, "outcome": "failed_both", "short_verdict": "incorrect",
              "long_verdict": "incorrect"}
    elsewhere = failed | {"sample_id": "not_published"}  # a turn of a sample outside publish.sources
    inputs = CurationInputs(frame(spark, silver_samples.CONTRACT, samples),
                            *(frame(spark, c, []) for c in (duplicate_groups.CONTRACT, contamination.CONTRACT)),
                            frame(spark, turn_ratings.CONTRACT, [rated("s1", 1, 5)]),
                            frame(spark, routing.CONTRACT, [failed, elsewhere]),
                            *(frame(spark, c, []) for c in (reasoning.CONTRACT, difficulty.CONTRACT)))

    def decided(policy: dict):
        result = curate(inputs, PolicyConf.model_validate(policy), "run", {})
        return ({r.sample_id: [t.turn_index for t in r.turns] for r in result.curated.collect()},
                sorted((d.turn_index, d.rule) for d in result.decisions.collect()))

    assert decided({}) == ({"s1": [0, 1]}, [])
    assert decided({"reasoning": {"failed_both": "drop_turn"}}) == ({"s1": [0]}, [(1, "failed_both")])
    assert decided({"reasoning": {"failed_both": "drop_sample"}}) == ({}, [(-1, "failed_both")])
    assert decided({"ratings": {"unrated": "drop"}}) == ({"s1": [1]}, [(0, "unrated")])


@pytest.fixture(scope="module")
def published(demo_lake):
    assert PUBLISH.main(demo_lake.flags()) == 0
    return demo_lake


def per_source(frame_, column="sample_id"):
    return {r.source: r.n for r in frame_.groupBy("source").agg(F.countDistinct(column).alias("n")).collect()}


def test_publish_accounts_for_every_sample_and_explains_what_it_left_out(published):
    samples = per_source(published.table("silver", "samples"))
    kept = per_source(published.table("gold", "curated"))
    decisions = published.table("gold", "curation_decisions")
    left_out = per_source(decisions.where("scope = 'sample'"))
    assert samples == {s: kept.get(s, 0) + left_out.get(s, 0) for s in samples}
    ids = {r.sample_id for r in published.table("silver", "samples").collect()}
    curated_ids = {r.sample_id for r in published.table("gold", "curated").collect()}
    decided_ids = {r.sample_id for r in decisions.where("scope = 'sample'").collect()}
    assert not curated_ids & decided_ids and curated_ids | decided_ids == ids
    groups = published.table("gold", "duplicate_groups").where(~F.col("is_representative"))
    copies = {r.sample_id for r in groups.collect()}
    assert copies and copies <= {r.sample_id for r in decisions.where("rule = 'duplicate_copy'").collect()}
    flagged = {r.sample_id for r in published.table("gold", "contamination").collect()}
    assert flagged == {r.sample_id for r in decisions.where("rule = 'contaminated'").collect()}
    assert not flagged & {r.sample_id for r in published.table("gold", "curated").collect()}
    row = published.table("gold", "curated").first()
    assert row.inputs["silver.samples"] >= 0 and len(row.policy_hash) == 16


def test_views_answer_and_are_listed(published):
    gold = published.lake.schema_name("gold")
    by_source = {r.source: r.samples for r in published.spark.table(f"{gold}.curated_by_source").collect()}
    assert by_source == per_source(published.table("gold", "curated"))
    rules = {r.rule for r in published.spark.table(f"{gold}.curation_by_rule").collect()}
    assert {"duplicate_copy", "contaminated"} <= rules
    assert published.spark.table(f"{gold}.contamination_by_benchmark").where("benchmark = 'demo_bench'").count() > 0
    listing = describe_tables(published.lake)
    assert all(f"{gold}.{v.name}" in listing for v in VIEWS)


def test_a_policy_naming_an_unknown_axis_or_rule_is_a_config_error(published, capsys):
    assert PUBLISH.main(published.flags("publish.policy.ratings.minimum={clarity: 3}")) == 2
    assert "publish.policy.ratings.minimum" in capsys.readouterr().err
    assert PUBLISH.main(published.flags("publish.policy.dedupe={}")) == 2
    assert "publish.policy.dedupe: unknown key" in capsys.readouterr().err


def export(lake, fmt: str, target: Path, *extra: str) -> int:
    return export_job.main(["--format", fmt, "--to", str(target), *extra, *lake.flags()])


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def exported(published, tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    for fmt in ("hf", "webdataset", "llava"):
        assert export(published, fmt, root / fmt) == 0
    return root


def test_hf_export_loads_with_datasets_and_images_decode(published, exported, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    loaded = datasets.load_dataset("parquet", data_files=str(exported / "hf" / "data" / "*.parquet"), split="train",
                                   cache_dir=str(tmp_path / "cache"))
    curated_rows = {r.sample_id: r for r in published.table("gold", "curated").collect()}
    assert len(loaded) == len(curated_rows)
    for row in loaded:
        original = curated_rows[row["sample_id"]]
        assert [t["assistant"] for t in row["texts"]] == [t.assistant for t in original.turns]
        assert len(row["images"]) == len(original.image_ids)
        assert all(image.size[0] > 0 for image in row["images"])  # PIL images, decoded
    card = (exported / "hf" / "README.md").read_text()
    assert card.startswith("---\n") and "path: data/train-*.parquet" in card and "demo_bench" in card
    by_card = datasets.load_dataset(str(exported / "hf"), split="train", cache_dir=str(tmp_path / "cache2"))
    assert len(by_card) == len(curated_rows)  # the card's `configs` is what the Hub and load_dataset read


def test_webdataset_export_iterates_with_webdataset(published, exported):
    index = json.loads((exported / "webdataset" / "shards.json").read_text())
    urls = [str(exported / "webdataset" / s["url"]) for s in index["shardlist"]]
    seen = {}
    for item in webdataset.WebDataset(urls, shardshuffle=False).decode("pil"):
        meta = item["json"]
        images = [value for key, value in item.items() if key.endswith(("jpg", "png", "webp"))]
        seen[meta["sample_id"]] = (len(images), meta["texts"])
    curated_rows = {r.sample_id: r for r in published.table("gold", "curated").collect()}
    assert set(seen) == set(curated_rows) and sum(s["nsamples"] for s in index["shardlist"]) == len(curated_rows)
    assert all(seen[k][0] == len(r.image_ids) for k, r in curated_rows.items())


def test_llava_export_reingests_as_the_same_samples(published, exported, make_lake, tmp_path):
    lake = make_lake("llava_roundtrip_")
    conf = tmp_path / "conf"
    shutil.copytree(published.config_dir, conf)
    (conf / "sources" / "reexported.yaml").write_text(
        f"format: llava_json\npath: {exported / 'llava'}\nfile_pattern: 'llava-*.json'\nkey: '{{{{ id }}}}'\n"
        "license: mixed\n")
    flags = [*lake.flags("ingest.sources=[reexported]"), "--conf", str(conf)]
    for stage in ("ingest", "normalize"):
        assert registry.BY_NAME[stage].main(flags) == 0
    again = {r.source_key: r for r in lake.table("silver", "samples").collect()}
    original = {r.sample_id: r for r in published.table("gold", "curated").collect()}
    assert set(again) == set(original)
    for key, row in original.items():
        assert [(t.user, t.assistant) for t in again[key].turns] == [(t.user, t.assistant) for t in row.turns]
        assert len(again[key].image_ids) == len(row.image_ids)


def test_exports_are_reproducible_and_refuse_to_overwrite(published, exported, tmp_path, capsys):
    for fmt in ("hf", "webdataset", "llava"):
        assert export(published, fmt, tmp_path / fmt) == 0
        assert digests(tmp_path / fmt) == digests(exported / fmt)
    before = digests(exported / "hf")
    assert export(published, "hf", exported / "hf") == 0  # the same version: nothing to do
    assert "nothing to do" in capsys.readouterr().out and digests(exported / "hf") == before
    assert export(published, "llava", exported / "hf") == 2  # another export there: refused, nothing written
    assert "not empty" in capsys.readouterr().err and digests(exported / "hf") == before
    assert export(published, "hf", tmp_path / "sub", "--subset", "nope") == 2
    assert "--subset nope: no such subset" in capsys.readouterr().err and not (tmp_path / "sub").exists()


def test_curated_corpus_notebook_runs_on_the_demo_lake(published):
    namespace = run_notebook("curated_corpus.ipynb", published.overrides)
    assert namespace["by_source"].samples.sum() == published.table("gold", "curated").count()
    assert {"duplicate_copy", "contaminated"} <= set(namespace["removed"].rule)
    assert len(namespace["shown"]) > 0


# Last: it leaves gold.curated under another policy.
def test_a_second_publish_changes_nothing_and_a_new_policy_changes_rows(published):
    table = published.lake.name(curated.CONTRACT)
    decisions = published.lake.name(curation_decisions.CONTRACT)

    def versions():
        return [published.spark.sql(f"DESCRIBE HISTORY {t} LIMIT 1").first().version for t in (table, decisions)]

    before = versions()
    assert PUBLISH.main(published.flags()) == 0
    assert versions() == before
    decided = published.table("gold", "curation_decisions")
    copies = {r.sample_id for r in decided.where("rule = 'duplicate_copy'").collect()}
    leaks = {r.sample_id for r in decided.where("rule = 'contaminated'").collect()}
    assert PUBLISH.main(published.flags("publish.policy.duplicates.drop_copies=false")) == 0
    assert published.table("gold", "curation_decisions").where("rule = 'duplicate_copy'").count() == 0
    kept = {r.sample_id for r in published.table("gold", "curated").collect()}
    assert copies - leaks and copies - leaks <= kept  # the copies are back, in the same commit their decisions left
