"""The stages of finelake in pipeline order: each one's name, job module and the tables it writes.

The CLI, the demo and the gate read this one list. Every table has one writing stage, or one
per partition (`owns`): a stage commits only to what it owns here, so stages run side by side
without conflicting commits (two writers of one table write disjoint partitions).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from schemas import (benchmark_images, benchmark_items, bronze_records, captions, contamination, contamination_checks,
                     curated, curation_decisions, difficulty, duplicate_components, duplicate_groups, duplicate_pairs, image_embeddings,
                     image_hashes, ingested_files, reasoning, routing, silver_images, silver_rejects, silver_samples,
                     turn_ratings, verdicts)
from schemas.contract import TableContract
from schemas.reasoning import Teacher

CURATION = "curation"  # sources -> clean, deduplicated, decontaminated samples
TEACHING = "teaching"  # the teacher stages over the eligible samples
PUBLISHING = "publishing"  # the policy over everything above: the corpus people train on


@dataclass(frozen=True)
class Write:
    contract: TableContract
    owns: tuple[tuple[str, str], ...] = ()  # (partition column, value): the part of a shared table this stage writes

    @property
    def owned(self) -> dict[str, str]:
        return dict(self.owns)


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    group: str
    writes: tuple[Write, ...]

    def main(self, argv: list[str]) -> int:
        return importlib.import_module(self.module).main(argv)

    def write_of(self, contract: TableContract) -> Write | None:
        return next((w for w in self.writes if w.contract is contract), None)


def _rejects(stage: str) -> Write:
    return Write(silver_rejects.CONTRACT, (("stage", stage),))


def _by_teacher(contract: TableContract, teacher: Teacher) -> Write:
    return Write(contract, (("teacher", teacher),))


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "jobs.ingest", CURATION,
          (_rejects("ingest"), Write(bronze_records.CONTRACT), Write(ingested_files.CONTRACT))),
    Stage("normalize", "jobs.normalize", CURATION,
          (_rejects("normalize"), Write(silver_images.CONTRACT), Write(silver_samples.CONTRACT))),
    Stage("embed", "jobs.embed", CURATION, (_rejects("embed"), Write(image_embeddings.CONTRACT))),
    Stage("dedup", "jobs.dedup", CURATION,
          (_rejects("dedup"), Write(duplicate_pairs.CONTRACT), Write(image_hashes.CONTRACT),
           Write(duplicate_components.CONTRACT), Write(duplicate_groups.CONTRACT))),
    Stage("decontaminate", "jobs.decontaminate", CURATION,
          (_rejects("decontaminate"), Write(benchmark_images.CONTRACT), Write(benchmark_items.CONTRACT),
           Write(contamination.CONTRACT), Write(contamination_checks.CONTRACT))),
    Stage("caption", "jobs.caption", TEACHING, (Write(captions.CONTRACT),)),
    Stage("rate", "jobs.rate", TEACHING, (Write(turn_ratings.CONTRACT),)),
    Stage("distill", "jobs.distill", TEACHING, (_by_teacher(reasoning.CONTRACT, Teacher.SHORT),)),
    Stage("verify", "jobs.verify", TEACHING, (_by_teacher(verdicts.CONTRACT, Teacher.SHORT),)),
    Stage("route", "jobs.route", TEACHING,
          (_by_teacher(reasoning.CONTRACT, Teacher.LONG), _by_teacher(verdicts.CONTRACT, Teacher.LONG),
           Write(routing.CONTRACT))),
    Stage("difficulty", "jobs.difficulty", TEACHING, (Write(difficulty.CONTRACT),)),
    Stage("publish", "jobs.publish", PUBLISHING, (Write(curated.CONTRACT), Write(curation_decisions.CONTRACT))),
)

BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def stages(group: str | None = None) -> tuple[Stage, ...]:
    return tuple(s for s in STAGES if group is None or s.group == group)
