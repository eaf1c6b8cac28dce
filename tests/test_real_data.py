"""Real sources ingested by config alone: NLVR (dev), TabMWP (test1k) and Mind2Web's GUI actions
(SeeClick's test splits) from ../shared/data."""

import json

import pytest
from pyspark.sql import functions as F

from jobs.registry import BY_NAME
from tests.conftest import SHARED_DATA, needs_shared_data

pytestmark = [needs_shared_data("nlvr", "tabmwp", "mind2web"), pytest.mark.realdata]


@pytest.fixture(scope="module")
def real_lake(make_lake):
    lake = make_lake("real_")
    flags = lake.flags("ingest.sources=[nlvr, tabmwp, mind2web]")
    assert BY_NAME["ingest"].main(flags) == 0
    assert BY_NAME["normalize"].main(flags) == 0
    return lake


def per_source(frame):
    return {r.source: r["count"] for r in frame.groupBy("source").count().collect()}


def test_every_record_is_kept_with_its_images(real_lake):
    statements = sum(1 for line in (SHARED_DATA / "nlvr" / "dev.jsonl").read_text().splitlines() if line.strip())
    problems = len(json.loads((SHARED_DATA / "tabmwp" / "problems_test1k.json").read_text()))
    samples = real_lake.table("silver", "samples").where(F.col("source") != "mind2web")
    records = real_lake.table("bronze", "records").where(F.col("source") != "mind2web")
    assert per_source(records) == {"nlvr": statements, "tabmwp": problems}
    assert per_source(samples) == {"nlvr": statements, "tabmwp": problems}
    assert real_lake.table("silver", "rejects").where(F.col("source") != "mind2web").count() == 0
    refs = {r.source: r.n for r in samples.groupBy("source").agg(F.sum(F.size("image_ids")).alias("n")).collect()}
    assert refs == {"nlvr": 6 * statements, "tabmwp": problems}


def test_nlvr_statement_becomes_a_yes_no_question(real_lake):
    rows = {
        json.loads(line)["identifier"]: json.loads(line)
        for line in (SHARED_DATA / "nlvr" / "dev.jsonl").read_text().splitlines() if line.strip()
    }
    for sample in real_lake.table("silver", "samples").where(F.col("source") == "nlvr").limit(50).collect():
        source = rows[sample.source_key]
        (turn,) = sample.turns
        assert f'"{source["sentence"]}"' in turn.user
        assert turn.assistant == ("yes" if source["label"] == "true" else "no")
        assert len(sample.image_ids) == 6


def test_tabmwp_choices_and_answers(real_lake):
    problems = json.loads((SHARED_DATA / "tabmwp" / "problems_test1k.json").read_text())
    samples = {r.source_key: r for r in real_lake.table("silver", "samples").where(F.col("source") == "tabmwp").collect()}
    assert set(samples) == set(problems)
    for key, problem in problems.items():
        (turn,) = samples[key].turns
        assert turn.user.startswith(problem["question"])
        assert turn.assistant.split(" ")[0] == problem["answer"].split(" ")[0]
        if problem["choices"]:
            assert "(A) " + problem["choices"][0] in turn.user
    assert samples["54"].turns[0].user.endswith("Choices: (A) shortage (B) surplus")


def test_images_are_decoded_and_capped(real_lake):
    images = real_lake.table("silver", "images")
    stats = images.agg(F.max(F.greatest("width", "height")).alias("side"), F.min("width").alias("w")).first()
    assert stats.side <= real_lake.config.normalize.image.max_side and stats.w >= 32
    # NLVR: six renderings per scene, each its own image row unless two renderings are byte-identical.
    nlvr = real_lake.table("silver", "samples").where(F.col("source") == "nlvr").select(F.explode("image_ids").alias("i"))
    distinct = nlvr.distinct().count()
    assert 0.9 * nlvr.count() <= distinct <= nlvr.count()


def test_mind2web_actions_become_samples_in_the_one_action_space_or_rejects(real_lake):
    """By the source YAML alone, a sample per step: the task and the earlier actions, then the action
    at the target's centre; every action is a sample or a reject with its reason (in = kept + rejected)."""
    tasks = [task for path in sorted((SHARED_DATA / "mind2web").glob("mind2web_data_test_*.json"))
             for task in json.loads(path.read_text())]
    actions = sum(len(t["actions"]) for t in tasks)
    samples = real_lake.table("silver", "samples").where(F.col("source") == "mind2web")
    rejects = real_lake.table("silver", "rejects").where(F.col("source") == "mind2web")
    assert real_lake.table("bronze", "records").where(F.col("source") == "mind2web").count() == actions
    reasons = {r.reason: r["count"] for r in rejects.groupBy("reason").count().collect()}
    kept = samples.count()
    assert kept + sum(reasons.values()) == actions and kept / actions > 0.99
    assert set(reasons) <= {"malformed_action", "coordinates_out_of_range"}
    functions = {r.function: r["count"] for r in samples.select(F.explode("actions").alias("a"))
                 .groupBy(F.col("a.function").alias("function")).count().collect()}
    assert set(functions) == {"click", "type", "select", "move_mouse"}
    task, step = next((t, i) for t in tasks for i, a in enumerate(t["actions"]) if i and a["operation"]["op"] == "TYPE")
    (sample,) = samples.where(F.col("source_key") == f"{task['annotation_id']}#{step}").collect()
    (turn,) = sample.turns
    assert turn.user.startswith(task["confirmed_task"]) and turn.user.count("\n") >= step + 1  # the earlier steps
    assert turn.assistant.endswith(f"type(text={task['actions'][step]['operation']['value']!r})")
    click, typing = sample.actions
    assert (click.function, typing.function) == ("click", "type") and 0 <= click.x <= 1 and 0 <= click.y <= 1
    assert click.raw == typing.raw and '"op": "TYPE"' in click.raw and sample.image_ids == []
    print(f"\nMind2Web ({len(tasks)} tasks): {kept} of {actions} actions converted; rejects {reasons}; functions {functions}")
