"""SQL views for analysts over the published corpus, created by publish (`finelake tables` lists them).

Each is one SELECT over the tables of its lake; `{gold}` and `{silver}` stand for the schemas'
names in the environment (prefix and catalog included).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.turn_ratings import AXES


@dataclass(frozen=True)
class View:
    layer: str
    name: str
    description: str
    select: str

    def sql(self, schema_name) -> str:
        """`schema_name(layer)`: the environment's schema name of a layer."""
        return self.select.format(gold=schema_name("gold"), silver=schema_name("silver"))


_AXIS_ROWS = ", ".join(f"'{axis}', {axis}" for axis in AXES)

VIEWS: tuple[View, ...] = (
    View("gold", "curated_by_source", "gold.curated per source and category: samples, turns, images, turns with reasoning",
         "SELECT source, category, count(*) AS samples, sum(size(turns)) AS turns, sum(size(image_ids)) AS images, "
         "sum(size(filter(turns, t -> t.reasoning_teacher IS NOT NULL))) AS turns_with_reasoning "
         "FROM {gold}.curated GROUP BY source, category"),
    View("gold", "curation_by_rule", "What publish left out, per source, rule and scope (sample or turn)",
         "SELECT source, rule, scope, count(*) AS decisions, count(DISTINCT sample_id) AS samples, "
         "first(evidence) AS example FROM {gold}.curation_decisions GROUP BY source, rule, scope"),
    View("gold", "contamination_by_benchmark",
         "Per benchmark and kind: flagged samples, benchmark items hit, and the share of silver.samples flagged",
         "SELECT c.benchmark, c.kind, count(DISTINCT c.sample_id) AS samples, count(DISTINCT c.item_id) AS items, "
         "round(count(DISTINCT c.sample_id) / (SELECT count(*) FROM {silver}.samples), 6) AS share_of_samples "
         "FROM {gold}.contamination c GROUP BY c.benchmark, c.kind"),
    View("gold", "quality_by_source", "Rating distributions: turns per source, axis and 1-5 score (parsed ratings)",
         f"SELECT source, axis, score, count(*) AS turns FROM (SELECT source, stack({len(AXES)}, {_AXIS_ROWS}) AS (axis, score) "
         "FROM {gold}.turn_ratings WHERE status = 'ok') GROUP BY source, axis, score"),
)
