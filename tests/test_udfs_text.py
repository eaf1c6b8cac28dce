"""Text rules and record -> turns mapping, without Spark."""

import pytest

from jobs.runtime.config import SourceConfig
from udfs.mapping import record_turns
from udfs.text import TextPolicy, chat_turns, clean_prompt, repeated_text, text_verdict

PHRASES = ("Answer directly.", "Answer with a single word.", "Answer the question using a single word or phrase.")
POLICY = TextPolicy(max_chars=200, repeat_min_count=4, repeat_min_fraction=0.5, discouraging_phrases=PHRASES)


def source(**fields) -> SourceConfig:
    return SourceConfig.model_validate({"name": "s", "format": "llava_json", "path": "/d", "license": "x", **fields})


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("What is shown? Answer directly.", "What is shown?"),
        ("answer directly: what is shown?", ": what is shown?"),
        ("Which is bigger?\nA. cat\nB. dog\nAnswer the question using a single word or phrase.", "Which is bigger?\nA. cat\nB. dog"),
        ("Answer with a single word. Is it red?", "Is it red?"),
        ("Answer directly-ish is not a phrase here", "Answer directly-ish is not a phrase here"),
    ],
)
def test_clean_prompt(text, cleaned):
    assert clean_prompt(text, PHRASES)[0] == cleaned


def test_clean_prompt_reports_what_it_removed():
    assert clean_prompt("Is it red? Answer with a single word.", PHRASES)[1] == ["Answer with a single word."]
    assert clean_prompt("Is it red?", PHRASES) == ("Is it red?", [])


@pytest.mark.parametrize(
    "text",
    ["What is this? What is this? What is this? What is this?", "yes yes yes yes yes yes", "ok\nok\nok\nok\nfine"],
)
def test_repeated_text_is_found(text):
    assert repeated_text(text, 4, 0.5)


@pytest.mark.parametrize(
    "text",
    [
        "76, 94, 86, 84, 80, 83, 82, 87",
        "0 0 0 0 0 0 0 0",  # numbers only: a table row, not babble
        "The cat sat on the mat and the dog sat on the rug.",
        "very very good",
    ],
)
def test_ordinary_text_is_not_repeated(text):
    assert repeated_text(text, 4, 0.5) is None


def test_text_verdict_order_and_details():
    assert text_verdict([], POLICY) == ("empty_text", "no turns")
    assert text_verdict([("q", " ")], POLICY)[0] == "empty_text"
    assert text_verdict([("q", "a" * 300)], POLICY)[0] == "text_too_long"
    assert text_verdict([("go go go go go", "fine")], POLICY)[0] == "repeated_text"
    assert text_verdict([("What is it?", "A cat.")], POLICY) == (None, None)


def test_conversation_mapping_counts_and_strips_image_tokens():
    mapped = record_turns(
        {"conversations": [
            {"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A cat."},
            {"from": "human", "value": "Color?"}, {"from": "gpt", "value": "Grey."},
        ]},
        source(),
    )
    assert mapped.turns == [("What is it?", "A cat."), ("Color?", "Grey.")] and mapped.image_tokens == 1


def test_conversation_problems_name_the_message():
    mapped = record_turns({"conversations": [{"from": "gpt", "value": "Hi"}]}, source())
    assert mapped.reason == "malformed_record" and "conversations[0]" in mapped.detail
    assert record_turns({"other": 1}, source()).detail.startswith("field `conversations` is missing")


def test_pairs_mapping():
    cauldron = SourceConfig.model_validate({"name": "c", "format": "cauldron_parquet", "path": "/d", "license": "x"})
    mapped = record_turns({"texts": [{"user": "Q1", "assistant": "A1"}, {"user": "Q2", "assistant": None}]}, cauldron)
    assert mapped.turns == [("Q1", "A1"), ("Q2", "")]


def test_templates_render_and_name_missing_fields():
    nlvr = source(turns=[{"user": 'Is "{{ sentence }}" true?', "assistant": "{{ 'yes' if label == 'true' else 'no' }}"}])
    assert record_turns({"sentence": "A box", "label": "false"}, nlvr).turns == [('Is "A box" true?', "no")]
    broken = record_turns({"label": "true"}, nlvr)
    assert broken.reason == "template_error"
    assert "turns[0].user" in broken.detail and "'sentence' is undefined" in broken.detail


def test_chat_turns_cleans_prompts_and_keeps_source_facts():
    row = chat_turns(
        {"conversations": [{"from": "human", "value": "<image>\nWho? Answer directly."}, {"from": "gpt", "value": "Grace."}]},
        "f.json", 3, source(license="CC-BY", category="people"), POLICY,
    )
    assert row["turns"] == [{"user": "Who?", "assistant": "Grace."}]
    assert row["prompt_edits"] == ["Answer directly."]
    assert (row["license"], row["category"], row["reason"]) == ("CC-BY", "people", None)
