"""publish.policy over the curation tables: which samples and turns gold.curated keeps, and why the
rest is left out (gold.curation_decisions). Every decision is a column expression or a join: the
policy runs on the executors, at any size."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.runtime.config import PolicyConf
from schemas import curated
from schemas.curation_decisions import WHOLE_SAMPLE, Rule, Scope
from schemas.generated import TURN_KEYS
from schemas.routing import Outcome
from schemas.turn_ratings import AXES
from schemas.turn_ratings import Status as RatingStatus
from schemas.difficulty import Status as DifficultyStatus
from schemas.reasoning import Status as ReasoningStatus

EVIDENCE_ITEMS = 5  # benchmark items quoted in a contamination decision's evidence
RULE_ORDER = list(Rule)

# A curated row changes when its content or the policy does; a decision when its evidence or the policy does.
CURATED_CHANGED = ("t.policy_hash <> s.policy_hash OR NOT (t.turns <=> s.turns) OR NOT (t.image_ids <=> s.image_ids) "
                   "OR NOT (t.subsets <=> s.subsets)")
DECISION_CHANGED = "t.policy_hash <> s.policy_hash OR t.evidence <> s.evidence"


@dataclass(frozen=True)
class CurationInputs:
    """The tables the policy reads, each at the version the run read first."""

    samples: DataFrame  # silver.samples of the published sources
    groups: DataFrame  # gold.duplicate_groups
    contamination: DataFrame
    ratings: DataFrame  # gold.turn_ratings
    routing: DataFrame
    reasoning: DataFrame
    difficulty: DataFrame


@dataclass(frozen=True)
class Curation:
    curated: DataFrame  # gold.curated rows
    decisions: DataFrame  # gold.curation_decisions rows
    outcomes: DataFrame  # (source, reason) per sample: null = curated, else its first sample-level rule


def pattern_match(column: str, patterns: list[str]) -> Column:
    """`column` matches one of the fnmatch `patterns` (as in the config's source and benchmark lists)."""
    matched = F.lit(False)
    for pattern in patterns:
        matched = matched | F.col(column).rlike("^" + fnmatch.translate(pattern))  # rlike finds; fnmatch matches whole
    return matched


def curate(inputs: CurationInputs, policy: PolicyConf, run_id: str, versions: dict[str, int]) -> Curation:
    policy_hash = policy.digest()
    turns = inputs.samples.select("sample_id", "source", F.posexplode("turns").alias("turn_index", "turn")).select(
        "sample_id", "source", F.col("turn_index").cast("int").alias("turn_index"), "turn.user", "turn.assistant")
    rated = turns.join(_latest_ok(inputs.ratings, RatingStatus.OK, *AXES), list(TURN_KEYS), "left")
    turn_rules = _turn_rules(rated, inputs.routing, policy)
    sample_rules = _sample_rules(inputs, policy)

    kept_turns = (rated.join(turn_rules.select(*TURN_KEYS).distinct(), list(TURN_KEYS), "left_anti")
                  .transform(_with_reasoning, inputs.routing, inputs.reasoning, policy)
                  .join(_latest_ok(inputs.difficulty, DifficultyStatus.OK, "subsets"), list(TURN_KEYS), "left"))
    per_sample = kept_turns.groupBy("sample_id").agg(
        F.array_sort(F.collect_list(F.struct(*[F.col(f.name) for f in curated.TURN.fields]))).alias("turns"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list(F.coalesce("subsets", F.array()))))).alias("subsets"))
    emptied = (inputs.samples.select("sample_id", "source").join(per_sample, "sample_id", "left_anti")
               .select("sample_id", "source", F.lit(Rule.NO_TURNS_LEFT).alias("rule"),
                       F.lit("every turn was left out (see this sample's turn decisions)").alias("evidence")))
    sample_rules = sample_rules.unionByName(emptied.withColumn("turn_index", F.lit(WHOLE_SAMPLE)))

    stamp = [F.lit(policy_hash).alias("policy_hash")]
    decided = (sample_rules.withColumn("scope", F.lit(Scope.SAMPLE)).unionByName(turn_rules.withColumn("scope", F.lit(Scope.TURN)))
               .select("sample_id", "source", "turn_index", "scope", "rule", "evidence", *stamp,
                       F.current_timestamp().alias("decided_at"), F.lit(run_id).alias("run_id")))
    inputs_map = F.create_map(*[F.lit(x) for name, version in sorted(versions.items()) for x in (name, version)])
    kept = inputs.samples.drop("turns").join(first_rules(decided), "sample_id", "left_anti").join(per_sample, "sample_id")
    rows = kept.select(
        *curated.SAMPLE_COLUMNS, "turns", "subsets",
        *stamp, inputs_map.cast(curated.SCHEMA["inputs"].dataType).alias("inputs"),
        F.current_timestamp().alias("published_at"), F.lit(run_id).alias("run_id"))
    return Curation(rows, decided, outcomes_of(inputs.samples, decided))


def first_rules(decisions: DataFrame) -> DataFrame:
    """(sample_id, reason): every sample left out, under the first of its rules in RULE_ORDER."""
    rank = F.array_position(F.array(*[F.lit(r.value) for r in RULE_ORDER]), F.col("rule"))
    return (decisions.where(F.col("scope") == Scope.SAMPLE).groupBy("sample_id")
            .agg(F.min_by("rule", rank).alias("reason")))


def outcomes_of(samples: DataFrame, decisions: DataFrame) -> DataFrame:
    """(source, reason) per sample: null when curated, else its first rule (what the stage report counts)."""
    return samples.select("sample_id", "source").join(first_rules(decisions), "sample_id", "left").select("source", "reason")


def _latest_ok(table: DataFrame, ok: str, *columns: str) -> DataFrame:
    """Per turn, the newest row with status `ok` (a turn may be rated again under a new prompt version);
    model and prompt version break a tie, so the choice never depends on the order rows arrive in."""
    newest = Window.partitionBy(*TURN_KEYS).orderBy(F.col("generated_at").desc(), F.col("prompt_version").desc(),
                                                    F.col("model"))
    return (table.where(F.col("status") == ok).withColumn("_n", F.row_number().over(newest)).where("_n = 1")
            .select(*TURN_KEYS, *columns))


def _turn_rules(rated: DataFrame, routing: DataFrame, policy: PolicyConf) -> DataFrame:
    """(sample_id, source, turn_index, rule, evidence) of every turn a rule leaves out."""
    rules = []
    minimum = policy.ratings.minimum
    if minimum:
        below = [F.when(F.col(a) < m, F.format_string(f"{a}=%d<{m}", F.col(a))) for a, m in sorted(minimum.items())]
        rules.append(rated.where(F.exists(F.array(*below), lambda b: b.isNotNull()))
                     .select(*TURN_KEYS, "source", F.lit(Rule.LOW_RATING).alias("rule"),
                             F.concat_ws(", ", *below).alias("evidence")))
    if policy.ratings.unrated == "drop":
        rules.append(rated.where(F.col(AXES[0]).isNull()).select(
            *TURN_KEYS, "source", F.lit(Rule.UNRATED).alias("rule"),
            F.lit("no parsed rating in gold.turn_ratings").alias("evidence")))
    if policy.reasoning.failed_both == "drop_turn":  # only turns of the published samples
        rules.append(_failed_both(routing).join(rated.select(*TURN_KEYS), list(TURN_KEYS), "left_semi")
                     .select(*TURN_KEYS, "source", F.lit(Rule.FAILED_BOTH).alias("rule"), "evidence"))
    empty = rated.limit(0).select(*TURN_KEYS, "source", F.lit("").alias("rule"), F.lit("").alias("evidence"))
    for rule in rules:
        empty = empty.unionByName(rule)
    return empty


def _failed_both(routing: DataFrame) -> DataFrame:
    return routing.where(F.col("outcome") == Outcome.FAILED_BOTH).select(
        *TURN_KEYS, "source", F.format_string("short teacher: %s, long teacher: %s", "short_verdict", "long_verdict")
        .alias("evidence"))


def _sample_rules(inputs: CurationInputs, policy: PolicyConf) -> DataFrame:
    """(sample_id, source, turn_index = -1, rule, evidence) of every sample a rule leaves out."""
    samples = inputs.samples.select("sample_id", "source")
    flagged = inputs.contamination.where(pattern_match("benchmark", policy.contamination.benchmarks)
                                         & F.col("kind").isin(*policy.contamination.kinds))
    contaminated = flagged.groupBy("sample_id").agg(F.concat_ws("; ", F.slice(F.array_sort(F.collect_list(F.format_string(
        "%s item %s (%s, similarity %.3f)", "benchmark", "item_id", "kind", "similarity"))), 1, EVIDENCE_ITEMS)).alias("evidence"))
    parts = [contaminated.withColumn("rule", F.lit(Rule.CONTAMINATED))]
    if policy.duplicates.drop_copies:
        parts.append(inputs.groups.where(~F.col("is_representative")).select(
            "sample_id", F.lit(Rule.DUPLICATE_COPY).alias("rule"),
            F.format_string("group %s of %d samples (%s) keeps %s", "group_id", "group_size", "rule", "representative")
            .alias("evidence")))
    if policy.reasoning.failed_both == "drop_sample":
        parts.append(_failed_both(inputs.routing).groupBy("sample_id").agg(
            F.lit(Rule.FAILED_BOTH).alias("rule"),
            F.concat_ws("; ", F.array_sort(F.collect_list(F.format_string("turn %d: %s", "turn_index", "evidence"))))
            .alias("evidence")))
    rules = parts[0].select("sample_id", "rule", "evidence")
    for part in parts[1:]:
        rules = rules.unionByName(part.select("sample_id", "rule", "evidence"))
    return samples.join(rules, "sample_id").withColumn("turn_index", F.lit(WHOLE_SAMPLE))


def _with_reasoning(turns: DataFrame, routing: DataFrame, reasoning: DataFrame, policy: PolicyConf) -> DataFrame:
    """The turns, the assistant answer replaced by the chosen teacher's `<think>...</think>` and answer when verified."""
    if not policy.reasoning.use_verified:
        return turns.withColumn("reasoning_teacher", F.lit(None).cast("string"))
    chosen = routing.where(F.col("chosen_teacher").isNotNull()).select(*TURN_KEYS, F.col("chosen_teacher").alias("teacher"))
    usable = (F.col("status") == ReasoningStatus.OK) & F.col("reasoning").isNotNull() & F.col("final_answer").isNotNull()
    thought = (reasoning.where(usable).join(chosen, [*TURN_KEYS, "teacher"])
               .select(*TURN_KEYS, F.col("teacher").alias("reasoning_teacher"),
                       F.concat(F.lit("<think>\n"), F.trim("reasoning"), F.lit("\n</think>\n\n"), F.trim("final_answer"))
                       .alias("with_reasoning")))
    return (turns.join(thought, list(TURN_KEYS), "left")
            .withColumn("assistant", F.coalesce("with_reasoning", "assistant")).drop("with_reasoning"))
