"""The main job on the embedded default: build the demo sources, run every stage, show the lake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs import export, registry
from jobs.runtime.session import get_session
from jobs.runtime.stage import add_config_flags, config_from_args
from jobs.runtime.gate import quality_report
from jobs.runtime.tables import Lake, describe_tables
from jobs.runtime.tracking import ui_command
from udfs import demo_sources
from udfs.readers import local_path

# The CPU teacher makes ~60 tokens/s here: the demo runs the teacher stages on its Cauldron source only
# (9 samples, 18 turns) so it ends in minutes; `finelake run <stage>` covers every source.
DEMO_TEACHER_SOURCES = "teacher.sources=[demo_cauldron]"


def example_queries(lake: Lake) -> list[tuple[str, str]]:
    samples, images, rejects = (lake.schema_name("silver") + t for t in (".samples", ".images", ".rejects"))
    gold = lake.schema_name("gold")
    groups, flags = (gold + t for t in (".duplicate_groups", ".contamination"))
    return [
        (
            "Samples, images and turns per source",
            f"SELECT source, count(*) AS samples, sum(size(image_ids)) AS image_refs, sum(size(turns)) AS turns "
            f"FROM {samples} GROUP BY source ORDER BY source",
        ),
        (
            "Why rows were rejected",
            f"SELECT stage, source, reason, count(*) AS n, first(detail) AS example FROM {rejects} "
            f"GROUP BY stage, source, reason ORDER BY stage, source, n DESC",
        ),
        (
            "Images that several sources share (deduplicated by content hash)",
            f"SELECT substr(image_id, 1, 12) AS image, width, height, size(source_refs) AS refs, "
            f"array_sort(array_distinct(transform(source_refs, r -> r.source))) AS sources FROM {images} "
            f"WHERE size(array_distinct(transform(source_refs, r -> r.source))) > 1 ORDER BY refs DESC, image LIMIT 5",
        ),
        (
            "A near-duplicate group: its samples, and the one the keep policy keeps",
            f"SELECT g.group_id, g.source, s.source_key, g.is_representative, substr(s.turns[0].user, 1, 40) AS question "
            f"FROM {groups} g JOIN {samples} s USING (sample_id) WHERE g.group_id = (SELECT group_id FROM {groups} "
            f"WHERE group_size > 1 ORDER BY group_size DESC, group_id LIMIT 1) ORDER BY g.is_representative DESC, s.source_key",
        ),
        (
            "Samples flagged as benchmark contamination (flags, not deletions)",
            f"SELECT c.benchmark, c.item_id, c.kind, round(c.similarity, 3) AS similarity, c.source, s.source_key, c.evidence "
            f"FROM {flags} c JOIN {samples} s USING (sample_id) ORDER BY c.benchmark, c.kind, c.item_id, s.source_key LIMIT 12",
        ),
        (
            "A distilled turn: its ratings, the teacher's reasoning, its verdict (by rule or judge), the routing outcome, "
            "the small model's pass rate",
            f"SELECT r.sample_id, r.turn_index, r.question, r.gold_answer, t.formatting, t.relevance, t.visual_dependency, "
            f"t.image_correspondence, r.status, r.context_used, r.reasoning, r.final_answer, v.method, v.verdict, v.reason, "
            f"o.outcome, d.pass_rate, d.subsets FROM {gold}.reasoning r JOIN {gold}.verdicts v USING (sample_id, turn_index, teacher) "
            f"LEFT JOIN {gold}.turn_ratings t ON t.sample_id = r.sample_id AND t.turn_index = r.turn_index AND t.status = 'ok' "
            f"LEFT JOIN {gold}.routing o USING (sample_id, turn_index) LEFT JOIN {gold}.difficulty d USING (sample_id, turn_index) "
            f"WHERE r.teacher = 'short' ORDER BY (v.verdict = 'correct') DESC, r.sample_id, r.turn_index LIMIT 3",
        ),
        (
            "Verified rate and routing outcomes per source",
            f"SELECT o.source, o.outcome, count(*) AS turns FROM {gold}.routing o GROUP BY o.source, o.outcome ORDER BY o.source, turns DESC",
        ),
        (
            "What publish left out of the corpus, and why (view gold.curation_by_rule)",
            f"SELECT source, scope, rule, decisions, example FROM {gold}.curation_by_rule ORDER BY source, scope, rule",
        ),
        (
            "The published corpus (view gold.curated_by_source)",
            f"SELECT * FROM {gold}.curated_by_source ORDER BY source, category",
        ),
    ]


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser)
    parser.add_argument("--rebuild", action="store_true", help="rewrite the demo sources even if present")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, "demo")
    if config is None:
        return 2
    root = local_path(config.paths.demo_sources)
    if root is None:
        print("finelake demo: paths.demo_sources must be a local folder", file=sys.stderr)
        return 2
    if args.rebuild or not all((Path(root) / part).exists() for part in ("EXPECTED.json", "benchmark")):
        expected = demo_sources.build(Path(root))
        bad = sum(1 for e in expected if e.reason)
        print(f"demo sources written to {root}: {len(expected)} records in 4 formats, {bad} of them bad on purpose")
    stage_flags = ["--env", args.env, *sum((["--set", o] for o in args.overrides), [])]
    if args.conf:
        stage_flags += ["--conf", args.conf]
    if args.user_conf:
        stage_flags += ["--user-conf", args.user_conf]
    teacher_flags = [] if any(o.startswith("teacher.sources=") for o in args.overrides) else ["--set", DEMO_TEACHER_SOURCES]
    for stage in registry.STAGES:
        print(f"\n== finelake run {stage.name}")
        code = stage.main(stage_flags + (teacher_flags if stage.group == registry.TEACHING else []))
        if code != 0:
            return code
    target = f"{config.paths.lake}/exports/{config.publish.name}-hf"
    print(f"\n== finelake export --format hf --to {target}")
    code = export.main(["--format", "hf", "--to", target, *stage_flags])
    if code != 0:
        return code
    lake = Lake(get_session(config), config)
    print("\n== finelake tables")
    print(describe_tables(lake))
    for title, query in example_queries(lake):
        print(f"\n== {title}\n$ finelake sql \"{query}\"")
        lake.spark.sql(query).show(20, truncate=70)
    print("\n== finelake report")
    print(quality_report(lake))
    curated = lake.spark.table(f"{lake.schema_name('gold')}.curated").count()
    print(f"\ngold.curated: {curated} samples (of {lake.spark.table(lake.schema_name('silver') + '.samples').count()} "
          f"normalised); exported for training to {target}")
    print(f"\nEvery job run is an MLflow run; to browse them:\n$ {ui_command(config)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finelake demo", description=__doc__)
    add_flags(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
