"""The quality gate and the MLflow report, on a small lake of its own."""

import json

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from jobs import ingest, normalize
from jobs.runtime.config import load_config
from jobs.runtime.gate import Conservation, GateFailure, QualityGate, quality_report
from schemas import silver_images, silver_samples, validations
from schemas.contract import SuiteInputs

PREFIX = "gate_"


@pytest.fixture(scope="module")
def gated_lake(make_lake):
    lake = make_lake(PREFIX)
    flags = lake.flags("ingest.sources=[demo_cauldron]")
    assert ingest.main(flags) == 0
    assert normalize.main(flags) == 0
    return lake


def mlflow_runs(lake, stage):
    client = MlflowClient(tracking_uri=lake.config.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(lake.config.mlflow.experiment)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`finelake.stage` = '{stage}' and params.schema_prefix = '{PREFIX}'",
        order_by=["attributes.start_time DESC"],
    )
    return client, runs


def validation_rows(lake, table):
    return lake.lake.read(validations.CONTRACT).where(F.col("table_name") == table).orderBy("validated_at").collect()


def test_every_written_table_is_validated_and_published(gated_lake):
    for contract in (silver_samples.CONTRACT, silver_images.CONTRACT):
        rows = validation_rows(gated_lake, contract.logical_name)
        assert rows and all(r.success for r in rows)
        published = gated_lake.lake.published_version(contract)
        assert published == max(r.version for r in rows) == rows[-1].published_version
        assert gated_lake.table(contract.layer, contract.name).count() == gated_lake.lake.read_version(contract, published).count()
    suites = {r.suite for r in validation_rows(gated_lake, "silver.samples")}
    assert suites == {"silver.samples.suite", "silver.samples.conservation.normalize"}


def test_mlflow_run_of_a_stage_holds_params_metrics_plots_and_validations(gated_lake):
    client, runs = mlflow_runs(gated_lake, "normalize")
    run = runs[-1]  # the first normalize run of this lake
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["stage"] == "normalize" and params["environment"] == "local"
    assert params["config_digest"] == load_config("local", [*gated_lake.overrides, "ingest.sources=[demo_cauldron]"]).digest()
    assert params["input.bronze.records"] == "1" and "code_version" in params
    metrics = run.data.metrics
    assert (metrics["rows_in"], metrics["kept"], metrics["rejected"]) == (10, 9, 1)
    assert metrics["rejected.empty_text"] == 1 and metrics["rows_in.demo_cauldron"] == 10
    assert metrics["wall_seconds"] > 0 and metrics["rows_per_second"] > 0
    artifacts = {a.path for folder in ("plots", "validations") for a in client.list_artifacts(run.info.run_id, folder)}
    for plot in ("rows_per_source", "reject_reasons", "image_long_side", "text_length"):
        assert f"plots/{plot}.png" in artifacts
    assert {"validations/silver.samples-v1-suite.json", "validations/silver.samples-v1-suite.html",
            "validations/silver.samples-v1-normalize.json"} <= artifacts
    result = client.download_artifacts(run.info.run_id, "validations/silver.samples-v1-suite.json")
    assert json.load(open(result))["success"] is True


def test_duplicate_keys_are_rejected_and_the_old_version_stays_published(gated_lake):
    lake, contract = gated_lake.lake, silver_samples.CONTRACT
    published = lake.published_version(contract)
    before = gated_lake.table("silver", "samples").count()
    duplicate = lake.read(contract).limit(2)
    duplicate.write.format("delta").mode("append").saveAsTable(lake.name(contract))  # a buggy writer
    bad_version = lake.latest_version(contract)
    gate = QualityGate(lake, "test", "dup-run", SuiteInputs("dup-run", 1536, 32768))
    with pytest.raises(GateFailure) as failure:
        gate.check(contract, bad_version)
    message = str(failure.value)
    assert "expect_column_values_to_be_unique(sample_id)" in message and "sample_id=" in message
    assert lake.published_version(contract) == published
    assert gated_lake.table("silver", "samples").count() == before  # readers see the old data
    assert lake.spark.table(lake.name(contract)).count() == before  # the store was restored
    assert lake.read_version(contract, bad_version).count() == before + 2  # forensics by time travel
    record = validation_rows(gated_lake, contract.logical_name)[-1]
    assert (record.version, record.success, record.published_version) == (bad_version, False, published)
    assert "expect_column_values_to_be_unique(sample_id)" in record.failed_expectations
    assert duplicate.first().sample_id in record.offending_keys


def test_broken_conservation_is_rejected(gated_lake):
    lake, contract = gated_lake.lake, silver_samples.CONTRACT
    published = lake.published_version(contract)
    extra = lake.read(contract).limit(1).withColumn("sample_id", F.lit("f" * 32)).withColumn("run_id", F.lit("cons-run"))
    written = lake.merge(contract, extra)
    gate = QualityGate(lake, "normalize", "cons-run", SuiteInputs("cons-run", 1536, 32768))
    with pytest.raises(GateFailure, match=r"expect_column_pair_values_to_be_equal\(rows_in=kept_plus_rejected\)"):
        gate.check(contract, written.version, Conservation("normalize", {"demo_cauldron": 5}))
    assert lake.published_version(contract) == published
    assert lake.read(contract).where(F.col("sample_id") == "f" * 32).count() == 0


def test_a_job_whose_write_breaks_the_suite_exits_3_and_reports_it(gated_lake):
    """Images normalised under the old max_side violate a smaller one: the images write is refused."""
    lake = gated_lake.lake
    published_images = lake.published_version(silver_images.CONTRACT)
    published_samples = lake.published_version(silver_samples.CONTRACT)
    images_before = gated_lake.table("silver", "images").count()
    flags = gated_lake.flags("ingest.sources=[demo_cauldron, demo_hf_vqa]", "normalize.image.max_side=256")
    assert ingest.main(flags) == 0
    assert normalize.main(flags) == 3
    assert lake.published_version(silver_images.CONTRACT) == published_images
    assert lake.published_version(silver_samples.CONTRACT) == published_samples  # the stage stopped
    assert gated_lake.table("silver", "images").count() == images_before
    record = validation_rows(gated_lake, "silver.images")[-1]
    assert not record.success and "expect_column_values_to_be_between(width)" in record.failed_expectations

    client, runs = mlflow_runs(gated_lake, "normalize")
    failed = runs[0]
    assert failed.info.status == "FAILED" and record.mlflow_run_id == failed.info.run_id
    assert "expect_column_values_to_be_between(width)" in failed.data.tags["finelake.failure"]
    page = client.download_artifacts(failed.info.run_id, f"validations/silver.images-v{record.version}-suite.html")
    assert "FAIL" in open(page).read()


def test_report_lists_every_gated_table(gated_lake):
    text = quality_report(gated_lake.lake)
    for table in ("bronze.records", "bronze.ingested_files", "silver.samples", "silver.images", "silver.rejects"):
        assert table in text
    assert "FAILED (expect_column_values_to_be_between(width)" in text
