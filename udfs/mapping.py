"""Records as read -> chat turns, driven by a source's config (templates, conversations, pairs).

Templates are Jinja2 in a sandbox with strict undefined: a template that names a field the record
lacks fails with the field's name instead of rendering an empty string.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from schemas.silver_rejects import Reason
from udfs.actions import CONVERTERS, ActionError, Screen

IMAGE_TOKEN = re.compile(r"[ \t]*<image>[ \t]*\n?")
_ENVIRONMENT = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


class TemplateError(ValueError):
    pass


@functools.lru_cache(maxsize=512)
def compile_template(text: str) -> jinja2.Template:
    try:
        return _ENVIRONMENT.from_string(text)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(f"line {err.lineno}: {err.message}") from None


def render(text: str, context: dict[str, Any], label: str) -> str:
    try:
        return compile_template(text).render(context)
    except jinja2.UndefinedError as err:
        raise TemplateError(f"template `{label}`: {err.message}") from None
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as err:
        raise TemplateError(f"template `{label}`: {type(err).__name__}: {err}") from None


@dataclass
class MappedText:
    """Turns extracted from one record, or the reason they could not be."""

    turns: list[tuple[str, str]] = field(default_factory=list)
    image_text: str | None = None  # the images' content as text (the source's `image_text` template)
    actions: list[dict[str, Any]] = field(default_factory=list)  # GUI sources: silver.samples ACTION_ROW dicts
    image_tokens: int = 0
    reason: str | None = None
    detail: str | None = None


def record_turns(record: dict[str, Any], source: Any) -> MappedText:
    """Turns of one record (its template context) under `source` (a SourceConfig).

    `<image>` tokens are counted, then removed: silver keeps images in a separate ordered list.
    """
    actions: list[dict[str, Any]] = []
    try:
        if source.actions:
            raw, actions = _action_turns(record, source.actions)
        elif source.turns:
            raw = [
                (render(t.user, record, f"turns[{i}].user"), render(t.assistant, record, f"turns[{i}].assistant"))
                for i, t in enumerate(source.turns)
            ]
        elif source.pairs:
            raw = _pairs(record, source.pairs)
        else:
            raw = _conversation(record, source.conversation)
        image_text = render(source.image_text, record, "image_text").strip() or None if source.image_text else None
    except TemplateError as err:
        return MappedText(reason=Reason.TEMPLATE_ERROR, detail=str(err))
    except _MalformedRecord as err:
        return MappedText(reason=Reason.MALFORMED_RECORD, detail=str(err))
    except ActionError as err:
        return MappedText(reason=err.reason, detail=err.detail)
    tokens = sum(len(IMAGE_TOKEN.findall(user)) for user, _ in raw)
    turns = [(IMAGE_TOKEN.sub("", user).strip(), assistant.strip()) for user, assistant in raw]
    return MappedText(turns=turns, image_text=image_text, actions=actions, image_tokens=tokens)


class _MalformedRecord(ValueError):
    pass


NEXT_ACTION = "Next action."  # the user turn of an episode's later steps


def _action_turns(record: dict[str, Any], spec: Any) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """A GUI record's turns and its converted actions (rows with their turn_index). Per step: the
    instruction and the earlier actions, then this step's action(s); per episode: a turn per step."""
    convert, screen = CONVERTERS[spec.converter], _screen(record, spec)
    instruction = render(spec.instruction, record, "actions.instruction").strip()

    def converted(raw: Any, number: int) -> list:
        try:
            return convert(raw, screen)
        except ActionError as err:
            raise ActionError(err.reason, f"step {number}: {err.detail}") from None

    if spec.per == "step":
        actions, history = converted(record["_action"], record["_step"]), record["_history"]
        user = instruction + ("\nPrevious actions:\n" + "\n".join(history) if history else "")
        return [(user, "\n".join(a.canonical() for a in actions))], [{**a.row(), "turn_index": 0} for a in actions]
    steps = _field(record, spec.steps)
    if not isinstance(steps, list) or not steps:
        raise _MalformedRecord(f"field `{spec.steps}` is {type(steps).__name__}, expected a non-empty list of steps")
    turns, rows = [], []
    for number, step in enumerate(steps):
        actions = converted(step.get(spec.action) if spec.action and isinstance(step, dict) else step, number)
        turns.append((instruction if number == 0 else NEXT_ACTION, "\n".join(a.canonical() for a in actions)))
        rows += [{**a.row(), "turn_index": number} for a in actions]
    return turns, rows


def readable_steps(record: dict[str, Any], spec: Any, raw_actions: list[Any]) -> list[str]:
    """Each step as the steps after it see it: its canonical action(s), or a note that it could not
    be read (its own sample is a reject that says why)."""
    try:
        screen = _screen(record, spec)
    except (ActionError, TemplateError):
        screen = None
    readable = []
    for number, raw in enumerate(raw_actions):
        try:
            readable.append("\n".join(a.canonical() for a in CONVERTERS[spec.converter](raw, screen)))
        except ActionError:
            readable.append(f"(step {number} could not be read)")
    return readable


def _screen(record: dict[str, Any], spec: Any) -> Screen:
    """The screenshot's (width, height) from the source's templates; None when it does not say."""
    if not spec.screen_width or not spec.screen_height:
        return None
    sides = []
    for name in ("screen_width", "screen_height"):
        text = render(getattr(spec, name), record, f"actions.{name}").strip()
        try:
            sides.append(float(text))
        except ValueError:
            raise ActionError(Reason.MISSING_SCREEN_SIZE, f"actions.{name} renders {text!r}, not a number of pixels") from None
    return sides[0], sides[1]


def _field(record: dict[str, Any], name: str) -> Any:
    if name not in record:
        raise _MalformedRecord(f"field `{name}` is missing (fields: {', '.join(sorted(record)) or 'none'})")
    return record[name]


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _MalformedRecord(f"{where} is {type(value).__name__}, expected text")
    return value


def _pairs(record: dict[str, Any], spec: Any) -> list[tuple[str, str]]:
    pairs = _field(record, spec.column)
    if not isinstance(pairs, list):
        raise _MalformedRecord(f"field `{spec.column}` is {type(pairs).__name__}, expected a list of turns")
    turns = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            raise _MalformedRecord(f"`{spec.column}[{i}]` is {type(pair).__name__}, expected a mapping")
        where = f"`{spec.column}[{i}]`"
        turns.append(
            (
                _text(pair.get(spec.user_field), f"{where}.{spec.user_field}"),
                _text(pair.get(spec.assistant_field), f"{where}.{spec.assistant_field}"),
            )
        )
    return turns


def _conversation(record: dict[str, Any], spec: Any) -> list[tuple[str, str]]:
    messages = _field(record, spec.column)
    if not isinstance(messages, list):
        raise _MalformedRecord(f"field `{spec.column}` is {type(messages).__name__}, expected a list of messages")
    turns: list[list[str | None]] = []
    for i, message in enumerate(messages):
        where = f"`{spec.column}[{i}]`"
        if not isinstance(message, dict):
            raise _MalformedRecord(f"{where} is {type(message).__name__}, expected a mapping")
        role = message.get(spec.role_field)
        content = _text(message.get(spec.content_field), f"{where}.{spec.content_field}")
        if role in spec.user_roles:
            if turns and turns[-1][1] is None:
                turns[-1][0] = f"{turns[-1][0]}\n{content}"
            else:
                turns.append([content, None])
        elif role in spec.assistant_roles:
            if not turns or turns[-1][1] is not None:
                raise _MalformedRecord(f"{where}: an assistant message without a user message before it")
            turns[-1][1] = content
        else:
            raise _MalformedRecord(f"{where}.{spec.role_field}: unknown role `{role}`")
    return [(user, assistant or "") for user, assistant in turns]
