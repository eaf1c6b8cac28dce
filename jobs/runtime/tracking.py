"""One MLflow run per job run: params, metrics, the gate's validation results and plots.

Locally the tracking store is SQLite and the artifacts a folder, both inside the lake
(`mlflow ui --backend-store-uri sqlite:///<lake>/mlflow/mlflow.db`); on Databricks and Dataproc
the tracking URI comes from config. The client API is used with an explicit run id, so a job
that fails half-way still closes its own run, marked FAILED.
"""

from __future__ import annotations

import html
import importlib.metadata
import logging
import re
import subprocess
from pathlib import Path
from typing import Any

from jobs.runtime.config import Config
from udfs.readers import local_path

log = logging.getLogger("finelake")


def code_version() -> str:
    version = importlib.metadata.version("finelake")
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{version}+{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return version


def ui_command(config: Config) -> str:
    settings = config.mlflow
    artifacts = f" --default-artifact-root {settings.artifact_location}" if settings.artifact_location else ""
    return f"mlflow ui --backend-store-uri {settings.tracking_uri}{artifacts}"


_CLIENTS: dict[str, Any] = {}  # tracking URI -> client: one store connection per process, not per job


def client_for(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    if tracking_uri not in _CLIENTS:
        _CLIENTS[tracking_uri] = MlflowClient(tracking_uri=tracking_uri)
    return _CLIENTS[tracking_uri]


class Tracker:
    def __init__(self, config: Config, stage: str, run_id: str):
        self.config = config
        self.stage = stage
        self.run_id = run_id
        self.mlflow_run_id: str | None = None
        self._client = None

    def start(self) -> None:
        from mlflow.entities import Param

        settings = self.config.mlflow
        if settings.tracking_uri.startswith("sqlite:///"):
            Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        artifacts = local_path(settings.artifact_location) if settings.artifact_location else None
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
        self._client = client_for(settings.tracking_uri)
        experiment = self._client.get_experiment_by_name(settings.experiment)
        experiment_id = (
            experiment.experiment_id if experiment else
            self._client.create_experiment(settings.experiment, artifact_location=settings.artifact_location)
        )
        run = self._client.create_run(experiment_id, run_name=f"{self.stage} {self.run_id}",
                                      tags={"finelake.stage": self.stage, "finelake.run_id": self.run_id})
        self.mlflow_run_id = run.info.run_id
        params = {
            "stage": self.stage,
            "environment": self.config.env,
            "config_digest": self.config.digest(),
            "code_version": code_version(),
            "run_id": self.run_id,
            "catalog": self.config.catalog.name or "(session default)",
            "schema_prefix": self.config.catalog.schema_prefix,
            "sources": ",".join(s.name for s in self.config.selected_sources()),
            # which teacher answered and with which prompt (never endpoints or keys)
            "teacher_models": ", ".join(f"{role}={m.name}/{m.backend}" for role, m in sorted(self.config.teacher.models.items())),
            "prompt_versions": ", ".join(p.label for _, p in sorted(self.config.prompts.items())),
            "publish_policy": self.config.publish.policy.digest(),  # the hash on gold.curated's rows
        }
        self._client.log_batch(self.mlflow_run_id, params=[Param(k, str(v)) for k, v in params.items()])
        log.info("MLflow run %s (experiment %s)", self.mlflow_run_id, settings.experiment)

    def log_validation(self, validation: Any) -> None:
        stem = f"validations/{validation.table}-{validation.batch}-{validation.suite.rsplit('.', 1)[-1]}"
        self._client.log_dict(self.mlflow_run_id, validation.result, f"{stem}.json")
        self._client.log_text(self.mlflow_run_id, validation_html(validation), f"{stem}.html")

    def finish(self, report: Any, inputs: dict[str, int], failure: str | None = None) -> None:
        from mlflow.entities import Metric

        from mlflow.entities import Param

        self._client.log_batch(self.mlflow_run_id, params=[Param(f"input.{t}", str(v)) for t, v in sorted(inputs.items())])
        values = {
            "rows_in": sum(c.rows_in for c in report.counts.values()),
            "kept": sum(c.kept for c in report.counts.values()),
            "rejected": sum(sum(c.rejected.values()) for c in report.counts.values()),
            "wall_seconds": report.seconds,
        }
        values["rows_per_second"] = values["rows_in"] / report.seconds if report.seconds else 0.0
        for source, counts in report.counts.items():
            values[f"rows_in.{source}"] = counts.rows_in
            values[f"kept.{source}"] = counts.kept
            for reason, n in counts.rejected.items():
                values[f"rejected.{reason}"] = values.get(f"rejected.{reason}", 0) + n
        for write in report.writes:
            values[f"output_rows.{write.table}"] = values.get(f"output_rows.{write.table}", 0) + write.inserted
        values.update(report.metrics)
        metrics = [Metric(re.sub(r"[^\w\-. :/]", "_", key), float(value), 0, 0) for key, value in values.items()]
        self._client.log_batch(self.mlflow_run_id, metrics=metrics)
        from matplotlib import pyplot

        for name, figure in plots(report).items():
            self._client.log_figure(self.mlflow_run_id, figure, f"plots/{name}.png")
            pyplot.close(figure)
        if failure:
            self._client.set_tag(self.mlflow_run_id, "finelake.failure", failure[:5000])
        self._client.set_terminated(self.mlflow_run_id, status="FAILED" if failure else "FINISHED")


def plots(report: Any) -> dict[str, Any]:
    """PNG figures a reviewer reads at a glance: rows per source, reject reasons, distributions."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figures = {}
    sources = sorted(report.counts)
    if sources:
        figure, axes = pyplot.subplots(figsize=(7, 0.5 * len(sources) + 1.5))
        kept = [report.counts[s].kept for s in sources]
        rejected = [sum(report.counts[s].rejected.values()) for s in sources]
        axes.barh(sources, kept, label="kept", color="#4c72b0")
        axes.barh(sources, rejected, left=kept, label="rejected", color="#dd8452")
        axes.set_xlabel("rows")
        axes.set_title(f"{report.stage}: rows per source")
        axes.legend()
        figure.tight_layout()
        figures["rows_per_source"] = figure
    reasons: dict[str, int] = {}
    for counts in report.counts.values():
        for reason, n in counts.rejected.items():
            reasons[reason] = reasons.get(reason, 0) + n
    if reasons:
        ordered = sorted(reasons.items(), key=lambda item: item[1])
        figure, axes = pyplot.subplots(figsize=(7, 0.4 * len(ordered) + 1.5))
        axes.barh([r for r, _ in ordered], [n for _, n in ordered], color="#c44e52")
        axes.set_xlabel("rows")
        axes.set_title(f"{report.stage}: reject reasons")
        figure.tight_layout()
        figures["reject_reasons"] = figure
    for name, (label, values) in report.bars.items():
        if not values:
            continue
        figure, axes = pyplot.subplots(figsize=(7, 0.4 * len(values) + 1.5))
        axes.barh(list(values), list(values.values()), color="#8172b3")
        axes.set_xlabel(label)
        axes.set_title(f"{report.stage}: {name.replace('_', ' ')}")
        figure.tight_layout()
        figures[name] = figure
    for name, (label, width, bins) in report.distributions.items():
        if not bins:
            continue
        figure, axes = pyplot.subplots(figsize=(7, 3.5))
        starts = sorted(bins)
        axes.bar(starts, [bins[s] for s in starts], width=width * 0.9, align="edge", color="#55a868")
        axes.set_xlabel(label)
        axes.set_ylabel("count")
        axes.set_title(f"{report.stage}: {name.replace('_', ' ')}")
        figure.tight_layout()
        figures[name] = figure
    return figures


def validation_html(validation: Any) -> str:
    """A page a reviewer can read: one row per expectation, failed ones first, with sample keys."""
    rows = []
    results = sorted(validation.result.get("results", []), key=lambda r: r.get("success", False))
    for item in results:
        config = item.get("expectation_config", {})
        kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
        outcome = item.get("result", {})
        keys = outcome.get("partial_unexpected_index_list") or []
        status = "pass" if item.get("success") else "FAIL"
        rows.append(
            f"<tr class='{status}'><td>{status}</td><td>{html.escape(config.get('type', ''))}</td>"
            f"<td>{html.escape(str(kwargs))}</td><td>{html.escape(str(outcome.get('observed_value', '')))}</td>"
            f"<td>{outcome.get('unexpected_count', '')}</td><td>{html.escape(str(keys[:5]))}</td></tr>"
        )
    verdict = "passed" if validation.success else "FAILED"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(validation.table)} {html.escape(validation.batch)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;font-size:13px;vertical-align:top}.FAIL{background:#fde2e1}.pass{background:#eef8ee}"
        "</style></head><body>"
        f"<h1>{html.escape(validation.table)} batch {html.escape(validation.batch)} ({validation.rows} rows): {verdict}</h1>"
        f"<p>Suite <code>{html.escape(validation.suite)}</code>: {validation.evaluated} expectations, "
        f"{len(validation.failures)} failed.</p><table><tr><th>result</th><th>expectation</th><th>arguments</th>"
        "<th>observed</th><th>unexpected rows</th><th>sample keys</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
