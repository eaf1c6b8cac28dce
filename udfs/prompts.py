"""Versioned prompt templates (conf/prompts/<name>.yaml) and what parses their answers.

A prompt is a system text and a user template (Jinja2; the row's fields are its variables).
`label` ("reasoning@v2") goes onto every row the prompt produced, so a changed prompt is a new
version, never mixed with the old one's rows. Model outputs are data: they are parsed here as
text, never evaluated; a variable's text is capped at `max_chars` before it enters a prompt.

A prompt may also define its answer's form, once for every backend: `json_schema` (ratings,
judges) or an EBNF `grammar` (reasoning), both in the dialect xgrammar and vLLM share. A
`budget` makes the answer fit the token cap in two phases: thinking stops `answer_tokens` short
of the cap; an output cut there is closed (`close`) and continued under the grammar's answer
rule. Parsers stay, for backends that cannot constrain.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable
from typing import Any

import jinja2
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from udfs.generation import Request

THINK = re.compile(r"<think>(?P<reasoning>.*?)(?:</think>|$)(?P<rest>.*)", re.DOTALL | re.IGNORECASE)
JSON_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)


class AnswerBudget(BaseModel):
    """Two-phase generation: the free part stops early enough for the answer to fit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer_tokens: int = Field(gt=0, description="kept for the answer: phase 1 stops this many tokens short of the cap")
    close: str = Field(min_length=1, description="appended to an output cut in its free part, e.g. `</think>\\nAnswer: `")
    rule: str = Field(description="the grammar rule the continuation after `close` follows")


class PromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1, description="raise it whenever the text changes")
    description: str = ""
    system: str | None = None
    user: str = Field(description="Jinja2 template over the row's variables")
    json_schema: dict | None = Field(default=None, description="the answer's JSON schema (judges, ratings)")
    grammar: str | None = Field(default=None, description="the answer's EBNF grammar (xgrammar / vLLM dialect)")
    budget: AnswerBudget | None = Field(default=None, description="two-phase generation (needs `grammar`)")
    repair: str | None = Field(default=None, description="the follow-up turn after an unparseable answer")

    @model_validator(mode="after")
    def _one_answer_form(self) -> PromptSpec:
        if self.json_schema is not None and self.grammar is not None:
            raise ValueError("json_schema and grammar: a prompt's answer has one form; give one of them")
        if self.budget is not None and self.grammar is None:
            raise ValueError("budget: needs a grammar (its `rule` names the answer's rule)")
        return self

    def compile_forms(self) -> None:
        """Compiles the answer's forms with xgrammar: ValueError naming the field that does not."""
        forms = [("json_schema", self.json_schema is not None and json.dumps(self.json_schema, sort_keys=True), "json"),
                 ("grammar", self.grammar, "ebnf"), ("budget.rule", self.continuation_grammar, "ebnf")]
        for field, form, kind in forms:
            if form:
                try:
                    _compiled(form, kind)
                except ValueError as err:
                    raise ValueError(f"{field}: {err}") from None

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def continuation_grammar(self) -> str | None:
        """The grammar of what follows `budget.close`: the same rules, rooted at the answer's."""
        if self.budget is None or self.grammar is None:
            return None
        return re.sub(r"(?m)^root(\s*)::=", r"whole_answer\1::=", self.grammar) + f"\nroot ::= {self.budget.rule}\n"

    def request(self, variables: dict[str, Any], max_chars: int, images: list[bytes] = (), seed_offset: int = 0,
                previous: str | None = None, prefill: str | None = None) -> Request:
        """The chat for one row; with `previous` (an unparseable answer) it continues with the repair turn;
        with `prefill` (a cut output, closed) the model continues that text under the answer rule."""
        capped = {k: (v[:max_chars] if isinstance(v, str) else v) for k, v in variables.items()}
        messages = [{"role": "system", "content": self.system.strip()}] if self.system else []
        messages.append({"role": "user", "content": _template(self.user).render(**capped).strip()})
        if prefill is not None and self.budget is not None:
            return Request(messages, list(images or []), grammar=self.continuation_grammar, seed_offset=seed_offset,
                           prefill=prefill, max_new_tokens=self.budget.answer_tokens)
        if previous is not None and self.repair:
            messages += [{"role": "assistant", "content": previous[:max_chars]},
                         {"role": "user", "content": self.repair.strip()}]
        return Request(messages, list(images or []), self.json_schema, seed_offset, grammar=self.grammar,
                       reserve_tokens=self.budget.answer_tokens if self.budget else 0)

    def closed(self, text: str) -> str | None:
        """A cut output made ready for phase 2: its end that began `close` dropped, then `close`
        (None without a budget)."""
        if self.budget is None:
            return None
        close = self.budget.close
        overlap = max(k for k in range(len(close) + 1) if text.endswith(close[:k]))
        return text[:len(text) - overlap] + close

    def examples(self, count: int = 16, max_chars: int = 4000, continuation: bool = False) -> list[str]:
        """Answers the grammar (or schema) allows, walked at random over printable ASCII: what a
        constrained model can say, for checking that the parser reads it. `continuation`: what
        may follow `budget.close`."""
        if continuation:
            form, kind = self.continuation_grammar, "ebnf"
        elif self.grammar is not None:
            form, kind = self.grammar, "ebnf"
        else:
            form, kind = (json.dumps(self.json_schema, sort_keys=True) if self.json_schema is not None else None), "json"
        if form is None:
            return []
        compiled = _compiled(form, kind)
        return [_walk(compiled, random.Random(seed), max_chars) for seed in range(count)]


# One character per token: a matcher over it walks a grammar character by character.
_ASCII = [chr(c) for c in range(32, 127)] + ["\n", "<eos>"]


@functools.lru_cache(maxsize=1)
def _ascii_compiler() -> Any:
    import xgrammar

    info = xgrammar.TokenizerInfo(_ASCII, stop_token_ids=[len(_ASCII) - 1])
    return xgrammar.GrammarCompiler(info, max_threads=1)


@functools.lru_cache(maxsize=64)
def _compiled(form: str, kind: str) -> Any:
    """A grammar or JSON schema compiled by xgrammar (over a character vocabulary): raises
    ValueError with xgrammar's message when it does not compile."""
    compiler = _ascii_compiler()
    try:
        if kind == "json":
            return compiler.compile_json_schema(form, any_whitespace=False, separators=(",", ":"))
        return compiler.compile_grammar(form)
    except RuntimeError as err:
        message = re.sub(r"^\[[^]]*\] \S+: ", "", str(err).strip().splitlines()[0])  # xgrammar's time and source file
        raise ValueError(f"does not compile: {message}") from None


def _walk(compiled: Any, rng: random.Random, max_chars: int) -> str:
    import xgrammar

    matcher = xgrammar.GrammarMatcher(compiled)
    mask = xgrammar.allocate_token_bitmask(1, len(_ASCII))
    stop = len(_ASCII) - 1
    text = []
    while len(text) < max_chars and not matcher.is_terminated():
        matcher.fill_next_token_bitmask(mask)
        words = mask[0].tolist()
        allowed = [t for t in range(len(_ASCII)) if (words[t // 32] >> (t % 32)) & 1]
        token = stop if stop in allowed and rng.random() < 0.05 else rng.choice(allowed)
        matcher.accept_token(token)
        if token != stop:
            text.append(_ASCII[token])
    return "".join(text)


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


def reasoning_problem(text: str) -> str | None:
    """The reason a reasoning text does not parse, None when it does."""
    return split_reasoning(text)[2]


def scores_problem(axes: tuple[str, ...]) -> Callable[[str], str | None]:
    """The reason a score text does not parse for `axes` (None when it does): the repair check."""
    return lambda text: parse_scores(text, axes)[1]


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
