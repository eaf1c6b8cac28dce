"""The teacher stages end to end: real Spark, Delta, GX, MLflow, the real local model (SmolLM2-135M,
tiny token budgets) and a real OpenAI-compatible server on loopback, which plays a sighted
captioner (it reads the images it is sent and names their size and hash) and, for the
resumability test (tests/test_teacher_resume.py), a judge.

The input is written straight into silver.samples / silver.images (ingest and normalize have
their own tests): three real photos, each with a counting question (a number: the rule decides)
and a describe question (free-form: the judge decides), so 6 turns.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from pyspark.sql import functions as F

from jobs import cli, registry
from jobs.demo import example_queries
from jobs.ops.difficulty import with_subsets
from schemas import silver_images, silver_samples, turn_ratings
from tests.local_openai_server import LocalOpenAIServer
from udfs import demo_sources
from udfs.generation import at_resolution

pytestmark = pytest.mark.usefixtures("spark")

PHOTOS = 3
TURNS = 2 * PHOTOS
CAPTIONER_SIDE = 128  # the served captioner's resolution: images are scaled to it before they are sent
TEACHING = registry.stages(registry.TEACHING)
# Reasoning keeps 12 tokens for its answer (conf/prompts/reasoning.yaml); a rating's compact JSON takes 25-30.
BUDGETS = ["teacher.commit_rows=8", "difficulty.samples=2",
           "teacher.models.short.max_new_tokens=20", "teacher.models.long.max_new_tokens=26",
           "teacher.models.judge.max_new_tokens=32", "teacher.models.small.max_new_tokens=16"]


def served(name: str, url: str, **options) -> str:
    """A --set value adding an openai-backend teacher role."""
    return json.dumps({"backend": "openai", "name": name, "model": name, "base_url": url, "gguf_file": None,
                       "max_new_tokens": 16, "timeout_s": 30, **options})


SECRET = "sk-finelake-test-0123456789"
# The captioner's API key, read from the environment by the Python workers: like a cluster's
# executor environment, it must be set before the Spark session starts (this module is imported first).
os.environ["FINELAKE_TEST_TEACHER_KEY"] = SECRET


def caption_of(image: bytes) -> str:
    with Image.open(io.BytesIO(image)) as opened:
        width, height = opened.size
    return f"A photo of {width}x{height} pixels, sha256 {hashlib.sha256(image).hexdigest()[:16]}."


def describe_sent_images(body: dict) -> str:
    """The captioner's answer: what it received, decoded from the request's data URLs."""
    parts = body["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if isinstance(parts, list) and p["type"] == "image_url"]
    return " ".join(caption_of(base64.b64decode(url.split(",", 1)[1])) for url in urls) or "no image received"


@pytest.fixture(scope="module")
def captioner():
    with LocalOpenAIServer(reply=describe_sent_images) as server:
        yield server


def write_silver(lake) -> None:
    """Three real photos (resized JPEGs) and their samples, appended as the silver tables' version 1."""
    now = datetime(2026, 1, 1)
    images, samples = [], []
    for photo in demo_sources.load_photos()[:PHOTOS]:
        with Image.open(io.BytesIO(photo.data)) as image:
            small = image.convert("RGB")
            small.thumbnail((256, 256))
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=90)
        data = buffer.getvalue()
        image_id = hashlib.sha256(data).hexdigest()
        sample_id = hashlib.md5(photo.name.encode()).hexdigest()
        images.append((image_id, data, small.width, small.height, "JPEG", photo.width, photo.height, "JPEG", "RGB", [],
                       [("photos", sample_id, 0)], now, "test"))
        turns = [("How many people are in this photo? Answer with a number.", "1"),
                 ("Describe the photo.", f"It shows {photo.caption}.")]
        samples.append((sample_id, "photos", "default", photo.name, [image_id], turns, None, [], "test", "photo", "en", [],
                        silver_samples.SCHEMA_VERSION, "photos.parquet", len(samples), now, "test"))
    for contract, rows in ((silver_images.CONTRACT, images), (silver_samples.CONTRACT, samples)):
        lake.lake.append(contract, lake.spark.createDataFrame(rows, contract.schema), f"test-{contract.name}")


@pytest.fixture(scope="module")
def taught(make_lake, captioner):
    lake = make_lake("teach_")
    write_silver(lake)
    flags = lake.flags(*BUDGETS, "caption.model=sighted", "teacher.models.sighted="
                       + served("served-captioner", captioner.url, api_key_env="FINELAKE_TEST_TEACHER_KEY",
                                image_max_side=CAPTIONER_SIDE, max_new_tokens=48))
    for stage in TEACHING:
        assert stage.main(flags) == 0, stage.name
    lake.run_flags = flags
    return lake


def turns(lake):
    samples = lake.table("silver", "samples")
    return samples.select("sample_id", F.posexplode("turns")).count()


def mlflow_metrics(lake, stage):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=lake.config.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(lake.config.mlflow.experiment)
    run = client.search_runs([experiment.experiment_id],
                             f"tags.`finelake.stage` = '{stage}' and params.schema_prefix = 'teach_'",
                             order_by=["attributes.start_time ASC"])[0]
    return run.data.metrics, client.list_artifacts(run.info.run_id, "plots")


def test_a_sighted_captioner_captions_every_image_once_from_its_bytes_at_its_resolution(taught, captioner):
    images = {r.image_id: r.bytes for r in taught.table("silver", "images").collect()}
    rows = taught.table("silver", "captions").collect()
    assert len(rows) == len(images) == len({r.image_id for r in rows}) == PHOTOS
    assert {(r.status, r.model, r.prompt_version, r.teacher_blind) for r in rows} == {
        ("ok", "served-captioner", "caption@v1", False)}
    for row in rows:  # the server received exactly the stored image, scaled to the model's resolution
        sent = at_resolution(images[row.image_id], CAPTIONER_SIDE)
        assert row.caption == caption_of(sent) and sent != images[row.image_id]
        with Image.open(io.BytesIO(sent)) as image:
            assert max(image.size) == CAPTIONER_SIDE
    first = captioner.requests[0]["messages"][-1]["content"]
    assert first[0]["image_url"]["url"].startswith("data:image/") and "Describe this image" in first[1]["text"]
    assert len([r for r in captioner.requests if r["model"] == "served-captioner"]) == PHOTOS  # one call per image


def test_the_api_key_reaches_the_server_and_no_run_record(taught, captioner):
    from mlflow.tracking import MlflowClient

    assert {h["Authorization"] for h in captioner.headers} == {f"Bearer {SECRET}"}
    client = MlflowClient(tracking_uri=taught.config.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(taught.config.mlflow.experiment)
    runs = client.search_runs([experiment.experiment_id], "params.schema_prefix = 'teach_'")
    assert any("sighted=served-captioner/openai" in r.data.params["teacher_models"] for r in runs)
    artifacts = Path(taught.config.mlflow.artifact_location)
    recorded = [json.dumps(r.data.params) + json.dumps(r.data.tags) for r in runs]
    recorded += [p.read_text(errors="ignore") for p in artifacts.rglob("*") if p.suffix in (".json", ".html", ".txt")]
    recorded += [r[0] for r in taught.table("silver", "captions").select(F.to_json(F.struct("*"))).collect()]
    assert len(recorded) > len(runs) and not [text for text in recorded if SECRET in text]


def test_distill_stores_reasoning_with_provenance_for_every_turn(taught):
    rows = taught.table("gold", "reasoning").where("teacher = 'short'").collect()
    short = taught.config.teacher_model("short").model_copy(update={"max_new_tokens": 20})
    assert len(rows) == turns(taught) == TURNS
    for row in rows:
        assert row.model == "smollm2-135m-instruct-q4_1" and row.prompt_version == "reasoning@v3"
        assert json.loads(row.sampling) == short.sampling()
        # the grammar and the two phases: every row is well formed, with a final answer, within the cap
        assert row.status == "ok" and row.reason is None and row.reasoning is not None, row.raw_output
        assert row.final_answer.startswith("Answer: ") and len(row.final_answer) > len("Answer: ")
        assert 0 < row.tokens_out <= 20 and row.tokens_in > 0 and row.finish_reason in ("stop", "length")
        assert row.calls in (1, 2) and row.raw_output.startswith("<think>")
        # the local teacher is text-only: it was blind, and the captions stood in for the images
        assert row.teacher_blind and row.caption_used and row.context_used


def test_every_distilled_answer_gets_a_verdict_and_a_reason(taught):
    reasoning = taught.table("gold", "reasoning").count()
    verdicts = taught.table("gold", "verdicts").collect()
    assert len(verdicts) == reasoning
    assert all(v.verdict in ("correct", "incorrect", "unverified") and v.reason for v in verdicts)
    # counting answers are numbers: the rule decides (or finds no answer); descriptions go to the judge
    by_turn = {}
    for v in verdicts:
        by_turn.setdefault(v.turn_index, set()).add(v.method)
    assert by_turn[0] <= {"rule", "none"} and by_turn[1] == {"judge"}
    judged = [v for v in verdicts if v.method == "judge"]
    assert judged and all(v.judge_model == "smollm2-135m-instruct-q4_1" and v.judge_calls >= 1 for v in judged)
    # the judge's answers are constrained to its JSON schema: every one is a score, every verdict decided
    assert all(v.judge_score in (1, 2, 3, 4, 5) and v.verdict != "unverified" for v in judged)


def test_failed_turns_go_to_the_long_teacher_and_failures_stay_marked(taught):
    verdicts = {(v.sample_id, v.turn_index, v.teacher): v.verdict for v in taught.table("gold", "verdicts").collect()}
    routing = taught.table("gold", "routing").collect()
    short = {k[:2]: v for k, v in verdicts.items() if k[2] == "short"}
    assert {(r.sample_id, r.turn_index) for r in routing} == set(short)
    for row in routing:
        key = (row.sample_id, row.turn_index)
        if short[key] == "correct":
            assert row.outcome == "short_correct" and row.chosen_teacher == "short"
        else:
            assert row.long_verdict == verdicts[(*key, "long")]
            assert row.outcome == ("long_correct" if row.long_verdict == "correct" else "failed_both")
    long_rows = taught.table("gold", "reasoning").where("teacher = 'long'")
    assert long_rows.count() == sum(1 for v in short.values() if v != "correct")
    assert {r.tokens_out <= 26 for r in long_rows.collect()} == {True}


def test_ratings_parse_at_the_first_call_under_their_schema(taught):
    rows = taught.table("gold", "turn_ratings").collect()
    assert len(rows) == TURNS
    for row in rows:
        scores = [row[a] for a in turn_ratings.AXES]
        # constrained by the prompt's JSON schema: parsed at the first call, no repair needed
        assert row.status == "ok" and all(1 <= s <= 5 for s in scores) and row.calls == 1, row.raw_output
        assert row.context_used


def test_difficulty_samples_k_answers_and_rates_what_a_rule_can_check(taught):
    rows = taught.table("gold", "difficulty").collect()
    assert len(rows) == TURNS
    for row in rows:
        assert row.k == 2 and len(row.answers) == 2 and len(json.loads(row.raw_output)) == 2
        assert 2 <= row.calls <= 4  # one call per answer, and a continuation per answer cut while thinking
        assert all(a.startswith("Answer: ") for a in row.answers), row.answers  # the same format as distill's
        if row.turn_index == 1:  # free-form gold answer
            assert row.status == "unverifiable" and row.pass_rate is None and row.subsets == []
        else:
            assert row.status == "ok" and row.checked == 2 and row.pass_rate == row.passes / 2
            assert set(row.subsets) <= {"hardest_50", "hardest_10"}
            assert not (row.pass_rate == 1.0 and row.subsets)


def test_subsets_hold_the_hardest_fractions_of_what_is_not_too_easy(spark):
    rows = [(f"s{i:03d}", 0, "ok", [1.0, 0.75, 0.5, 0.25, 0.0][i % 5]) for i in range(200)]
    rows += [("free", 0, "unverifiable", None)]
    frame = spark.createDataFrame(rows, "sample_id string, turn_index int, status string, pass_rate double").withColumns(
        {"model": F.lit("m"), "prompt_version": F.lit("reasoning@v1")})
    selected = with_subsets(frame, 1.0, {"hardest_50": 0.5, "hardest_10": 0.1}).collect()
    in_50 = [r for r in selected if "hardest_50" in r.subsets]
    in_10 = [r for r in selected if "hardest_10" in r.subsets]
    assert len(in_50) == pytest.approx(80, abs=1) and len(in_10) == pytest.approx(16, abs=1)  # of the 160 below 1.0
    assert {r.pass_rate for r in in_10} == {0.0} and {r.pass_rate for r in in_50} == {0.0, 0.25}
    assert not [r for r in selected if r.pass_rate in (1.0, None) and r.subsets]
    assert {r.sample_id for r in in_10} <= {r.sample_id for r in in_50}


def test_reports_carry_tokens_rates_outcomes_and_distributions(taught):
    metrics, plots = mlflow_metrics(taught, "distill")
    assert metrics["reasoning.written"] == TURNS and metrics["reasoning.tokens_out"] > 0
    assert metrics["reasoning.rows_per_s"] > 0 and metrics["reasoning.tokens_per_s"] > 0
    assert {"plots/reasoning_length_short.png", "plots/tokens_out_short.png", "plots/reasoning_status_short.png"} <= {
        p.path for p in plots}
    assert metrics["reasoning.short.ok"] == metrics["reasoning.short.context_used"] == TURNS
    metrics, plots = mlflow_metrics(taught, "route")
    assert "verified_rate.teacher.short" in metrics and "verified_rate.source.photos" in metrics
    assert sum(v for k, v in metrics.items() if k.startswith("routing.")) == TURNS
    metrics, plots = mlflow_metrics(taught, "rate")
    assert metrics["turn_ratings.calls"] >= TURNS


def test_sql_shows_a_turn_with_reasoning_verdict_and_pass_rate(taught, capsys):
    title, query = next(q for q in example_queries(taught.lake) if "reasoning" in q[0])
    assert cli.main(["sql", query, *taught.flags()]) == 0
    header = capsys.readouterr().out
    assert all(column in header for column in ("relevance", "reasoning", "final_answer", "method", "verdict", "outcome",
                                               "pass_rate"))


def test_a_second_run_generates_nothing(taught, captioner):
    versions = {t: taught.lake.latest_version(c) for t, c in teacher_tables(taught).items()}
    requests = len(captioner.requests)
    for stage in TEACHING:
        assert stage.main(taught.run_flags) == 0
    assert {t: taught.lake.latest_version(c) for t, c in teacher_tables(taught).items()} == versions
    assert len(captioner.requests) == requests


def teacher_tables(lake):
    from schemas import captions, difficulty as difficulty_table, reasoning, routing, verdicts

    return {c.name: c for c in (captions.CONTRACT, turn_ratings.CONTRACT, reasoning.CONTRACT, verdicts.CONTRACT,
                                routing.CONTRACT, difficulty_table.CONTRACT)}
