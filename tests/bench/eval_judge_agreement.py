"""How well does the fidelity judge agree with Vibe-Eval's reference judge (GPT-4o-mini, 1-5)?

    .venv/bin/python tests/bench/eval_judge_agreement.py [--items 269] [--env local] [--role judge]

Scores each (prompt, reference, generation) of ../shared/data/vibe-eval/judged-gpt4o-mini.jsonl
with the configured judge and prompt, and prints: how many outputs parsed, exact agreement,
agreement within one point, and agreement on pass/fail at verify.judge_pass. Unparsed outputs
count as disagreements. On a GPU cluster run it with --env databricks (vLLM judge).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from jobs.runtime.config import load_config
from udfs.generation import backend_for
from udfs.prompts import parse_scores

JUDGED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vibe-eval" / "judged-gpt4o-mini.jsonl"


@dataclass(frozen=True)
class Agreement:
    items: int
    parsed: int
    exact: float
    within_one: float
    same_pass: float

    def describe(self) -> str:
        return (f"{self.items} answers, {self.parsed} judged: exact {self.exact:.3f}, within one {self.within_one:.3f}, "
                f"same pass/fail {self.same_pass:.3f}")


def agreement(ours: list[int | None], reference: list[int], pass_at: int) -> Agreement:
    """Shares over all items; an item without a score of ours disagrees."""
    pairs = [(a, b) for a, b in zip(ours, reference) if a is not None]
    n = len(reference)
    return Agreement(n, len(pairs), sum(a == b for a, b in pairs) / n, sum(abs(a - b) <= 1 for a, b in pairs) / n,
                     sum((a >= pass_at) == (b >= pass_at) for a, b in pairs) / n)


def judge_scores(items: list[dict], env: str = "local", role: str = "judge", max_new_tokens: int | None = None) -> list[int | None]:
    config = load_config(env)
    settings = config.teacher_model(role)
    if max_new_tokens:
        settings = settings.model_copy(update={"max_new_tokens": max_new_tokens})
    prompt = config.prompts[config.verify.prompt]
    requests = [prompt.request({"question": i["prompt"], "reference": i["reference"], "response": i["generation"]},
                               config.teacher.max_input_chars) for i in items]
    results = backend_for(settings).generate(requests)
    return [(parse_scores(r.text or "", ("score",))[0] or {}).get("score") for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=269)
    parser.add_argument("--env", default="local")
    parser.add_argument("--role", default="judge")
    args = parser.parse_args()
    items = [json.loads(line) for line in JUDGED.read_text().splitlines()][: args.items]
    started = time.monotonic()
    ours = judge_scores(items, args.env, args.role)
    pass_at = load_config(args.env).verify.judge_pass
    print(f"judge ({args.env}/{args.role}) vs GPT-4o-mini on Vibe-Eval: "
          f"{agreement(ours, [i['score'] for i in items], pass_at).describe()} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
