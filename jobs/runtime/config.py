"""Configuration: conf/base.yaml, an environment overlay, source files and --set overrides.

Everything is validated on load by pydantic models that forbid unknown keys; an error names the
file (or `--set`) that supplied the offending key, so a typo in an overlay is found at once.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.turn_ratings import AXES
from schemas.verdicts import JUDGE_AXES
from udfs.actions import CONVERTERS
from udfs.generation import GenerationSettings
from udfs.mapping import TemplateError, compile_template
from udfs.prompts import PromptSpec, reasoning_problem, scores_problem

ENVIRONMENTS = ("local", "databricks", "dataproc")
SOURCE_FORMATS = ("hf_parquet", "llava_json", "webdataset", "cauldron_parquet")
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who edits the YAML."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def absolute_location(location: str) -> str:
    """Local paths become absolute (executors and the metastore need them); URIs stay as given."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", location):
        return location
    return os.path.abspath(os.path.expanduser(location))


# ---------------------------------------------------------------- sources


class ImageSpec(StrictModel):
    """Where a record's images come from: a field of the record, or a path template."""

    column: str | None = None
    template: str | None = None
    count: int | None = Field(default=None, ge=1, description="render `template` for i in range(count)")
    root: str | None = Field(default=None, description="folder relative image paths resolve against")

    _absolute_root = field_validator("root")(lambda v: v and absolute_location(v))

    @model_validator(mode="after")
    def _one_origin(self) -> ImageSpec:
        if (self.column is None) == (self.template is None):
            raise ValueError("give exactly one of `column` or `template`")
        if self.count is not None and self.template is None:
            raise ValueError("`count` only applies to `template`")
        return self


class ConversationSpec(StrictModel):
    """A list of {role, content} messages (LLaVA `conversations`, HF `messages`)."""

    column: str = "conversations"
    role_field: str = "from"
    content_field: str = "value"
    user_roles: list[str] = ["human", "user"]
    assistant_roles: list[str] = ["gpt", "assistant"]


class ActionsSpec(StrictModel):
    """GUI agent trajectories: a record is an episode; each step's action is rewritten into the one
    action space (schemas/actions.py) by a converter of udfs/actions.py."""

    converter: str = Field(description=f"the action format: {', '.join(CONVERTERS)}")
    steps: str = Field(description="the record's field holding the episode's steps (a list)")
    action: str | None = Field(default=None, description="a step's field holding its action (default: the step itself)")
    instruction: str = Field(description="template over the record's fields: the task, in every user turn")
    per: Literal["step", "episode"] = Field(default="step", description=(
        "step: a sample per step (the instruction and the earlier actions, then the action); "
        "episode: a sample per episode, a turn per step"))
    screen_width: str | None = Field(default=None, description=(
        "template (the record's fields; a step's as `_action`): the screenshot's width in pixels, for pixel coordinates"))
    screen_height: str | None = Field(default=None, description="the same for the height")

    @field_validator("converter")
    @classmethod
    def _known_converter(cls, name: str) -> str:
        if name not in CONVERTERS:
            raise ValueError(f"unknown converter `{name}` (known: {', '.join(CONVERTERS)})")
        return name


class PairsSpec(StrictModel):
    """A list of {user, assistant} structs (The Cauldron / FineVision `texts`)."""

    column: str = "texts"
    user_field: str = "user"
    assistant_field: str = "assistant"


class TurnTemplate(StrictModel):
    """One user/assistant pair rendered from record fields with a Jinja template."""

    user: str
    assistant: str


class SourceConfig(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    format: Literal["hf_parquet", "llava_json", "webdataset", "cauldron_parquet"]
    path: str
    file_pattern: str | None = None
    records: Literal["auto", "jsonl", "json_array", "json_object"] = "auto"
    key: str | None = None
    subset: str = "default"
    images: ImageSpec | None = None
    conversation: ConversationSpec | None = None
    pairs: PairsSpec | None = None
    turns: list[TurnTemplate] | None = None
    actions: ActionsSpec | None = None
    image_text: str | None = Field(default=None, description=(
        "Jinja2 template: the images' content as text where the record carries it (a table's text, OCR); "
        "text-only teachers read it instead of the image"))
    text_only: bool = False
    license: str
    category: str = "general"
    language: str = "en"

    _absolute_path = field_validator("path")(absolute_location)

    @model_validator(mode="before")
    @classmethod
    def _format_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        fmt = data.get("format")
        given_text = [k for k in ("conversation", "pairs", "turns", "actions") if data.get(k) is not None]
        if fmt in ("hf_parquet", "cauldron_parquet"):
            data.setdefault("file_pattern", "*.parquet")
        if fmt == "cauldron_parquet":
            data.setdefault("images", {"column": "images"})
            if not given_text:
                data["pairs"] = {}
        if fmt == "llava_json":
            data.setdefault("file_pattern", "*.json*")
            if not data.get("text_only"):
                data.setdefault("images", {"column": "image"})
            if not given_text:
                data["conversation"] = {}
        if fmt == "webdataset":
            data.setdefault("file_pattern", "*.tar")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SourceConfig:
        mappings = [m for m in (self.conversation, self.pairs, self.turns, self.actions) if m]
        if len(mappings) != 1:
            raise ValueError("give exactly one of `conversation`, `pairs`, `turns` or `actions` (how records become turns)")
        if self.format == "webdataset" and self.images is not None:
            raise ValueError("webdataset images are the image members of each sample; remove `images`")
        if self.format == "hf_parquet" and self.images is None and not self.text_only:
            raise ValueError("hf_parquet needs `images: {column: ...}` (or `text_only: true`)")
        for label, text in self.templates():
            try:
                compile_template(text)
            except TemplateError as err:
                raise ValueError(f"template `{label}`: {err}") from None
        return self

    def templates(self) -> list[tuple[str, str]]:
        found = [("subset", self.subset)]
        if self.key:
            found.append(("key", self.key))
        if self.images and self.images.template:
            found.append(("images.template", self.images.template))
        for i, turn in enumerate(self.turns or []):
            found += [(f"turns[{i}].user", turn.user), (f"turns[{i}].assistant", turn.assistant)]
        if self.image_text:
            found.append(("image_text", self.image_text))
        if self.actions:
            found += [(f"actions.{name}", text) for name in ("instruction", "screen_width", "screen_height")
                      if (text := getattr(self.actions, name))]
        return found


# ---------------------------------------------------------------- job settings


class PathsConf(StrictModel):
    lake: str
    scratch: str = Field(description="staged batches and checkpoints of running jobs (durable storage, not executor disks)")
    demo_sources: str
    shared_data: str

    _absolute = field_validator("lake", "scratch", "demo_sources", "shared_data")(absolute_location)


class CatalogConf(StrictModel):
    name: str | None = Field(default=None, description="Unity Catalog / platform catalog; None = session catalog")
    schema_prefix: str = Field(default="", pattern=r"^[a-z0-9_]*$")


class SparkConf(StrictModel):
    managed: bool = Field(description="the platform owns the session (Databricks, Dataproc); finelake adds nothing")
    master: str | None = None
    conf: dict[str, str] = {}
    cluster_conf: dict[str, str] = Field(
        default={}, description="what a managed cluster must be created with; checked (not set) at start"
    )

    @field_validator("conf", "cluster_conf", mode="before")
    @classmethod
    def _flat_strings(cls, value: Any) -> Any:
        """Spark keys contain dots, so `--set spark.conf.spark.a.b=1` arrives nested; flatten it back."""
        if not isinstance(value, dict):
            return value
        flat: dict[str, Any] = {}

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, dict):
                for key, inner in node.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), inner)
            else:
                flat[prefix] = str(node).lower() if isinstance(node, bool) else str(node)

        walk("", value)
        return flat


class IngestConf(StrictModel):
    sources: list[str] = Field(min_length=1, description="source names or fnmatch patterns from conf/sources")
    fetch_partitions: int = Field(default=0, ge=0, description="partitions for reading folder images; 0 = shuffle partitions")


class ImagePolicyConf(StrictModel):
    max_pixels: int = Field(default=50_000_000, gt=0, description="decompression-bomb cap on width*height")
    max_side: int = Field(default=1536, gt=0)
    min_side: int = Field(default=32, gt=0)
    max_aspect_ratio: float = Field(default=10.0, ge=1.0)
    format: Literal["JPEG", "PNG", "WEBP"] = "JPEG"
    quality: int = Field(default=95, ge=1, le=100)


class TextPolicyConf(StrictModel):
    max_chars: int = Field(default=32768, gt=0)
    repeat_min_count: int = Field(default=4, ge=2)
    repeat_min_fraction: float = Field(default=0.5, gt=0, le=1)
    discouraging_phrases: list[str] = []


class NormalizeConf(StrictModel):
    image: ImagePolicyConf = ImagePolicyConf()
    text: TextPolicyConf = TextPolicyConf()
    image_partitions: int = Field(default=0, ge=0, description="tasks for decoding images; 0 = 4 x default parallelism")


class EmbedConf(StrictModel):
    backend: Literal["onnx", "torchscript"] = "onnx"
    model: str = Field(default="sscd", description="onnx: sscd | sscd_distilled; torchscript: a label")
    torchscript_path: str | None = Field(default=None, description="the SSCD TorchScript file (backend torchscript)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    fp16: bool = True
    batch_size: int = Field(default=32, gt=0)
    threads: int = Field(default=1, gt=0, description="intra-op threads per Python worker")
    image_size: int = Field(default=288, gt=0)
    trim_borders: bool = Field(default=False, description="uniform borders removed before embedding (part of the model id)")
    framed: bool = Field(default=True, description=(
        "also embed the picture shown inside an image (framed in a viewer or a screenshot, or turned on a fill): "
        "framed and turned copies meet their original"))
    partitions: int = Field(default=0, ge=0, description="embedding tasks; 0 = 4 x default parallelism")


class ImageMatchConf(StrictModel):
    """How two images are matched: the search thresholds and the pixel check (dedup and decontaminate)."""

    phash_radius: int = Field(default=6, ge=0, le=20, description="pHash Hamming distance of a candidate pair")
    sscd_tau: float = Field(default=1.0, gt=0, le=1, description=(
        "SSCD cosine at which a pair matches without the pixel check (1.0: every pair is checked)"))
    sscd_band_low: float = Field(default=0.4, gt=0, le=1, description=(
        "SSCD pairs in [sscd_band_low, sscd_tau) match only when the pixel check agrees; >= sscd_tau: no band"))
    phash_verify: bool = Field(default=True, description="pHash pairs match only when the pixel check agrees")
    phash_turns: bool = Field(default=True, description=(
        "also search with the pHashes of the new (dedup) or benchmark (decontaminate) image rotated by "
        "90/180/270 degrees and mirrored: turned and mirrored copies become candidates"))
    verify_min: float = Field(default=0.9, gt=0, le=1, description=(
        "pixel check: share of textured pixels that agree outside overlays (a pair with other differences scores 0)"))
    verify_neighbours: int = Field(default=8, ge=1, description=(
        "pixel check: only the pairs among an image's this many most similar candidates (per signal)"))
    partitions: int = Field(default=0, ge=0, description="tasks for the image search; 0 = 4 x default parallelism")

    @property
    def sscd_low(self) -> float:
        """The lowest SSCD cosine searched for."""
        return min(self.sscd_band_low, self.sscd_tau)


class DedupConf(ImageMatchConf):
    rule: Literal["image", "text", "image_and_text"] = Field(
        default="image_and_text", description="what makes two samples duplicates (image_and_text: HoneyPipe's rule)"
    )
    trim_borders: bool = Field(default=True, description="also the pHash of the image without uniform borders")
    sscd_buckets: int = Field(default=0, ge=0, description="k-means buckets for SSCD search; 0 = sqrt(vectors)")
    sscd_probes: int = Field(default=8, ge=1, description="buckets each vector joins (recall vs work)")
    text_shingle_words: int = Field(default=3, ge=1)
    text_jaccard: float = Field(default=0.8, gt=0, le=1, description="MinHash Jaccard similarity for near-duplicate texts")
    minhash_tables: int = Field(default=8, ge=1)
    source_priority: list[str] = Field(default=[], description="keep policy: earlier sources win a group")


class DecontaminateConf(ImageMatchConf):
    benchmarks: list[str] = Field(default=["demo_*"], description="benchmark names or fnmatch patterns from conf/benchmarks.yaml")
    text_ngram: int = Field(default=13, ge=1, description="word n-grams shared with a benchmark question")
    text_min_overlap: float = Field(
        default=0.5, gt=0, le=1, description="share of a benchmark question's n-grams a sample must contain"
    )
    text_min_words: int = Field(default=8, ge=1, description="questions with fewer words are too generic to check")

    def check_digest(self, model_id: str) -> str:
        """What a sample's check depends on: the thresholds and the embedding model (not which
        benchmarks are selected, nor how many tasks search)."""
        return _digest({**self.model_dump(mode="json", exclude={"benchmarks", "partitions"}), "model_id": model_id})


class TeacherConf(StrictModel):
    models: dict[str, GenerationSettings] = Field(description="teacher models by role (short, long, judge, small, ...)")
    sources: list[str] = Field(default=["*"], description="sources (names or fnmatch patterns) the teacher stages work on")
    commit_rows: int = Field(default=2000, gt=0, description="rows per commit at most: a killed run loses at most one commit")
    commit_seconds: float = Field(default=600, gt=0, description=(
        "commits are sized from the measured rate to take about this long: a killed run loses at most ~this much work"))
    max_commits: int = Field(default=0, ge=0, description="commits per run (a budget); 0 = all pending work")
    max_input_chars: int = Field(default=4000, gt=0, description="cap on each text put into a prompt")
    partitions: int = Field(default=0, ge=0, description="generation tasks per commit; 0 = the default parallelism")


class GeneratingStageConf(StrictModel):
    model: str = Field(description="a role in teacher.models")
    prompt: str = Field(description="a prompt in conf/prompts")


class RateConf(GeneratingStageConf):
    retries: int = Field(default=1, ge=0, description="repair requests after an unparseable rating")


class VerifyConf(StrictModel):
    judge: str = Field(default="judge", description="the judge's role in teacher.models (free-form answers)")
    prompt: str = "fidelity"
    judge_pass: int = Field(default=4, ge=1, le=5, description="judge scores at or above this are correct")
    retries: int = Field(default=1, ge=0, description="repair requests after an unparseable judgement")


class DifficultyConf(GeneratingStageConf):
    samples: int = Field(default=4, ge=1, description="k answers per question from the small model")
    drop_pass_rate_at_least: float = Field(default=1.0, ge=0, le=1, description="too easy: in no subset")
    subsets: dict[str, float] = Field(default={}, description="subset name -> hardest fraction of the rest")


class DuplicatesPolicy(StrictModel):
    drop_copies: bool = Field(default=True, description="leave out the samples whose near-duplicate group keeps another")


class ContaminationPolicy(StrictModel):
    benchmarks: list[str] = Field(default=["*"], description="flags of these benchmarks (names or fnmatch patterns) leave a sample out")
    kinds: list[Literal["image", "text"]] = Field(default=["image", "text"], description="which kinds of flag count")


class RatingsPolicy(StrictModel):
    minimum: dict[str, int] = Field(default={}, description="axis -> the lowest 1-5 score a kept turn may have")
    unrated: Literal["keep", "drop"] = Field(default="keep", description="a turn without a parsed rating")

    @field_validator("minimum")
    @classmethod
    def _known_axes(cls, minimum: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(minimum) - set(AXES))
        if unknown:
            raise ValueError(f"unknown rating axis {', '.join(unknown)} (axes: {', '.join(AXES)})")
        if any(not 1 <= score <= 5 for score in minimum.values()):
            raise ValueError("minimum scores are on the 1-5 scale")
        return minimum


class ReasoningPolicy(StrictModel):
    use_verified: bool = Field(default=True, description=(
        "a turn whose chosen teacher verified gets `<think>reasoning</think>` and the teacher's answer"))
    failed_both: Literal["keep", "drop_turn", "drop_sample"] = Field(
        default="keep", description="a turn neither teacher answered right: keep the dataset's answer, or leave it out")


class PolicyConf(StrictModel):
    """publish.policy: the rules that turn the curation tables into gold.curated (each a key here)."""

    duplicates: DuplicatesPolicy = DuplicatesPolicy()
    contamination: ContaminationPolicy = ContaminationPolicy()
    ratings: RatingsPolicy = RatingsPolicy()
    reasoning: ReasoningPolicy = ReasoningPolicy()

    def digest(self) -> str:
        return _digest(self.model_dump(mode="json"))


class ExportShards(StrictModel):
    hf: int = Field(default=500, gt=0, description="MB of images and text per parquet shard")
    webdataset: int = Field(default=1000, gt=0, description="MB per tar shard")
    llava: int = Field(default=500, gt=0, description="MB of images per JSON shard")


class PublishConf(StrictModel):
    sources: list[str] = Field(default=["*"], description="sources (names or fnmatch patterns) gold.curated holds")
    policy: PolicyConf = PolicyConf()
    shard_mb: ExportShards = ExportShards()
    name: str = Field(default="finelake-curated", description="the dataset's name on its card")


class MlflowConf(StrictModel):
    tracking_uri: str = Field(description="sqlite:///... locally, `databricks`, or an MLflow server URL")
    artifact_location: str | None = Field(default=None, description="for a new experiment; None = the server's default")
    experiment: str = "finelake"


class Config(StrictModel):
    env: Literal["local", "databricks", "dataproc"]
    paths: PathsConf
    catalog: CatalogConf = CatalogConf()
    spark: SparkConf
    mlflow: MlflowConf
    ingest: IngestConf
    normalize: NormalizeConf = NormalizeConf()
    embed: EmbedConf = EmbedConf()
    dedup: DedupConf = DedupConf()
    decontaminate: DecontaminateConf = DecontaminateConf()
    teacher: TeacherConf
    rate: RateConf
    caption: GeneratingStageConf
    distill: GeneratingStageConf
    verify: VerifyConf = VerifyConf()
    route: GeneratingStageConf
    difficulty: DifficultyConf
    publish: PublishConf = PublishConf()
    prompts: dict[str, PromptSpec] = {}
    sources: dict[str, SourceConfig] = {}
    benchmarks: dict[str, SourceConfig] = {}

    def selected_sources(self) -> list[SourceConfig]:
        chosen: list[SourceConfig] = []
        for pattern in self.ingest.sources:
            hits = [s for name, s in sorted(self.sources.items()) if fnmatch.fnmatchcase(name, pattern)]
            if not hits:
                raise ConfigError(
                    f"ingest.sources: `{pattern}` matches no file in conf/sources "
                    f"(known: {', '.join(sorted(self.sources)) or 'none'})"
                )
            chosen += [s for s in hits if s not in chosen]
        return chosen

    def selected_benchmarks(self) -> list[SourceConfig]:
        return [b for name, b in sorted(self.benchmarks.items())
                if any(fnmatch.fnmatchcase(name, p) for p in self.decontaminate.benchmarks)]

    @model_validator(mode="after")
    def _teacher_references(self) -> Config:
        stages = {"rate": self.rate, "caption": self.caption, "distill": self.distill, "route": self.route,
                  "difficulty": self.difficulty}
        for stage, conf in stages.items():
            if conf.model not in self.teacher.models:
                raise ValueError(f"{stage}.model: `{conf.model}` is not a role in teacher.models "
                                 f"({', '.join(sorted(self.teacher.models))})")
            if conf.prompt not in self.prompts:
                raise ValueError(f"{stage}.prompt: `{conf.prompt}` is not a file in conf/prompts "
                                 f"({', '.join(sorted(self.prompts))})")
        if self.verify.judge not in self.teacher.models:
            raise ValueError(f"verify.judge: `{self.verify.judge}` is not a role in teacher.models")
        if self.verify.prompt not in self.prompts:
            raise ValueError(f"verify.prompt: `{self.verify.prompt}` is not a file in conf/prompts")
        return self

    @model_validator(mode="after")
    def _policy_benchmarks(self) -> Config:
        for pattern in self.publish.policy.contamination.benchmarks:
            if self.benchmarks and not any(fnmatch.fnmatchcase(name, pattern) for name in self.benchmarks):
                raise ValueError(f"publish.policy.contamination.benchmarks: `{pattern}` matches no benchmark in "
                                 f"conf/benchmarks.yaml ({', '.join(sorted(self.benchmarks))})")
        return self

    def teacher_model(self, role: str) -> GenerationSettings:
        return self.teacher.models[role]

    def digest(self) -> str:
        return _digest(self.model_dump(mode="json"))


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- loading


def default_conf_dir() -> Path:
    env_dir = os.environ.get("FINELAKE_CONF")
    return Path(env_dir) if env_dir else Path(str(resources.files("conf")))


def default_user_conf_dir() -> Path:
    """Where a user's own sources and benchmarks live: $FINELAKE_USER_CONF, else ~/.config/finelake."""
    return Path(os.environ.get("FINELAKE_USER_CONF") or "~/.config/finelake").expanduser()


def load_config(env: str = "local", overrides: list[str] = (), conf_dir: Path | None = None,
                check_sources: bool = True, user_dir: Path | None = None) -> Config:
    """base.yaml <- <env>.yaml <- --set overrides, then sources; validated, with origins in errors.
    Sources and benchmarks come from the config folder, then from the user folder (`user_dir`,
    default default_user_conf_dir(); its `sources/*.yaml` and `benchmarks.yaml` add to the packaged
    ones, and a same-named file replaces one). `check_sources`: every ingest.sources pattern must
    match a source."""
    if env not in ENVIRONMENTS:
        raise ConfigError(f"--env: unknown environment `{env}` (choose from {', '.join(ENVIRONMENTS)})")
    conf_dir = Path(conf_dir) if conf_dir else default_conf_dir()
    user_dir = Path(user_dir).expanduser() if user_dir else default_user_conf_dir()
    merged: dict[str, Any] = {}
    origins: dict[tuple, str] = {}
    for layer in ("base.yaml", f"{env}.yaml"):
        path = conf_dir / layer
        _merge(merged, _read_yaml(path), origins, str(path))
    for item in overrides:
        key, value = _parse_override(item)
        _merge(merged, _nest(key, value), origins, f"--set {item}")
    merged["env"] = env
    # Paths first, made absolute, so every `${paths.x}` elsewhere sees the absolute form.
    if isinstance(merged.get("paths"), dict):
        _resolve_references(merged["paths"], merged, origins, ("paths",))
        merged["paths"] = {k: absolute_location(v) if isinstance(v, str) else v for k, v in merged["paths"].items()}
    _resolve_references(merged, merged, origins)

    source_dicts, source_files = {}, {}
    for path in [*sorted((conf_dir / "sources").glob("*.yaml")), *sorted((user_dir / "sources").glob("*.yaml"))]:
        raw = _read_yaml(path)
        _resolve_references(raw, merged, {(): str(path)})
        raw.setdefault("name", path.stem)
        if raw["name"] != path.stem:
            raise ConfigError(f"{path}: name: `{raw['name']}` must equal the file name `{path.stem}`")
        source_dicts[path.stem] = raw
        source_files[path.stem] = str(path)
    for name, raw in source_dicts.items():
        try:
            SourceConfig.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(_describe(err, {(): source_files[name]})) from None
    merged["sources"] = source_dicts
    merged["benchmarks"] = {**_benchmark_specs(conf_dir / "benchmarks.yaml", merged, source_dicts),
                            **_benchmark_specs(user_dir / "benchmarks.yaml", merged, source_dicts)}
    merged["prompts"] = _prompt_specs(conf_dir / "prompts")
    try:
        config = Config.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_describe(err, origins)) from None
    if check_sources:
        config.selected_sources()
    _check_answer_forms(config, conf_dir / "prompts")
    return config


def _check_answer_forms(config: Config, folder: Path) -> None:
    """Every prompt's grammar and schema compile; what each stage's prompt lets a constrained model
    say, the stage's parser reads; a budget leaves thinking some of the stage model's token cap.
    Checked on answers walked from the grammar (or schema), before any model loads. xgrammar
    takes seconds to import, so a passed check is remembered (keyed by the prompts, the stages'
    choices and the parsers' code) and a command does not pay it again."""
    import udfs.prompts

    stages = {s: getattr(config, s).model_dump() for s in ("rate", "distill", "route", "difficulty", "verify")}
    caps = {role: settings.max_new_tokens for role, settings in config.teacher.models.items()}
    key = _digest([{n: p.model_dump(mode="json") for n, p in config.prompts.items()}, stages, caps,
                   hashlib.sha256(Path(udfs.prompts.__file__).read_bytes()).hexdigest()])
    marker = Path("~/.cache/finelake/checked-prompts").expanduser() / key
    if marker.exists():
        return
    for name, prompt in sorted(config.prompts.items()):
        try:
            prompt.compile_forms()
        except ValueError as err:
            raise ConfigError(f"{folder / f'{name}.yaml'}: {err}") from None

    readers = {
        "rate": (config.rate.prompt, config.rate.model, scores_problem(AXES)),
        "verify": (config.verify.prompt, config.verify.judge, scores_problem(JUDGE_AXES)),
        **{stage: (getattr(config, stage).prompt, getattr(config, stage).model, reasoning_problem)
           for stage in ("distill", "route", "difficulty")},
    }
    for stage, (name, role, problem) in readers.items():
        prompt, path = config.prompts[name], folder / f"{name}.yaml"
        field = "grammar" if prompt.grammar is not None else "json_schema"
        for example in prompt.examples():
            if (reason := problem(example)) is not None:
                raise ConfigError(f"{path}: {field}: allows {example[:120]!r}, which the {stage} stage cannot parse "
                                  f"({reason})")
        if prompt.budget is None:
            continue
        cap = config.teacher_model(role).max_new_tokens
        if prompt.budget.answer_tokens >= cap:
            raise ConfigError(f"{path}: budget.answer_tokens: {prompt.budget.answer_tokens} leaves no thinking within "
                              f"{stage}'s teacher.models.{role}.max_new_tokens ({cap})")
        cuts = [text[: len(text) // 2] for text in prompt.examples()]
        for cut, rest in zip([c for c in cuts if problem(c) is not None], prompt.examples(continuation=True)):
            continued = prompt.closed(cut) + rest
            if (reason := problem(continued)) is not None:
                raise ConfigError(f"{path}: budget: a cut answer closed and continued reads {continued[:120]!r}, "
                                  f"which the {stage} stage cannot parse ({reason})")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _benchmark_specs(path: Path, merged: dict, sources: dict[str, dict]) -> dict[str, dict]:
    """conf/benchmarks.yaml: name -> a source spec, given inline or as `source: <a conf/sources name>`."""
    if not path.is_file():
        return {}
    entries = _read_yaml(path).get("benchmarks") or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: benchmarks: must map benchmark names to source specs")
    specs = {}
    for name, entry in entries.items():
        where = f"{path}: benchmarks.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping (a source spec, or `source: <name>`)")
        if set(entry) == {"source"}:
            if entry["source"] not in sources:
                raise ConfigError(f"{where}.source: `{entry['source']}` is not a file in conf/sources "
                                  f"(known: {', '.join(sorted(sources))})")
            spec = {**copy.deepcopy(sources[entry["source"]]), "name": name}
        else:
            spec = _resolve_references({**copy.deepcopy(entry), "name": name}, merged, {(): str(path)})
        try:
            SourceConfig.model_validate(spec)
        except ValidationError as err:
            raise ConfigError(_describe(err, {(): where})) from None
        specs[name] = spec
    return specs


def _prompt_specs(folder: Path) -> dict[str, dict]:
    """conf/prompts/<name>.yaml, each a versioned prompt (udfs.prompts.PromptSpec)."""
    specs = {}
    for path in sorted(folder.glob("*.yaml")):
        raw = _read_yaml(path)
        if raw.get("name") != path.stem:
            raise ConfigError(f"{path}: name: `{raw.get('name')}` must equal the file name `{path.stem}`")
        try:
            PromptSpec.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(_describe(err, {(): str(path)})) from None
        specs[path.stem] = raw
    return specs


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", key):
        raise ConfigError(f"--set {item}: expected key.path=value")
    try:
        return key, yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item}: value is not valid YAML: {err}") from None


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def _merge(base: dict, overlay: dict, origins: dict, origin: str, prefix: tuple = ()) -> None:
    for key, value in overlay.items():
        path = prefix + (key,)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            origins.setdefault(path, origin)
            _merge(base[key], value, origins, origin, path)
        else:
            base[key] = copy.deepcopy(value)
            for known in [p for p in origins if p[: len(path)] == path]:
                del origins[known]
            origins[path] = origin


def _resolve_references(node: Any, root: dict, origins: dict, prefix: tuple = ()) -> Any:
    """Replace ${dotted.key} in strings with values of the merged config, then absolutise paths."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        path = prefix + (key,)
        if isinstance(value, str):
            node[key] = _substitute(value, root, origins, path)
        else:
            _resolve_references(value, root, origins, path)
    return node


def _substitute(text: str, root: dict, origins: dict, path: tuple, depth: int = 0) -> str:
    def lookup(match: re.Match) -> str:
        value: Any = root
        for part in match.group(1).split("."):
            if not isinstance(value, dict) or part not in value:
                raise ConfigError(f"{_origin(origins, path)}: {_dotted(path)}: `${{{match.group(1)}}}` names no key")
            value = value[part]
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{_origin(origins, path)}: {_dotted(path)}: `${{{match.group(1)}}}` is not a scalar")
        return str(value)

    if depth > 8:
        raise ConfigError(f"{_origin(origins, path)}: {_dotted(path)}: references form a cycle")
    resolved = _REFERENCE.sub(lookup, text)
    return _substitute(resolved, root, origins, path, depth + 1) if _REFERENCE.search(resolved) else resolved


def _describe(err: ValidationError, origins: dict) -> str:
    lines = []
    for problem in err.errors():
        loc = tuple(problem["loc"])
        message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"]
        if problem["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{_origin(origins, loc)}: {_dotted(loc) or '(top level)'}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _origin(origins: dict, loc: tuple) -> str:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in origins:
            return origins[loc[:cut]]
    return next(iter(origins.values()), "configuration")


def _dotted(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
