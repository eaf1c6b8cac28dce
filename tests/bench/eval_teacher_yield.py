"""What the teacher stages yield with the configured (default: local, CPU) teacher, in one run.

    .venv/bin/python -m tests.bench.eval_teacher_yield [--problems 64] [--judged 64] [--env local]

On TabMWP problems spread over ../shared/data/tabmwp/problems_test1k.json, mapped by the tabmwp
source's own config (question, choices, answer, the table as `image_text`), it runs what rate,
distill and verify run, through the same prompts, grammars, parsers and rule checker:
- ratings: the share that parse;
- reasoning with the table text in the prompt and without it: the share well formed (thinking,
  then a final answer) and how many needed the second phase;
- verdicts: decided by rule, by the judge, or not at all; the verified rate with and without the
  table text;
- decoding speed: tokens/s of the same reasoning prompts with the grammar and without it;
then the fidelity judge against Vibe-Eval's reference scores (GPT-4o-mini, 1-5) on `--judged`
answers: share parsed, exact, within one, same pass/fail, Cohen's kappa on the five scores and on
pass/fail, and the time all 269 would take at the measured rate.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from jobs.runtime.config import load_config
from schemas.turn_ratings import AXES
from schemas.verdicts import JUDGE_AXES
from tests.bench.eval_judge_agreement import JUDGED, agreement
from udfs.answers import CORRECT, NEEDS_JUDGE, check_frame
from udfs.generation import backend_for, generate_frame
from udfs.mapping import record_turns
from udfs.prompts import parse_scores, reasoning_problem, scores_problem, split_reasoning
from udfs.readers import template_context

TABMWP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tabmwp" / "problems_test1k.json"


def tabmwp_turns(config, count: int) -> list[dict]:
    """`count` problems spread evenly over the file, as the tabmwp source maps them."""
    problems = json.loads(TABMWP.read_text())
    keys = sorted(problems, key=int)
    chosen = [keys[i * len(keys) // count] for i in range(count)]
    source = config.sources["tabmwp"]
    turns = []
    for key in chosen:
        mapped = record_turns(template_context({**problems[key], "_key": key}, TABMWP.name, 0, source), source)
        (question, answer), = mapped.turns
        turns.append({"key": key, "question": question, "answer": answer, "image_text": mapped.image_text or ""})
    return turns


def cohen_kappa(ours: list, reference: list) -> float:
    """Agreement beyond chance; an item we gave no label counts as its own label (a disagreement)."""
    pairs = list(zip(ours, reference))
    observed = sum(a == b for a, b in pairs) / len(pairs)
    ours_count, reference_count = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(ours_count[label] * reference_count[label] for label in ours_count) / len(pairs) ** 2
    return (observed - chance) / (1 - chance) if chance < 1 else 1.0


class Teacher:
    """The configured roles and prompts, driven the way the stages drive them (generate_frame)."""

    def __init__(self, config):
        self.config = config
        self.max_chars = config.teacher.max_input_chars

    def answer(self, stage_conf, prompt_name: str, rows: list[dict], problem, retries: int = 0,
               constrained: bool = True) -> tuple[pd.DataFrame, float]:
        settings = self.config.teacher_model(stage_conf).model_copy(update={"constrained": constrained})
        prompt = self.config.prompts[prompt_name]

        def build(row, previous=None, prefill=None):
            return prompt.request(row, self.max_chars, previous=previous, prefill=prefill)

        started = time.monotonic()
        out = generate_frame(pd.DataFrame(rows), backend_for(settings), build, problem, retries,
                             prompt.closed if prompt.budget else None)
        return out, time.monotonic() - started

    def judge(self, rows: list[dict]) -> tuple[list[int | None], float]:
        verify = self.config.verify
        out, seconds = self.answer(verify.judge, verify.prompt, rows, scores_problem(JUDGE_AXES), verify.retries)
        return [(parse_scores(t or "", JUDGE_AXES)[0] or {}).get("score") for t in out["text"]], seconds


def reasoning_yield(teacher: Teacher, turns: list[dict], with_table: bool) -> dict:
    config = teacher.config
    rows = [{"question": t["question"], "context": t["image_text"] if with_table else ""} for t in turns]
    out, seconds = teacher.answer(config.distill.model, config.distill.prompt, rows, reasoning_problem)
    parts = [split_reasoning(text or "") for text in out["text"]]
    finals = pd.Series([answer if problem is None else text for (_, answer, problem), text in zip(parts, out["text"])])
    checked = check_frame(finals, pd.Series([t["answer"] for t in turns]), pd.Series([t["question"] for t in turns]))
    verdicts = list(checked["verdict"])
    by_judge = [i for i, v in enumerate(verdicts) if v == NEEDS_JUDGE]
    scores, judge_seconds = teacher.judge([{"question": turns[i]["question"], "reference": turns[i]["answer"],
                                            "response": finals[i]} for i in by_judge]) if by_judge else ([], 0.0)
    for i, score in zip(by_judge, scores):
        verdicts[i] = "unverified" if score is None else (CORRECT if score >= config.verify.judge_pass else "incorrect")
    n = len(turns)
    return {
        "well_formed": sum(p is None for _, _, p in parts) / n,
        "second_phase": int((out["calls"] > 1).sum()),
        "by_rule": sum(v not in (NEEDS_JUDGE, "unverified") for v in checked["verdict"]) / n,
        "by_judge": len(by_judge) / n,
        "judge_parsed": sum(s is not None for s in scores) / len(scores) if scores else 1.0,
        "undecided": verdicts.count("unverified") / n,
        "verified": verdicts.count(CORRECT) / n,
        "seconds": seconds + judge_seconds,
        "tokens_out": int(out["tokens_out"].sum()),
    }


def decoding_speed(teacher: Teacher, turns: list[dict]) -> dict[bool, float]:
    """Tokens/s of the first phase of the same reasoning prompts, with the grammar and without (a warm model)."""
    config = teacher.config
    prompt = config.prompts[config.distill.prompt]
    requests = [prompt.request({"question": t["question"], "context": t["image_text"]}, teacher.max_chars) for t in turns]
    speed = {}
    for constrained in (False, True):
        backend = backend_for(config.teacher_model(config.distill.model).model_copy(update={"constrained": constrained}))
        backend.generate(requests[:2])  # warm-up: threads, the grammar's compilation
        started = time.monotonic()
        results = backend.generate(requests)
        speed[constrained] = sum(r.tokens_out for r in results) / (time.monotonic() - started)
    return speed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=64, help="TabMWP problems (default 64)")
    parser.add_argument("--judged", type=int, default=64, help="Vibe-Eval answers the judge scores (of 269)")
    parser.add_argument("--speed-prompts", type=int, default=24, help="reasoning prompts timed with and without the grammar")
    parser.add_argument("--env", default="local")
    args = parser.parse_args(argv)
    config = load_config(args.env, check_sources=False)
    teacher = Teacher(config)
    turns = tabmwp_turns(config, args.problems)
    print(f"teacher ({args.env}): " + ", ".join(f"{role}={s.name}/{s.backend} cap {s.max_new_tokens}"
                                                for role, s in sorted(config.teacher.models.items())))

    rows = [{"question": t["question"], "answer": t["answer"], "context": t["image_text"]} for t in turns]
    ratings, seconds = teacher.answer(config.rate.model, config.rate.prompt, rows, scores_problem(AXES), config.rate.retries)
    parsed = [parse_scores(t or "", AXES)[1] is None for t in ratings["text"]]
    print(f"\nratings on {len(turns)} TabMWP turns: {sum(parsed) / len(parsed):.3f} parsed, "
          f"{int((ratings['calls'] > 1).sum())} repaired ({seconds:.0f} s)")

    for with_table in (True, False):
        found = reasoning_yield(teacher, turns, with_table)
        print(f"reasoning {'with' if with_table else 'without'} the table text: well formed {found['well_formed']:.3f} "
              f"({found['second_phase']} closed and continued); verdicts by rule {found['by_rule']:.3f}, "
              f"by judge {found['by_judge']:.3f} (judge parsed {found['judge_parsed']:.3f}), undecided "
              f"{found['undecided']:.3f}; verified {found['verified']:.3f} ({found['tokens_out']} tokens, {found['seconds']:.0f} s)")

    speed = decoding_speed(teacher, turns[: args.speed_prompts])
    print(f"decoding, {args.speed_prompts} reasoning prompts: {speed[True]:.1f} tokens/s with the grammar, "
          f"{speed[False]:.1f} without: ratio {speed[True] / speed[False]:.2f} (target >= 0.8)")

    items = [json.loads(line) for line in JUDGED.read_text().splitlines()]
    chosen = items[: args.judged]
    scores, seconds = teacher.judge([{"question": i["prompt"], "reference": i["reference"], "response": i["generation"]}
                                     for i in chosen])
    reference = [i["score"] for i in chosen]
    pass_at = config.verify.judge_pass
    found = agreement(scores, reference, pass_at)
    passes = [None if s is None else s >= pass_at for s in scores]
    print(f"\njudge vs GPT-4o-mini on Vibe-Eval: {found.describe()}; parsed {found.parsed / found.items:.3f}; Cohen's kappa "
          f"{cohen_kappa(scores, reference):.3f} on the scores, {cohen_kappa(passes, [r >= pass_at for r in reference]):.3f} "
          f"on pass/fail; judged scores {dict(sorted(Counter(scores).items(), key=str))}")
    print(f"{seconds:.0f} s for {len(chosen)}: all {len(items)} take about {seconds / len(chosen) * len(items) / 60:.1f} min")


if __name__ == "__main__":
    main()
