"""Write-audit-publish on a small lake of its own: every batch audited before it is committed,
refused batches leave no trace for readers, concurrent writers keep their commits, MLflow reports."""

import dataclasses
import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from delta.tables import DeltaTable
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from jobs import registry
from jobs.runtime import gate as gate_module
from jobs.ops import samples as sample_ops
from jobs.runtime.config import load_config
from jobs.runtime.gate import Batch, Conservation, Gate, GateFailure, quality_report
from schemas import silver_images, silver_rejects, silver_samples, validations

PREFIX = "gate_"
INGEST, NORMALIZE = registry.BY_NAME["ingest"], registry.BY_NAME["normalize"]


@pytest.fixture(scope="module")
def gated_lake(make_lake):
    lake = make_lake(PREFIX)
    flags = lake.flags("ingest.sources=[demo_cauldron]")
    assert INGEST.main(flags) == 0
    assert NORMALIZE.main(flags) == 0
    return lake


def mlflow_runs(lake, stage):
    client = MlflowClient(tracking_uri=lake.config.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(lake.config.mlflow.experiment)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`finelake.stage` = '{stage}' and params.schema_prefix = '{lake.config.catalog.schema_prefix}'",
        order_by=["attributes.start_time DESC"],
    )
    return client, runs


def validation_rows(lake, table):
    return lake.lake.read_current(validations.CONTRACT).where(F.col("table_name") == table).orderBy("validated_at").collect()


def gate_for(lake, stage: registry.Stage, run_id: str) -> Gate:
    return Gate(lake.lake, stage, run_id, lake.config)


def test_every_commit_is_a_batch_that_passed_its_suite(gated_lake):
    for contract in (silver_samples.CONTRACT, silver_images.CONTRACT):
        rows = validation_rows(gated_lake, contract.logical_name)
        assert rows and all(r.success for r in rows)
        assert gated_lake.lake.latest_version(contract) == max(r.version for r in rows)
        history = DeltaTable.forName(gated_lake.spark, gated_lake.lake.name(contract)).history()
        committed = {r.userMetadata for r in history.where("version > 0").collect()}
        assert committed == {r.batch for r in rows}  # every version of the table is an audited batch
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
    batch = validation_rows(gated_lake, "silver.samples")[0].batch
    assert {f"validations/silver.samples-{batch}-suite.json", f"validations/silver.samples-{batch}-suite.html",
            f"validations/silver.samples-{batch}-normalize.json"} <= artifacts
    result = client.download_artifacts(run.info.run_id, f"validations/silver.samples-{batch}-suite.json")
    assert json.load(open(result))["success"] is True


@pytest.mark.parametrize("audit", ["pandas", "spark"])  # small batches are audited in pandas, large ones in Spark
def test_a_batch_with_duplicate_keys_is_refused_and_readers_see_the_table_unchanged(gated_lake, monkeypatch, audit):
    if audit == "spark":
        monkeypatch.setattr(gate_module, "PANDAS_MAX_ROWS", 0)
    lake, contract = gated_lake.lake, silver_samples.CONTRACT
    version, before = lake.latest_version(contract), gated_lake.table("silver", "samples").count()
    existing = lake.read_current(contract).limit(1).withColumn("sample_id", F.lit("e" * 32))
    gate = gate_for(gated_lake, NORMALIZE, f"dup-{audit}")
    with pytest.raises(GateFailure) as failure:
        gate.commit(Batch(contract, existing.unionByName(existing)))  # a buggy op: one new key, twice
    message = str(failure.value)
    assert "expect_column_values_to_be_unique(sample_id)" in message and f"sample_id={'e' * 32}" in message
    assert lake.latest_version(contract) == version  # nothing committed
    assert gated_lake.table("silver", "samples").count() == before
    record = validation_rows(gated_lake, contract.logical_name)[-1]
    assert (record.batch, record.success, record.version, record.rows) == (f"dup-{audit}-1", False, None, 2)
    assert "expect_column_values_to_be_unique(sample_id)" in record.failed_expectations and "e" * 32 in record.offending_keys
    assert gated_lake.spark.read.parquet(record.refused_batch).count() == 2  # forensics: the batch as refused


def test_broken_conservation_refuses_the_whole_write(gated_lake):
    lake = gated_lake.lake
    tables = (silver_samples.CONTRACT, silver_rejects.CONTRACT)
    versions = {c.logical_name: lake.latest_version(c) for c in tables}
    extra = lake.read_current(silver_samples.CONTRACT).limit(1).withColumn("sample_id", F.lit("f" * 32))
    gate = gate_for(gated_lake, NORMALIZE, "cons-run")
    with pytest.raises(GateFailure, match=r"expect_column_pair_values_to_be_equal\(rows_in=kept_plus_rejected\)"):
        gate.commit(Batch(silver_samples.CONTRACT, extra, append=True),
                    conservation=Conservation({"demo_cauldron": 5}, silver_samples.CONTRACT))
    assert {c.logical_name: lake.latest_version(c) for c in tables} == versions
    assert lake.read_current(silver_samples.CONTRACT).where(F.col("sample_id") == "f" * 32).count() == 0


def test_a_job_whose_op_breaks_the_suite_exits_3_and_commits_nothing(gated_lake, monkeypatch):
    """A buggy resize (the policy ignores normalize.image.max_side) in a real normalize run: the
    images it makes are wider than the suite allows, so none of the run's writes is committed."""
    lake = gated_lake.lake
    tables = (silver_images.CONTRACT, silver_samples.CONTRACT, silver_rejects.CONTRACT)
    versions = {c.logical_name: lake.latest_version(c) for c in tables}
    flags = gated_lake.flags("ingest.sources=[demo_cauldron, demo_hf_vqa]", "normalize.image.max_side=256")
    assert INGEST.main(flags) == 0
    honest = sample_ops.image_policy
    monkeypatch.setattr(sample_ops, "image_policy", lambda config: dataclasses.replace(honest(config), max_side=4096))
    assert NORMALIZE.main(flags) == 3
    assert {c.logical_name: lake.latest_version(c) for c in tables} == versions
    assert lake.read_current(silver_samples.CONTRACT).where(F.col("source") == "demo_hf_vqa").count() == 0
    record = validation_rows(gated_lake, "silver.images")[-1]
    assert not record.success and "expect_column_values_to_be_between(width)" in record.failed_expectations

    client, runs = mlflow_runs(gated_lake, "normalize")
    failed = runs[0]
    assert failed.info.status == "FAILED" and record.mlflow_run_id == failed.info.run_id
    assert "expect_column_values_to_be_between(width)" in failed.data.tags["finelake.failure"]
    page = client.download_artifacts(failed.info.run_id, f"validations/silver.images-{record.batch}-suite.html")
    assert "FAIL" in open(page).read()
    monkeypatch.undo()
    assert NORMALIZE.main(flags) == 0  # the honest op: the same records are pending and pass
    assert lake.read_current(silver_samples.CONTRACT).where(F.col("source") == "demo_hf_vqa").count() > 0


def test_a_stage_may_write_only_what_the_registry_gives_it(gated_lake):
    from jobs.runtime.tables import TableContractError

    rows = gated_lake.lake.read_current(silver_images.CONTRACT).limit(1)
    with pytest.raises(TableContractError, match="jobs/registry.py does not give it"):
        gate_for(gated_lake, INGEST, "owner-run").commit(Batch(silver_images.CONTRACT, rows))
    rejects = gated_lake.lake.read_current(silver_rejects.CONTRACT).where("stage = 'normalize'").limit(1)
    with pytest.raises(GateFailure, match=r"expect_column_values_to_be_in_set\(stage\)"):  # another stage's partition
        gate_for(gated_lake, INGEST, "owner-run").commit(Batch(silver_rejects.CONTRACT, rejects.withColumn("file", F.lit("x"))))


def test_a_refused_batch_does_not_undo_a_commit_made_while_it_was_audited(gated_lake, tmp_path):
    """Writer A's batch is being staged when writer B commits to the same table (its own partition);
    A is refused. B's commit stays, A leaves nothing behind, and no reader ever saw A's rows: not a
    reader polling while A was audited, and not any version of the table made meanwhile."""
    lake = gated_lake.lake
    released = tmp_path / "b-committed"
    template = lake.read_current(silver_rejects.CONTRACT).limit(1)
    first_version = lake.latest_version(silver_rejects.CONTRACT)

    @F.pandas_udf("string")
    def reason_once_b_committed(values: pd.Series) -> pd.Series:
        deadline = time.monotonic() + 120
        while not released.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return pd.Series(["not_a_reason_code"] * len(values))

    bad = template.withColumns({"stage": F.lit("normalize"), "file": F.lit("a.json"), "run_id": F.lit("run-a"),
                                "reason": reason_once_b_committed(F.col("reason"))})
    good = template.withColumns({"stage": F.lit("ingest"), "file": F.lit("b.json"), "run_id": F.lit("run-b")})
    outcome, seen_by_reader = {}, []

    def writer_a():
        try:
            gate_for(gated_lake, NORMALIZE, "run-a").commit(Batch(silver_rejects.CONTRACT, bad))
        except GateFailure as err:
            outcome["a"] = err

    a = threading.Thread(target=writer_a)
    a.start()
    results = gate_for(gated_lake, INGEST, "run-b").commit(Batch(silver_rejects.CONTRACT, good))
    Path(released).touch()
    while not seen_by_reader or a.is_alive():
        seen_by_reader.append(gated_lake.table("silver", "rejects").where("file = 'a.json'").count())
    a.join(timeout=300)
    assert "expect_column_values_to_be_in_set(reason)" in str(outcome["a"])
    current = lake.read_current(silver_rejects.CONTRACT)
    assert current.where("file = 'b.json' AND run_id = 'run-b'").count() == 1
    assert current.where("file = 'a.json'").count() == 0
    assert lake.latest_version(silver_rejects.CONTRACT) == results[0].version  # nothing committed after B
    assert seen_by_reader and not any(seen_by_reader)
    for version in range(first_version, results[0].version + 1):
        assert lake.read_version(silver_rejects.CONTRACT, version).where("file = 'a.json'").count() == 0


def test_report_lists_every_gated_table(gated_lake):
    text = quality_report(gated_lake.lake)
    for table in ("bronze.records", "bronze.ingested_files", "silver.samples", "silver.images", "silver.rejects"):
        assert table in text
    assert "REFUSED (expect_column_values_to_be_between(width)" in text or "passed" in text


def test_two_stages_commit_to_the_lake_at_the_same_time(make_lake):
    """normalize (of demo_llava) and ingest (of demo_webdataset) run in two threads of one process;
    both write silver.rejects (each its own partition) and their own tables."""
    lake = make_lake("conc_")
    assert INGEST.main(lake.flags("ingest.sources=[demo_llava]")) == 0
    codes = {}
    threads = [threading.Thread(target=lambda n=name, f=flags: codes.__setitem__(n, registry.BY_NAME[n].main(f)))
               for name, flags in (("normalize", lake.flags("ingest.sources=[demo_llava]")),
                                   ("ingest", lake.flags("ingest.sources=[demo_webdataset]")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    assert codes == {"normalize": 0, "ingest": 0}
    rejects = lake.table("silver", "rejects").groupBy("stage", "source").count().collect()
    assert {(r.stage, r.source) for r in rejects} >= {("normalize", "demo_llava"), ("ingest", "demo_webdataset")}
    assert lake.table("silver", "samples").where("source = 'demo_llava'").count() == 26
    assert lake.table("bronze", "records").where("source = 'demo_webdataset'").count() == 20
    recorded = lake.lake.read_current(validations.CONTRACT).collect()
    assert recorded and all(r.success for r in recorded)
    history = DeltaTable.forName(lake.spark, lake.lake.name(silver_rejects.CONTRACT)).history().collect()
    runs = {r.userMetadata.rsplit("-", 1)[0] for r in history if r.userMetadata}
    assert len(runs) == 3  # the first ingest, and the two stages that ran side by side
