"""The teacher chain on real data: distill -> verify -> route with the local teacher on a TabMWP
slice (its verified rate is reported, whatever it is), and the fidelity judge scored against
Vibe-Eval's reference judge (GPT-4o-mini's 1-5 scores); the agreement is reported."""

import json
import shutil

import pytest

from jobs.registry import BY_NAME
from tests.bench.eval_judge_agreement import Agreement, agreement, judge_scores
from tests.conftest import SHARED_DATA, needs_shared_data

pytestmark = pytest.mark.realdata
PROBLEMS = 3  # TabMWP test problems through the chain (numbers and multiple choice)
JUDGED = 4  # Vibe-Eval answers the local judge scores


@pytest.fixture(scope="module")
def tabmwp_lake(make_lake, tmp_path_factory):
    root = tmp_path_factory.mktemp("teach_tabmwp")
    problems = json.loads((SHARED_DATA / "tabmwp" / "problems_test1k.json").read_text())
    chosen = dict(sorted(problems.items(), key=lambda item: int(item[0]))[:PROBLEMS])
    (root / "tabmwp_slice.json").write_text(json.dumps(chosen))
    lake = make_lake("realteach_")
    conf = root / "conf"
    shutil.copytree(lake.config_dir, conf)
    (conf / "sources" / "tabmwp_slice.yaml").write_text(
        (conf / "sources" / "tabmwp.yaml").read_text()
        .replace("${paths.shared_data}/tabmwp/problems_test1k.json", str(root / "tabmwp_slice.json"))
        .replace("images:\n", f"images:\n  root: {SHARED_DATA / 'tabmwp'}\n"))
    flags = [*lake.flags("ingest.sources=[tabmwp_slice]", "teacher.models.short.max_new_tokens=32",
                         "teacher.models.long.max_new_tokens=40", "teacher.models.judge.max_new_tokens=12"),
             "--conf", str(conf)]
    for name in ("ingest", "normalize", "distill", "verify", "route"):
        assert BY_NAME[name].main(flags) == 0, name
    return lake


@needs_shared_data("tabmwp")
def test_tabmwp_chain_reports_a_verified_rate_and_routes_every_failure(tabmwp_lake):
    verdicts = tabmwp_lake.table("gold", "verdicts").collect()
    short = [v for v in verdicts if v.teacher == "short"]
    assert len(short) == PROBLEMS
    reasoning = tabmwp_lake.table("gold", "reasoning").where("teacher = 'short'").collect()
    # the table's text (the source's image_text) stood in for the table image; every row well formed
    assert {(r.context_used, r.caption_used, r.status) for r in reasoning} == {(True, False, "ok")}
    assert all(" | " in r.image_text for r in tabmwp_lake.table("silver", "samples").collect())
    # TabMWP answers are numbers or one of the choices: the rule decides every answer the teacher gave
    assert {v.method for v in short} <= {"rule", "none"}
    routing = tabmwp_lake.table("gold", "routing").collect()
    failed = sum(v.verdict != "correct" for v in short)
    assert len(routing) == PROBLEMS and sum(r.outcome != "short_correct" for r in routing) == failed
    assert tabmwp_lake.table("gold", "reasoning").where("teacher = 'long'").count() == failed
    rate = sum(v.verdict == "correct" for v in short) / PROBLEMS
    print(f"\nTabMWP slice ({PROBLEMS} problems), local teacher: verified rate {rate:.2f}; routing "
          f"{sorted((r.outcome for r in routing))}")


@needs_shared_data("vibe-eval")
def test_fidelity_judge_agreement_with_vibe_eval_reference_scores():
    items = [json.loads(line) for line in (SHARED_DATA / "vibe-eval" / "judged-gpt4o-mini.jsonl").read_text().splitlines()]
    reference = [i["score"] for i in items[:JUDGED]]
    assert agreement(reference, reference, 4) == Agreement(JUDGED, JUDGED, 1.0, 1.0, 1.0)
    assert agreement([None] * JUDGED, reference, 4).same_pass == 0.0  # an unparsed judgement disagrees
    ours = judge_scores(items[:JUDGED], max_new_tokens=8)
    assert len(ours) == JUDGED and all(s is None or 1 <= s <= 5 for s in ours)
    print(f"\nlocal judge vs GPT-4o-mini on Vibe-Eval: {agreement(ours, reference, 4).describe()}")
