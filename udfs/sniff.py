"""Look at a dataset and propose its source YAML: the format, the key, the images, the turns
(or the GUI action converter), from parquet columns, JSON keys and tar members.

Pure functions over the files (a few records are read, never the whole dataset). What cannot be
inferred is said in `Proposal.problems` rather than guessed; `finelake sources add` prints both,
dry-runs the proposal and writes it to the user's conf folder.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUESTION_FIELDS = ("question", "query", "prompt", "instruction", "user", "input")
ANSWER_FIELDS = ("answer", "response", "output", "assistant", "label", "target")
KEY_FIELDS = ("id", "identifier", "sample_id", "question_id", "uid", "annotation_id", "episode_id")
IMAGE_FIELDS = ("image", "images", "image_path", "img", "screenshot")
TEXT_FIELDS = ("ocr", "ocr_text", "table", "caption")  # the images' content as text
CONVERSATION_FIELDS = {"conversations": ("from", "value"), "messages": ("role", "content")}
IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"}
LICENSE_PLACEHOLDER = "UNKNOWN (set the dataset's licence before publishing)"


@dataclass
class Proposal:
    spec: dict[str, Any] = field(default_factory=dict)  # the source YAML, as a mapping
    notes: list[str] = field(default_factory=list)  # what was inferred, from what
    problems: list[str] = field(default_factory=list)  # what could not be: no YAML is written
    todo: list[str] = field(default_factory=list)  # what no file says, to set by hand in the written YAML


def propose(path: Path, name: str) -> Proposal:
    """A source YAML for the dataset at `path` (a file, or a folder of files of one kind)."""
    proposal = Proposal({"name": name, "format": None, "path": str(path.resolve())})
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    kinds = {"parquet": [f for f in files if f.suffix == ".parquet"], "tar": [f for f in files if f.suffix == ".tar"],
             "json": [f for f in files if f.suffix in (".json", ".jsonl")]}
    found = {kind: found for kind, found in kinds.items() if found}
    if not found:
        proposal.problems.append(f"no .parquet, .tar, .json or .jsonl file under {path}: the format")
        return proposal
    kind = max(found, key=lambda k: len(found[k]))
    if len(found) > 1:
        proposal.notes.append(f"several kinds of file; the most numerous ({kind}, {len(found[kind])}) are the records")
    if path.is_dir():
        suffixes = sorted({f.suffix for f in found[kind]})
        proposal.spec["file_pattern"] = f"*{suffixes[0]}" if len(suffixes) == 1 else "*.json*"
    {"parquet": _parquet, "tar": _tar, "json": _json}[kind](found[kind][0], proposal)
    proposal.spec.setdefault("license", LICENSE_PLACEHOLDER)
    if proposal.spec["license"] == LICENSE_PLACEHOLDER:
        proposal.todo.append("the licence: no file says it (set `license`)")
    return proposal


def _first(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {n.lower(): n for n in names}
    return next((lowered[w] for w in wanted if w in lowered), None)


def _key_and_text(fields: list[str], proposal: Proposal) -> None:
    key = _first(fields, KEY_FIELDS)
    if key:
        proposal.spec["key"] = f"{{{{ {key} }}}}"
        proposal.notes.append(f"key: the `{key}` field")
    else:
        proposal.notes.append("key: none of " + ", ".join(KEY_FIELDS) + "; records are keyed by file and row")
    text = _first(fields, TEXT_FIELDS)
    if text:
        proposal.spec["image_text"] = f"{{{{ {text} | default('') }}}}"
        proposal.notes.append(f"image_text: the `{text}` field")


def _images_key_and_turns(fields: list[str], image: str | None, proposal: Proposal) -> None:
    """The image column (or text_only), the key and image text, then the turns: a conversation column,
    else question and answer fields."""
    if image:
        proposal.spec["images"] = {"column": image}
        proposal.notes.append(f"images: the `{image}` field (bytes, or paths relative to the file)")
    else:
        proposal.spec["text_only"] = True
        proposal.notes.append("no image field (text_only)")
    _key_and_text(fields, proposal)
    conversation = _first(fields, tuple(CONVERSATION_FIELDS))
    if conversation:
        role, content = CONVERSATION_FIELDS[conversation.lower()]
        proposal.spec["conversation"] = {"column": conversation, "role_field": role, "content_field": content}
        proposal.notes.append(f"turns: the `{conversation}` messages")
    else:
        _turns(fields, proposal)


def _turns(fields: list[str], proposal: Proposal) -> bool:
    question, answer = _first(fields, QUESTION_FIELDS), _first(fields, ANSWER_FIELDS)
    if question and answer:
        proposal.spec["turns"] = [{"user": f"{{{{ {question} }}}}", "assistant": f"{{{{ {answer} }}}}"}]
        proposal.notes.append(f"turns: `{question}` -> `{answer}`")
        return True
    proposal.problems.append(f"the turns: no question field ({', '.join(QUESTION_FIELDS)}) and answer field "
                             f"({', '.join(ANSWER_FIELDS)}) among {', '.join(fields)}")
    return False


# ---------------------------------------------------------------- parquet


def _parquet(path: Path, proposal: Proposal) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    names = schema.names

    def struct_names(t: pa.DataType) -> set[str]:
        return {t.field(i).name for i in range(t.num_fields)} if pa.types.is_struct(t) else set()

    def element(t: pa.DataType) -> pa.DataType:
        return t.value_type if pa.types.is_list(t) or pa.types.is_large_list(t) else t

    texts = schema.field("texts").type if "texts" in names else None
    if "images" in names and texts is not None and {"user", "assistant"} <= struct_names(element(texts)):
        proposal.spec["format"] = "cauldron_parquet"
        proposal.notes.append("format: cauldron_parquet (an `images` list and a `texts` list of {user, assistant})")
        _key_and_text(names, proposal)
        return
    proposal.spec["format"] = "hf_parquet"
    image = next((n for n in names if {"bytes", "path"} <= struct_names(element(schema.field(n).type))
                  or pa.types.is_binary(element(schema.field(n).type))), None)
    proposal.notes.append("format: hf_parquet" + (f" (`{image}` is {schema.field(image).type})" if image else ""))
    _images_key_and_turns(names, image, proposal)


# ---------------------------------------------------------------- WebDataset


def _tar(path: Path, proposal: Proposal) -> None:
    proposal.spec["format"] = "webdataset"
    extensions, fields = set(), []
    with tarfile.open(path) as archive:
        for member in archive.getmembers()[:64]:
            stem, _, extension = posixpath.basename(member.name).partition(".")
            extensions.add(extension.lower())
            if extension.lower() == "json" and not fields:
                data = json.loads(archive.extractfile(member).read() or b"{}")
                fields = list(data) if isinstance(data, dict) else []
    images = sorted(extensions & IMAGE_EXTENSIONS)
    proposal.notes.append(f"format: webdataset (members {', '.join(sorted(extensions))}; images {', '.join(images) or 'none'})")
    if not images:
        proposal.spec["text_only"] = True
    if not fields:
        proposal.problems.append("the turns: no .json member with fields in the first samples")
        return
    _turns(fields, proposal)
    text = _first(fields, TEXT_FIELDS)
    if text:
        proposal.spec["image_text"] = f"{{{{ {text} | default('') }}}}"
        proposal.notes.append(f"image_text: the `{text}` field")


# ---------------------------------------------------------------- JSON / JSONL


def _json(path: Path, proposal: Proposal) -> None:
    proposal.spec["format"] = "llava_json"
    text = path.read_text(encoding="utf-8-sig")
    try:
        document = json.loads(text)
        records = document if isinstance(document, list) else list(document.values())
        layout = "json_array" if isinstance(document, list) else "json_object"
    except json.JSONDecodeError:
        try:
            records = [json.loads(line) for line in text.splitlines()[:50] if line.strip()]
        except json.JSONDecodeError as err:
            proposal.problems.append(f"{path.name} is neither JSON nor JSON lines ({err.msg} at line {err.lineno}): the records")
            return
        layout = "jsonl"
    first = next((r for r in records if isinstance(r, dict)), None)
    if first is None:
        proposal.problems.append(f"{path.name}: no JSON object among the records: their fields")
        return
    proposal.spec["records"] = layout
    fields = list(first) + (["_key"] if layout == "json_object" else [])
    proposal.notes.append(f"format: llava_json ({layout}; fields {', '.join(fields)})")
    gui = _gui(first)
    if gui:
        proposal.spec.update(text_only=True, actions=gui, category="gui_agent")
        proposal.notes.append(f"GUI episodes: converter {gui['converter']}, steps in `{gui['steps']}`")
        if gui.get("instruction") is None:
            proposal.spec["actions"]["instruction"] = "TODO"
            proposal.problems.append("actions.instruction: no task field (goal, instruction, confirmed_task, task)")
        _key_and_text(fields, proposal)
        return
    _images_key_and_turns(fields, _first(fields, IMAGE_FIELDS), proposal)


def _gui(record: dict[str, Any]) -> dict[str, Any] | None:
    """An episode whose steps look like one of the action converters' formats."""
    instruction = _first(list(record), ("goal", "instruction", "confirmed_task", "task"))
    for steps_field, steps in record.items():
        if not (isinstance(steps, list) and steps and isinstance(steps[0], (dict, str))):
            continue
        step = steps[0]
        converter, action = None, None
        if isinstance(step, str) and step.lstrip().startswith(("pyautogui.", "mobile.")):
            converter = "aguvis"
        elif isinstance(step, dict):
            if "result_action_type" in step:
                converter = "aitw"
            elif "operation" in step and "bbox" in step:
                converter = "mind2web"
            elif "action_type" in step:
                converter = "android_control"
            elif "action" in step and "info" in step:
                converter = "gui_odyssey"
            elif isinstance(step.get("action"), dict) and "action_type" in step["action"]:
                converter, action = "android_control", "action"
        if converter:
            spec = {"converter": converter, "steps": steps_field, "per": "step",
                    "instruction": f"{{{{ {instruction} }}}}" if instruction else None}
            if action:
                spec["action"] = action
            return spec
    return None
