"""finelake sources add: the proposal for each of the demo's four formats reads the same samples as
the hand-written YAML; a file it cannot read says what it could not infer, and nothing is written."""

from __future__ import annotations

import json

import pytest

from jobs import cli
from jobs.ops.samples import text_policy
from jobs.runtime.config import load_config
from udfs.readers import read_file
from udfs.text import chat_turns
from pathlib import Path


def samples(source, config) -> set:
    """(key, turns, image count, image_text, reason) of every record, through ingest's reader and normalize's mapping."""
    root, policy = Path(source.path), text_policy(config)
    files = [root] if root.is_file() else sorted(root.rglob(source.file_pattern or "*"))
    found = set()
    for file in files:
        for record in read_file(str(file), file.name, source):
            chat = chat_turns(record.fields, file.name, record.row_index, source, policy) if record.reason is None else None
            turns = tuple((t["user"], t["assistant"]) for t in chat["turns"]) if chat else ()
            found.add((record.source_key, turns, len(record.images), chat and chat["image_text"],
                       record.reason or (chat and chat["reason"])))
    return found


@pytest.mark.parametrize("name", ["demo_cauldron", "demo_hf_vqa", "demo_llava", "demo_webdataset"])
def test_the_proposal_reads_the_demo_source_as_the_hand_written_yaml(name, demo_root, tmp_path, capsys):
    flags = ["--set", f"paths.demo_sources={demo_root}", "--user-conf", str(tmp_path / "user")]
    config = load_config("local", [f"paths.demo_sources={demo_root}"], check_sources=False)
    by_hand = config.sources[name]
    assert cli.main(["sources", "add", by_hand.path, "--name", "onboarded", *flags]) == 0
    out = capsys.readouterr().out
    assert "dry run of the first 5 records" in out and f"wrote {tmp_path / 'user' / 'sources' / 'onboarded.yaml'}" in out
    onboarded = load_config("local", [f"paths.demo_sources={demo_root}"], user_dir=tmp_path / "user",
                            check_sources=False).sources["onboarded"]
    assert onboarded.format == by_hand.format
    expected = samples(by_hand, config)
    assert len(expected) > 5 and samples(onboarded, config) == expected
    assert cli.main(["sources", "add", by_hand.path, "--name", "onboarded", *flags]) == 2  # exists: --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_a_file_it_cannot_read_says_what_it_could_not_infer(tmp_path, capsys):
    data = tmp_path / "odd.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"hello {i}", "score": i}) for i in range(3)))
    user = tmp_path / "user"
    assert cli.main(["sources", "add", str(data), "--name", "odd", "--user-conf", str(user)]) == 2
    captured = capsys.readouterr()
    assert "could not infer: the turns: no question field" in captured.out and "text, score" in captured.out
    assert "could not infer: the licence" in captured.out and "no source YAML for" in captured.err
    assert not user.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["sources", "add", str(empty), "--name", "empty", "--user-conf", str(user)]) == 2
    assert "could not infer: no .parquet, .tar, .json or .jsonl file" in capsys.readouterr().out


def test_gui_episodes_are_recognised_and_dry_run(tmp_path, capsys):
    episodes = [{"episode_id": f"e{i}", "goal": "Open the settings",
                 "steps": [{"result_action_type": 4, "result_touch_yx": "[0.9, 0.5]", "result_lift_yx": "[0.9, 0.5]"},
                           {"result_action_type": 99}]} for i in range(2)]
    (tmp_path / "aitw.json").write_text(json.dumps(episodes))
    assert cli.main(["sources", "add", str(tmp_path / "aitw.json"), "--name", "my_aitw", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "converter aitw" in out and "actions:" in out and "key e0#0" in out and "click(x=0.5000, y=0.9000)" in out
    assert "rejected, unknown_action: step 1" in out and "2 kept, 2 rejected" in out
