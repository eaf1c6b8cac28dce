"""Decontamination on real data: TabMWP test tables planted (resized, recompressed) in a training
source and a TabMWP question pasted into a training sample, next to clean NLVR training samples."""

import io
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pyspark.sql import functions as F

from jobs.registry import CURATION, stages
from udfs import demo_sources
from tests.conftest import SHARED_DATA, needs_shared_data

pytestmark = [needs_shared_data("nlvr", "tabmwp"), pytest.mark.realdata]
PLANTED = 24  # TabMWP tables planted as training images
NLVR_STATEMENTS = 20  # clean training samples, six images each
BENCHMARK_ITEMS = 120  # the TabMWP test problems loaded as the benchmark: the planted ones and more


def planted_copy(path) -> bytes:
    with Image.open(path) as image:
        smaller = image.convert("RGB").resize((image.width * 4 // 5, image.height * 4 // 5), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    smaller.save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def leak_lake(make_lake, tmp_path_factory):
    root = tmp_path_factory.mktemp("leaks")
    problems = json.loads((SHARED_DATA / "tabmwp" / "problems_test1k.json").read_text())
    planted = sorted(problems, key=int)[:PLANTED]
    pasted = next(k for k in sorted(problems, key=int)[PLANTED:] if len(problems[k]["question"].split()) >= 16)
    coins = next(p for p in demo_sources.load_photos() if p.name == "coins")
    rows = [{"id": f"planted-{key}", "image": {"bytes": planted_copy(SHARED_DATA / "tabmwp" / "tables" / f"{key}.png"),
                                               "path": f"{key}.jpg"},
             "question": "Read the table and summarise what it lists.", "answer": "A short summary."} for key in planted]
    rows.append({"id": "pasted-question", "image": {"bytes": coins.data, "path": "coins.png"},
                 "question": f"Here is a puzzle. {problems[pasted]['question']} Explain each step.", "answer": "Done."})
    (root / "planted").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "planted" / "train.parquet")
    nlvr_lines = (SHARED_DATA / "nlvr" / "dev.jsonl").read_text().splitlines()[:NLVR_STATEMENTS]
    (root / "nlvr_slice.jsonl").write_text("\n".join(nlvr_lines) + "\n")

    lake = make_lake("leaks_")
    conf = root / "conf"
    shutil.copytree(lake.config_dir, conf)
    (conf / "sources" / "planted.yaml").write_text(
        f"format: hf_parquet\npath: {root / 'planted'}\nkey: '{{{{ id }}}}'\nimages: {{column: image}}\n"
        "turns:\n  - user: '{{ question }}'\n    assistant: '{{ answer }}'\nlicense: test\n"
    )
    kept = dict(sorted(problems.items(), key=lambda item: int(item[0]))[:BENCHMARK_ITEMS])
    (root / "tabmwp_slice.json").write_text(json.dumps(kept))
    (conf / "sources" / "tabmwp_slice.yaml").write_text(
        (conf / "sources" / "tabmwp.yaml").read_text()
        .replace("${paths.shared_data}/tabmwp/problems_test1k.json", str(root / "tabmwp_slice.json"))
        .replace("images:\n", f"images:\n  root: {SHARED_DATA / 'tabmwp'}\n")
    )
    with (conf / "benchmarks.yaml").open("a") as listing:
        listing.write("  tabmwp_slice:\n    source: tabmwp_slice\n")
    nlvr = (conf / "sources" / "nlvr.yaml").read_text()
    (conf / "sources" / "nlvr_slice.yaml").write_text(
        nlvr.replace("${paths.shared_data}/nlvr/dev.jsonl", str(root / "nlvr_slice.jsonl"))
        .replace('  count: 6', f"  count: 6\n  root: {SHARED_DATA / 'nlvr'}")
    )
    flags = [*lake.flags("ingest.sources=[planted, nlvr_slice]", "decontaminate.benchmarks=[tabmwp_slice]"), "--conf", str(conf)]
    for stage in stages(CURATION):
        assert stage.main(flags) == 0, stage.name
    lake.planted, lake.pasted = planted, pasted
    return lake


def flags_by_sample(lake):
    samples = lake.table("silver", "samples").select("sample_id", "source", "source_key")
    return lake.table("gold", "contamination").drop("source").join(samples, "sample_id")


def test_every_planted_table_is_flagged_as_an_image_leak(leak_lake):
    flags = flags_by_sample(leak_lake).where(F.col("kind") == "image")
    found = {(r.source_key, r.item_id) for r in flags.collect()}
    for key in leak_lake.planted:
        assert (f"planted-{key}", key) in found
    # Only its own item: TabMWP tables of one template (same rows and columns, other names and numbers)
    # differ in every cell, which the pixel check sees (udfs/verify.py).
    extra = sorted((key, item) for key, item in found if item != key.removeprefix("planted-"))
    assert not extra, extra


def test_clean_nlvr_samples_are_not_flagged(leak_lake):
    nlvr = leak_lake.table("silver", "samples").where(F.col("source") == "nlvr_slice").count()
    assert nlvr == NLVR_STATEMENTS
    assert flags_by_sample(leak_lake).where(F.col("source") == "nlvr_slice").count() == 0


def test_a_pasted_tabmwp_question_is_flagged_by_the_text_check(leak_lake):
    rows = flags_by_sample(leak_lake).where(F.col("source_key") == "pasted-question").collect()
    assert [(r.kind, r.item_id, r.similarity) for r in rows] == [("text", leak_lake.pasted, 1.0)]
    # the benchmark items were loaded once and embedded with the training model
    assert leak_lake.table("bench", "items").count() == BENCHMARK_ITEMS
    models = {r.model_id for r in leak_lake.table("bench", "images").select("model_id").distinct().collect()}
    assert models == {r.model_id for r in leak_lake.table("silver", "image_embeddings").select("model_id").distinct().collect()}
