"""Benchmark: the local teacher's tokens/s through the Spark generation UDF vs a direct loop.

Both sides answer the same prompts (the four-phase reasoning prompt over TabMWP questions when
../shared/data is present, else generated arithmetic questions) with the configured `short`
teacher (greedy, so both produce the same tokens). The Spark side is the stages' own path,
jobs.ops.teacher.with_generation (an iterator pandas UDF, one backend per Python worker) on
local[--cores] with --cores partitions, each worker with teacher.models.short.threads threads; the
direct loop calls the same backend in this process with --cores x threads intra-op threads.
Each side runs once as a warm-up (workers start, the model loads), then the best of --repeats.
Prints tokens/s for both and the ratio Spark/loop (target >= 0.8).

    python tests/bench/bench_teacher.py [--prompts 32] [--cores 2] [--repeats 2] [--max-new-tokens 64]

On a GPU cluster the same comparison runs with the vLLM engine (one engine per executor GPU):

    spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0 tests/bench/bench_teacher.py \\
        --env databricks --prompts 2048 --cores <executors> --max-new-tokens 1024
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pyspark.sql import functions as F

from jobs.ops.teacher import with_generation
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session
from udfs.generation import backend_for

TABMWP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tabmwp" / "problems_test1k.json"


def questions(count: int) -> list[str]:
    if TABMWP.is_file():
        problems = json.loads(TABMWP.read_text())
        return [problems[k]["question"] for k in sorted(problems, key=int)[:count]]
    return [f"A shop sells {n} pens a day for {n % 7 + 2} days. How many pens does it sell?" for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--env", default="local")
    args = parser.parse_args()
    overrides = [f"spark.master=local[{args.cores}]", "paths.lake=/tmp/finelake_bench_teacher"] if args.env == "local" else []
    config = load_config(args.env, overrides)
    settings = config.teacher_model("short").model_copy(update={"max_new_tokens": args.max_new_tokens})
    prompt = config.prompts[config.distill.prompt]
    texts = questions(args.prompts)
    spark = get_session(config)
    frame = spark.createDataFrame([(i, q, "") for i, q in enumerate(texts)], "id int, question string, context string")

    def through_spark() -> int:
        out = with_generation(frame, settings, prompt, {"question": F.col("question"), "context": F.col("context")},
                              config.teacher.max_input_chars, args.cores)
        return out.agg(F.sum("out.tokens_out")).first()[0]

    loop_settings = settings.model_copy(update={"threads": args.cores * settings.threads})
    requests = [prompt.request({"question": q, "context": ""}, config.teacher.max_input_chars) for q in texts]

    def direct_loop() -> int:
        return sum(r.tokens_out for r in backend_for(loop_settings).generate(requests))

    rates = {}
    for name, run in (("spark", through_spark), ("loop", direct_loop)):
        run()  # warm-up
        best = 0.0
        for _ in range(args.repeats):
            started = time.monotonic()
            tokens = run()
            best = max(best, tokens / (time.monotonic() - started))
        rates[name] = best
        print(f"{name:>6}: {best:.1f} tokens/s ({tokens} tokens for {len(texts)} prompts)")
    print(f"ratio spark/loop: {rates['spark'] / rates['loop']:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
