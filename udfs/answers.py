"""Rule-based answer checking: does the final answer of a reasoning text match the gold answer?

Pure functions, no model: the `verify` stage runs them on every distilled row and sends only
free-form answers to the judge. The final answer is read from the end of the text: after
`</think>` when the text has one, else from its last line (the line before when the last one
names no answer). Three kinds, by the gold answer and its choices:

- multiple choice: the choice the final line names (its text, or its letter as "(B)" / "B)" /
  "answer is B"); the last one named wins, and a choice that contains another one (`Dreaming
  Green` vs `Green`) wins at the same place. Yes/no choices are read as yes/no below.
- yes/no (and true/false): an explicit yes, no, true or false; otherwise the final sentence's polarity (a negation such
  as "not", "n't", "cannot", "never" means no: "Roxanne does not have enough money").
- numbers: thousands separators, currency signs, units, percentages, fractions (`3/4`,
  `\\frac{3}{4}`, mixed `1 1/2`) and negative numbers ("- 7"). The answer is the number inside
  `\\boxed{}` or after "answer is" / "answer:"; else, in the final sentence without a leading
  "In 2004,": a number it starts with ("2 offices are exactly 38 square meters"), else the first
  number after its last "is / was / are / were / =", else its first number. A number equals the gold one to 1e-6 relative, or when rounded to the gold's
  decimals; "45%" matches 45 and 0.45.

Anything else is free-form text: `needs_judge`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import pandas as pd

from schemas.verdicts import Verdict

CORRECT, INCORRECT, UNVERIFIED = Verdict.CORRECT, Verdict.INCORRECT, Verdict.UNVERIFIED
NEEDS_JUDGE = "needs_judge"  # the rule cannot decide (a free-form answer): the verify stage asks the judge

_NUMBER = re.compile(
    r"\\frac\{\s*(?P<fn>-?[\d,]*\.?\d+)\s*\}\{\s*(?P<fd>-?[\d,]*\.?\d+)\s*\}"  # \frac{a}{b}
    r"|(?P<mw>-?\d+)\s+(?P<mn>\d+)/(?P<md>\d+)(?![\d/])"  # mixed number 1 1/2
    r"|(?P<n>-?\d+)/(?P<d>\d+)(?![\d/])"  # fraction 3/4 (not a date 1/2/2020)
    r"|(?P<x>(?:(?<!\d)(?<!\d\s)-\s?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)(?P<pct>\s*%)?"  # 1,234.5, - 7, 45%
)
_COPULA = re.compile(r"\b(?:is|was|are|were|be|equals)\b|=", re.IGNORECASE)
_MARKED = re.compile(r"\\boxed\{(?P<boxed>[^{}]*)\}|\banswer\s*(?:is|:)\s*(?P<said>[^\n]*)", re.IGNORECASE)
_CHOICES = re.compile(r"\(([A-J])\)\s*(.*?)(?=\s*\([A-J]\)|$)", re.DOTALL)
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|neither|nor|none)\b|n't\b", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
_BOOLEAN = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_LETTER = re.compile(r"\(([A-J])\)|\b([A-J])\)|\banswer\s*(?:is|:)\s*\(?([A-J])\b")
_LEADING_PHRASE = re.compile(r"^(?:In|On|At|During|By|For|From|After|Before)\s+[^,]{1,40},\s*")  # "In 2004, ..."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\\(])")


@dataclass(frozen=True)
class Check:
    verdict: str  # correct | incorrect | needs_judge
    reason: str  # what decided it: a short code
    found: str | None  # the answer read from the text, as written there


def final_lines(text: str) -> list[str]:
    """The part of `text` that holds its final answer, last line first (after </think> if present)."""
    tail = text.rsplit("</think>", 1)[1] if "</think>" in text else text
    lines = [line.strip() for line in tail.strip().splitlines() if line.strip()]
    return lines[::-1][:2]


def last_sentence(line: str) -> str:
    sentences = [s for s in _SENTENCE_END.split(line.strip()) if s.strip()]
    return sentences[-1] if sentences else line


def _value(match: re.Match) -> tuple[float, bool]:
    """(value, written as a percentage) of a _NUMBER match."""
    g = match.groupdict()
    if g["fn"] is not None:
        denominator = float(g["fd"].replace(",", ""))
        return (float(g["fn"].replace(",", "")) / denominator if denominator else math.nan), False
    if g["mw"] is not None:
        whole = int(g["mw"])
        part = Fraction(int(g["mn"]), int(g["md"])) if int(g["md"]) else Fraction(0)
        return float(whole - part if whole < 0 else whole + part), False
    if g["n"] is not None:
        return (int(g["n"]) / int(g["d"]) if int(g["d"]) else math.nan), False
    return float(g["x"].replace(",", "").replace(" ", "")), g["pct"] is not None


_UNIT = re.compile(r"[A-Za-z][A-Za-z./]*(?: [A-Za-z./]+){0,2}")  # up to three words: "minutes per day"


def parse_number(text: str) -> float | None:
    """The value of a gold answer written as one number, with or without a unit ("1,807.80", "$5",
    "69/127", "45%", "3 minutes per day"), else None."""
    stripped = text.strip().replace("$", "").replace("€", "").replace("£", "").strip()
    match = _NUMBER.fullmatch(stripped)
    if match is None:
        match = _NUMBER.match(stripped)
        if match is None or not _UNIT.fullmatch(stripped[match.end():].strip()):
            return None
    return _value(match)[0]


def _decimals(gold: str) -> int:
    digits = gold.replace(",", "").strip().rstrip("%")
    return len(digits.split(".", 1)[1]) if "." in digits and "/" not in digits else 0


def numbers_equal(found: float, gold: float, decimals: int = 0) -> bool:
    if math.isnan(found) or math.isnan(gold):
        return False
    if math.isclose(found, gold, rel_tol=1e-6, abs_tol=1e-9):
        return True
    return decimals > 0 and round(found, decimals) == round(gold, decimals)


def stated_number(sentence: str) -> re.Match | None:
    """The number a sentence states as its answer (see the module docstring)."""
    sentence = _LEADING_PHRASE.sub("", sentence.strip())
    numbers = list(_NUMBER.finditer(sentence))
    if not numbers:
        return None
    if numbers[0].start() == 0 or sentence[: numbers[0].start()].strip() in ("$", "-", "-$"):
        return numbers[0]  # the sentence's subject: "2 offices are exactly 38 square meters"
    cues = list(_COPULA.finditer(sentence))
    if cues:
        after = [m for m in numbers if m.start() >= cues[-1].end()]
        if after:
            return after[0]
    return numbers[0]


def _check_number(lines: list[str], gold: str, value: float) -> Check:
    for line in lines:
        marked = _MARKED.search(line)
        sentence = (marked.group("boxed") or marked.group("said")) if marked else last_sentence(line)
        match = stated_number(sentence)
        if match is None:
            continue
        found, percent = _value(match)
        candidates = [found, found / 100] if percent else [found]
        if percent or gold.strip().endswith("%"):
            candidates.append(found * 100)
        ok = any(numbers_equal(c, value, _decimals(gold)) for c in candidates)
        return Check(CORRECT if ok else INCORRECT, "number_match" if ok else "number_mismatch", match.group(0))
    return Check(INCORRECT, "no_number_found", None)


def _squeezed(text: str) -> str:
    """Lower case, without spaces and punctuation: "5:25 P. M." and "5:25 p.m." agree."""
    return re.sub(r"[\W_]+", "", text.lower())


def named_choice(line: str, choices: list[str]) -> str | None:
    """The choice a line names last by its text (longer choices win ties), else by its letter."""
    squeezed = _squeezed(line)
    best = None
    for choice in choices:
        key = _squeezed(choice)
        at = squeezed.rfind(key) if key else -1
        if at >= 0 and (best is None or (at + len(key), len(key)) > best[:2]):
            best = (at + len(key), len(key), choice)
    if best is not None:
        return best[2]
    letters = [ord(next(g for g in m.groups() if g)) - ord("A") for m in _LETTER.finditer(line)]
    named = [choices[i] for i in letters if i < len(choices)]
    return named[-1] if named else None


def _polarity(lines: list[str]) -> tuple[str, str]:
    """("yes" | "no", how it was read) from the final line."""
    sentence = last_sentence(lines[0]) if lines else ""
    explicit = _YES_NO.findall(sentence)
    if explicit:
        return _BOOLEAN[explicit[-1].lower()], "explicit_yes_no"
    return ("no" if _NEGATION.search(sentence) else "yes"), "sentence_polarity"


def check_answer(text: str, gold: str, choices: list[str] | None = None) -> Check:
    """Check the final answer of `text` against `gold` (see the module docstring for the rules)."""
    lines = final_lines(text)
    gold_key = _BOOLEAN.get(gold.strip().lower())
    options = [c for c in (choices or []) if c is not None]
    if gold_key and (not options or all(c.strip().lower() in _BOOLEAN for c in options)):
        said, how = _polarity(lines)
        return Check(CORRECT if said == gold_key else INCORRECT, how, said)
    if options:
        for line in lines:
            named = named_choice(line, options)
            if named is not None:
                ok = _squeezed(named) == _squeezed(gold)
                return Check(CORRECT if ok else INCORRECT, "choice_match" if ok else "choice_mismatch", named)
        return Check(INCORRECT, "no_choice_found", None)
    value = parse_number(gold)
    if value is not None:
        return _check_number(lines, gold, value)
    return Check(NEEDS_JUDGE, "free_form", lines[0] if lines else None)


def parse_choices(question: str) -> list[str]:
    """The lettered options after "Choices:", "(A) red (B) blue" -> ["red", "blue"]; [] when none."""
    if "Choices:" not in question:
        return []
    return [option.strip() for _, option in _CHOICES.findall(question.split("Choices:", 1)[1])]


def check_frame(answers: pd.Series, golds: pd.Series, questions: pd.Series) -> pd.DataFrame:
    """Body of the verify stages' rule UDF: (verdict, reason) per answer; no answer -> unverified."""
    rows = []
    for answer, gold, question in zip(answers, golds, questions):
        if not isinstance(answer, str) or not answer.strip():
            rows.append((UNVERIFIED, "no_answer"))
            continue
        check = check_answer(answer, gold, parse_choices(question or ""))
        rows.append((check.verdict, check.reason))
    return pd.DataFrame(rows, columns=["verdict", "reason"])
