"""The curation stages (ingest ... decontaminate) end to end on the demo sources: reason codes, conservation, idempotency, increments."""

import shutil

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs import registry
from schemas import ALL_TABLES, bronze_records
from tests.conftest import run_notebook
from udfs import demo_sources

CURATION = registry.stages(registry.CURATION)

pytestmark = pytest.mark.usefixtures("spark")


def snapshot(lake):
    """Version and full content of every table (content as sorted JSON rows, bytes included)."""
    state = {}
    for contract in ALL_TABLES:
        name = lake.lake.name(contract)
        if not lake.spark.catalog.tableExists(name):  # the teacher stages' tables: tests/test_teacher.py
            continue
        rows = [r[0] for r in lake.spark.table(name).select(F.to_json(F.struct("*"))).collect()]
        state[name] = (DeltaTable.forName(lake.spark, name).history(1).first()["version"], sorted(rows))
    return state


def test_every_demo_record_ends_as_expected(demo_lake, demo_root):
    expected = demo_sources.load_expected(demo_root)
    samples = {(r.source, r.source_key) for r in demo_lake.table("silver", "samples").select("source", "source_key").collect()}
    rejects = {
        (r.stage, r.source, r.source_key or r.file, r.reason)
        for r in demo_lake.table("silver", "rejects").select("stage", "source", "source_key", "file", "reason").collect()
    }
    wanted_rejects = {(e.stage, e.source, e.key, e.reason) for e in expected if e.reason}
    assert rejects == wanted_rejects
    assert samples == {(e.source, e.key) for e in expected if e.reason is None} | {("demo_llava", "llava-coffee")}


def test_kept_hard_images_carry_their_conversion_notes(demo_lake, demo_root):
    notes = {e.key: e.note for e in demo_sources.load_expected(demo_root) if e.note}
    rows = (
        demo_lake.table("silver", "samples").where(F.col("source_key").isin(list(notes)))
        .select("source_key", F.explode("image_ids").alias("image_id"))
        .join(demo_lake.table("silver", "images"), "image_id")
        .select("source_key", "notes", "width", "height", "format")
        .collect()
    )
    assert {r.source_key for r in rows} == set(notes)
    for row in rows:
        assert notes[row.source_key] in row.notes, row
        assert row.format == "JPEG"
    assert next((r.width, r.height) for r in rows if r.source_key == "hard-exif_rotated.jpg") == (400, 600)


def test_rows_in_equal_rows_kept_plus_rejected_per_source(demo_lake, demo_root):
    expected = demo_sources.load_expected(demo_root)
    bronze = {r.source: r["count"] for r in demo_lake.table("bronze", "records").groupBy("source").count().collect()}
    samples = {r.source: r["count"] for r in demo_lake.table("silver", "samples").groupBy("source").count().collect()}
    rejects = demo_lake.table("silver", "rejects")
    read = demo_lake.table("bronze", "ingested_files").groupBy("source").agg(F.sum("rows_read").alias("n"))
    for row in read.collect():
        ingest_rejects = rejects.where((F.col("stage") == "ingest") & (F.col("source") == row.source)).count()
        normalize_rejects = rejects.where((F.col("stage") == "normalize") & (F.col("source") == row.source)).count()
        assert row.n == bronze[row.source] + ingest_rejects, row.source
        assert bronze[row.source] == samples[row.source] + normalize_rejects, row.source
        assert row.n == sum(1 for e in expected if e.source == row.source), row.source


def test_silver_keys_are_unique_and_refs_resolve(demo_lake):
    samples, images = demo_lake.table("silver", "samples"), demo_lake.table("silver", "images")
    assert samples.count() == samples.select("sample_id").distinct().count()
    assert images.count() == images.select("image_id").distinct().count()
    referenced = samples.select(F.explode("image_ids").alias("image_id")).distinct()
    assert referenced.join(images, "image_id", "left_anti").count() == 0
    assert images.join(referenced, "image_id", "left_anti").count() == 0  # no orphan image
    shared = images.where(F.size(F.array_distinct(F.transform("source_refs", lambda r: r["source"]))) == 4).count()
    assert shared >= 9  # photos that all four demo formats carry are stored once


def test_every_image_has_one_unit_vector(demo_lake):
    images = demo_lake.table("silver", "images")
    vectors = demo_lake.table("silver", "image_embeddings")
    assert vectors.count() == images.count()
    assert vectors.join(images, "image_id", "left_anti").count() == 0
    row = vectors.agg(F.min("dim").alias("lo"), F.max("dim").alias("hi"), F.countDistinct("model_id").alias("models")).first()
    assert (row.lo, row.hi, row.models) == (512, 512, 1)
    assert vectors.first().model_id == "sscd:onnx-288"


def test_planted_near_copies_are_grouped_with_their_originals(demo_lake):
    groups = demo_lake.table("gold", "duplicate_groups")
    samples = demo_lake.table("silver", "samples").select("sample_id", "source_key")
    for copy, (original, _) in demo_sources.NEAR_COPIES.items():
        copy_key, original_key = f"shard-00001.tar/{copy}", f"{original}-0"
        rows = groups.join(samples, "sample_id").where(F.col("source_key").isin(copy_key, original_key)).collect()
        assert len(rows) == 2 and rows[0].group_id == rows[1].group_id and rows[0].group_size == 2
        assert sum(r.is_representative for r in rows) == 1
    pairs = demo_lake.table("gold", "duplicate_pairs")
    assert {r.kind for r in pairs.select("kind").distinct().collect()} >= {"phash", "sscd"}
    # every sample is in exactly one group, and the groups' representatives are members
    assert groups.count() == demo_lake.table("silver", "samples").count()
    assert groups.where("is_representative").count() == groups.select("group_id").distinct().count()


def test_demo_benchmark_leaks_are_flagged_and_nothing_else(demo_lake):
    samples = demo_lake.table("silver", "samples")
    flags = demo_lake.table("gold", "contamination").join(samples.select("sample_id", "source_key"), "sample_id")
    found = {(r.item_id, r.kind, r.source_key) for r in flags.collect()}
    image_item, photo = demo_sources.BENCHMARK_LEAKS["image"]
    text_item, _ = demo_sources.BENCHMARK_LEAKS["text"]
    photo_id = samples.where(F.col("source_key") == f"llava-{photo}").first().image_ids[0]
    with_photo = {r.source_key for r in samples.where(F.array_contains("image_ids", photo_id)).collect()}
    assert len(with_photo) >= 4  # every demo format carries the photo
    assert found == {(image_item, "image", key) for key in with_photo} | {(text_item, "text", "bench-question")}
    assert {r.benchmark for r in flags.select("benchmark").distinct().collect()} == {"demo_bench"}


def test_stage_reports_carry_contamination_rates_and_diversity(demo_lake):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=demo_lake.config.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(demo_lake.config.mlflow.experiment)

    def first_run(stage):
        return client.search_runs(
            [experiment.experiment_id], f"tags.`finelake.stage` = '{stage}' and params.schema_prefix = 'e2e_'",
            order_by=["attributes.start_time ASC"],
        )[0]

    contamination_metrics = first_run("decontaminate").data.metrics
    total = demo_lake.table("silver", "samples").count()
    flagged = demo_lake.table("gold", "contamination").select("sample_id").distinct().count()
    assert contamination_metrics["contamination_rate.demo_bench"] == pytest.approx(flagged / total)
    assert contamination_metrics["benchmark_items_leaked.demo_bench"] == pytest.approx(2 / 3)
    diversity = first_run("embed").data.metrics
    assert 1 < diversity["diversity.effective_rank.all"] < 512
    assert {f"diversity.participation_ratio.{s}" for s in ("demo_llava", "demo_hf_vqa")} <= set(diversity)


def test_notebook_runs_on_the_demo_lake(demo_lake):
    namespace = run_notebook("dedup_and_contamination.ipynb", demo_lake.overrides)
    assert len(namespace["largest"]) >= 2 and namespace["largest"].is_representative.sum() == 1
    assert set(namespace["rates"].kind) == {"image", "text"}
    assert "diversity.effective_rank.all" in namespace["diversity"]


def test_prompt_cleanup_is_recorded(demo_lake):
    row = demo_lake.table("silver", "samples").where(F.col("source_key") == "cleaned").first()
    assert row.turns[0].user == "Who is in this photo?" and row.prompt_edits == ["Answer directly."]


def test_second_run_changes_nothing(demo_lake):
    before = snapshot(demo_lake)
    for stage in CURATION:
        assert stage.main(demo_lake.flags()) == 0
    assert snapshot(demo_lake) == before


def test_a_new_source_is_processed_alone(demo_lake, demo_root, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(demo_lake.config_dir, conf)
    shutil.copytree(demo_root / "cauldron", tmp_path / "more_cauldron")
    (conf / "sources" / "demo_more.yaml").write_text(
        f"format: cauldron_parquet\npath: {tmp_path / 'more_cauldron'}\nlicense: CC0-1.0\ncategory: multi_image\n"
    )
    bronze = demo_lake.table("bronze", "records")
    old_runs = {r.run_id for r in bronze.select("run_id").distinct().collect()}
    images_before = demo_lake.table("silver", "images").count()
    checks_before = demo_lake.table("gold", "contamination_checks").count()
    flags = [*demo_lake.flags(), "--conf", str(conf)]
    for stage in CURATION:
        assert stage.main(flags) == 0

    bronze = demo_lake.table("bronze", "records")
    new_rows = bronze.where(~F.col("run_id").isin(list(old_runs)))
    assert {r.source for r in new_rows.select("source").distinct().collect()} == {"demo_more"}
    assert new_rows.count() == 10
    history = DeltaTable.forName(demo_lake.spark, demo_lake.lake.name(bronze_records.CONTRACT)).history()
    last_write = history.orderBy(F.col("version").desc()).first()  # new keys by construction: a blind append
    assert last_write["operation"] == "WRITE" and int(last_write["operationMetrics"]["numOutputRows"]) == 10
    assert demo_lake.table("silver", "samples").where(F.col("source") == "demo_more").count() == 9
    # Same photos as demo_cauldron: no new image rows, existing ones gain the new refs.
    assert demo_lake.table("silver", "images").count() == images_before
    refs = demo_lake.table("silver", "images").select(F.explode("source_refs").alias("r")).where(F.col("r.source") == "demo_more")
    assert refs.count() == 18
    assert demo_lake.table("silver", "image_embeddings").count() == images_before  # nothing new to embed
    checks = demo_lake.table("gold", "contamination_checks")
    assert checks.count() == checks_before + 9  # only the new samples were checked against demo_bench
    assert {r.source for r in checks.where(F.col("checked_at") == checks.agg(F.max("checked_at")).first()[0])
            .select("source").distinct().collect()} == {"demo_more"}
