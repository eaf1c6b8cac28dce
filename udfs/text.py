"""Text rules of HoneyPipe: prompt clean-up and filters that return a reason code or None."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any


from schemas import silver_samples
from schemas.contract import arrow_schema
from schemas.silver_rejects import Reason
from udfs.arrow import rows_of, to_batches
from udfs.mapping import record_turns
from udfs.readers import template_context

_WORD = re.compile(r"\w+")
_LONGEST_REPEATED_UNIT = 10  # words; longer repeated units are caught by the duplicate-line rule


# One row per sample: its turns after clean-up, or the text rule it failed.
CHAT = arrow_schema(silver_samples.CHAT)



@dataclass(frozen=True)
class TextPolicy:
    max_chars: int
    repeat_min_count: int
    repeat_min_fraction: float
    discouraging_phrases: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern | None:
    alternatives = [r"\s+".join(map(re.escape, p.strip().rstrip(".!").split())) for p in phrases if p.strip()]
    if not alternatives:
        return None
    return re.compile(r"[ \t]*(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])[.!]?", re.IGNORECASE)


def clean_prompt(text: str, phrases: tuple[str, ...]) -> tuple[str, list[str]]:
    """Remove phrases that discourage reasoning ("Answer directly."); returns the text and what was removed."""
    pattern = _phrase_pattern(phrases)
    if pattern is None:
        return text, []
    removed = [m.group(0).strip() for m in pattern.finditer(text)]
    if not removed:
        return text, []
    cleaned = pattern.sub("", text)
    cleaned = "\n".join(re.sub(r"[ \t]{2,}", " ", line).strip() for line in cleaned.splitlines())
    return re.sub(r"\n{3,}", "\n\n", cleaned).strip(), removed


def repeated_text(text: str, min_count: int, min_fraction: float) -> str | None:
    """Describe the repetition when a word sequence or a line repeats over `min_fraction` of the text."""
    lines = [line.strip().lower() for line in text.splitlines() if line.strip()]
    if len(lines) >= min_count:
        duplicates = len(lines) - len(set(lines))
        if duplicates >= min_count - 1 and duplicates / len(lines) >= min_fraction:
            return f"{duplicates} of {len(lines)} lines are duplicates"
    words = _WORD.findall(text.lower())
    for size in range(1, _LONGEST_REPEATED_UNIT + 1):
        start = 0
        while start + size * min_count <= len(words):
            unit = words[start : start + size]
            count = 1
            while words[start + count * size : start + (count + 1) * size] == unit:
                count += 1
            covered = count * size
            if count >= min_count and covered / len(words) >= min_fraction and any(w.isalpha() for w in unit):
                return f"`{' '.join(unit)}` repeated {count} times ({covered} of {len(words)} words)"
            start += max(1, covered - size + 1) if count > 1 else 1
    return None


def text_verdict(turns: list[tuple[str, str]], policy: TextPolicy) -> tuple[str | None, str | None]:
    """(reason, detail) of the first text rule that fails, or (None, None)."""
    if not turns:
        return Reason.EMPTY_TEXT, "no turns"
    for i, (user, assistant) in enumerate(turns):
        if not user.strip():
            return Reason.EMPTY_TEXT, f"turn {i}: the user text is empty"
        if not assistant.strip():
            return Reason.EMPTY_TEXT, f"turn {i}: the assistant text is empty"
    total = sum(len(u) + len(a) for u, a in turns)
    if total > policy.max_chars:
        return Reason.TEXT_TOO_LONG, f"{total} characters > max_chars {policy.max_chars}"
    for i, (user, assistant) in enumerate(turns):
        for role, text in (("user", user), ("assistant", assistant)):
            repetition = repeated_text(text, policy.repeat_min_count, policy.repeat_min_fraction)
            if repetition:
                return Reason.REPEATED_TEXT, f"turn {i} {role}: {repetition}"
    return None, None


def chat_turns(record: dict[str, Any], relpath: str, row: int, source: Any, policy: TextPolicy) -> dict[str, Any]:
    """One bronze record -> a CHAT row: mapped turns, cleaned prompts, and the first failed text rule."""
    mapped = record_turns(template_context(record, relpath, row, source), source)
    edits: list[str] = []
    turns = []
    for user, assistant in mapped.turns:
        cleaned, removed = clean_prompt(user, policy.discouraging_phrases)
        edits += removed
        turns.append((cleaned, assistant))
    reason, detail = (mapped.reason, mapped.detail) if mapped.reason else text_verdict(turns, policy)
    return {
        "turns": [{"user": u, "assistant": a} for u, a in turns],
        "image_text": mapped.image_text,
        "actions": mapped.actions,
        "image_tokens": mapped.image_tokens,
        "prompt_edits": edits,
        "license": source.license,
        "category": source.category,
        "language": source.language,
        "reason": reason,
        "detail": detail,
    }


def chat_batches(batches, sources: dict[str, Any], policy: TextPolicy):
    """mapInArrow body: (sample_id, source, file, row_index, record) batches -> CHAT batches."""

    def rows():
        for row in rows_of(batches):
            fields = json.loads(row["record"])
            chat = chat_turns(fields, row["file"], row["row_index"], sources[row["source"]], policy)
            yield {"sample_id": row["sample_id"], **chat}

    yield from to_batches(rows(), CHAT)
