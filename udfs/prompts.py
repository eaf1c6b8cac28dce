"""Versioned prompt templates (conf/prompts/<name>.yaml) and what parses their answers.

A prompt is a system text and a user template (Jinja2; the row's fields are its variables).
`label` ("reasoning@v2") goes onto every row the prompt produced, so a changed prompt is a new
version, never mixed with the old one's rows. Model outputs are data: they are parsed here as
text, never evaluated; a variable's text is capped at `max_chars` before it enters a prompt.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jinja2
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from udfs.generation import Request

THINK = re.compile(r"<think>(?P<reasoning>.*?)(?:</think>|$)(?P<rest>.*)", re.DOTALL | re.IGNORECASE)
JSON_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)


class PromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1, description="raise it whenever the text changes")
    description: str = ""
    system: str | None = None
    user: str = Field(description="Jinja2 template over the row's variables")
    json_schema: dict | None = Field(default=None, description="the answer's JSON schema (judges, ratings)")
    repair: str | None = Field(default=None, description="the follow-up turn after an unparseable answer")

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"

    def request(self, variables: dict[str, Any], max_chars: int, images: list[bytes] = (), seed_offset: int = 0,
                previous: str | None = None) -> Request:
        """The chat for one row; with `previous` (an unparseable answer) it continues with the repair turn."""
        capped = {k: (v[:max_chars] if isinstance(v, str) else v) for k, v in variables.items()}
        messages = [{"role": "system", "content": self.system.strip()}] if self.system else []
        messages.append({"role": "user", "content": _template(self.user).render(**capped).strip()})
        if previous is not None and self.repair:
            messages += [{"role": "assistant", "content": previous[:max_chars]},
                         {"role": "user", "content": self.repair.strip()}]
        return Request(messages, list(images or []), self.json_schema, seed_offset)


@functools.lru_cache(maxsize=64)
def _template(text: str) -> jinja2.Template:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(text)


def split_reasoning(text: str) -> tuple[str | None, str, str | None]:
    """(reasoning, final answer, reason code): `<think>...</think>` then the answer.

    Without the tags the whole text is the answer and the reason is `no_think_tags`; tags
    opened but never closed (the output was cut) give `unclosed_think`.
    """
    match = THINK.search(text or "")
    if match is None:
        return None, (text or "").strip(), "no_think_tags"
    closed = re.search(r"</think>", text, re.IGNORECASE) is not None
    reasoning, answer = match["reasoning"].strip(), match["rest"].strip()
    return reasoning, answer, None if closed and answer else ("unclosed_think" if not closed else "empty_answer")


def parse_scores(text: str, axes: tuple[str, ...], low: int = 1, high: int = 5) -> tuple[dict[str, int] | None, str | None]:
    """Integer scores per axis from a JSON object, else from "axis: 4" lines; (None, reason) otherwise."""
    found: dict[str, int] = {}
    for candidate in JSON_OBJECT.findall(text or ""):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            found = {k: v for k, v in data.items() if k in axes and isinstance(v, int) and not isinstance(v, bool)}
            if len(found) == len(axes):
                break
    if len(found) < len(axes):
        for axis in axes:
            spelled = axis.replace("_", "[ _-]")
            match = re.search(rf"{spelled}\W{{0,4}}(\d+)", text or "", re.IGNORECASE)
            if match and axis not in found:
                found[axis] = int(match.group(1))
    missing = [a for a in axes if a not in found]
    if missing:
        return None, f"missing_axes:{','.join(missing)}"
    outside = [a for a in axes if not low <= found[a] <= high]
    if outside:
        return None, f"out_of_range:{','.join(outside)}"
    return {a: found[a] for a in axes}, None


def split_reasoning_frame(texts: pd.Series) -> pd.DataFrame:
    """Body of the stages' parsing UDF: output texts -> (reasoning, final_answer, reason)."""
    parts = [split_reasoning(t) if isinstance(t, str) else (None, None, "no_output") for t in texts]
    return pd.DataFrame(parts, columns=["reasoning", "final_answer", "reason"])


def scores_frame(texts: pd.Series, axes: tuple[str, ...]) -> pd.DataFrame:
    """Output texts -> one column per axis (nullable ints) and `reason` (null when all parsed)."""
    rows = []
    for text in texts:
        scores, reason = parse_scores(text, axes) if isinstance(text, str) else (None, "no_output")
        rows.append({**{a: (scores or {}).get(a) for a in axes}, "reason": reason})
    return pd.DataFrame(rows, columns=[*axes, "reason"]).astype({a: "Int32" for a in axes})
