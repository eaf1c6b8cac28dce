"""finelake sources add PATH --name NAME: onboard a dataset without copying conf/.

Looks at the files (udfs/sniff.py), proposes a source YAML, dry-runs ingest's reader and
normalize's mapping and text rules on the first records (no Spark, no lake), prints what they
become and which would be rejected and why, then writes the YAML to the user's conf folder
(`--user-conf`, default $FINELAKE_USER_CONF or ~/.config/finelake), where every command finds it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from jobs.ops.samples import text_policy
from jobs.runtime.config import SourceConfig, default_user_conf_dir
from jobs.runtime.stage import add_config_flags, config_from_args
from udfs.readers import local_path, read_file
from udfs.sniff import propose
from udfs.text import chat_turns


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add"], help="add: propose, dry-run and write a source YAML")
    parser.add_argument("path", type=Path, help="the dataset: a file, or a folder of parquet, tar or JSON files")
    parser.add_argument("--name", required=True, help="the source's name (lowercase letters, digits, _)")
    parser.add_argument("--rows", type=int, default=5, metavar="N", help="records to dry-run and print (default 5)")
    parser.add_argument("--dry-run", action="store_true", help="print the proposal and its dry run; write nothing")
    parser.add_argument("--overwrite", action="store_true", help="replace a source YAML of that name in the user folder")
    add_config_flags(parser)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, "sources add", stage=False)
    if config is None:
        return 2
    if not args.path.exists():
        print(f"finelake sources add: {args.path}: no such file or folder", file=sys.stderr)
        return 2
    proposal = propose(args.path, args.name)
    print(f"{args.path}:")
    for note in proposal.notes:
        print(f"  inferred: {note}")
    for problem in proposal.problems + proposal.todo:
        print(f"  could not infer: {problem}")
    if proposal.problems:
        print(f"finelake sources add: no source YAML for {args.path}: {len(proposal.problems)} thing(s) could not be "
              f"inferred (above); write it by hand in the user folder", file=sys.stderr)
        return 2
    try:
        source = SourceConfig.model_validate(proposal.spec)
    except ValidationError as err:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'source'}: {e['msg']}" for e in err.errors())
        print(f"finelake sources add: no usable source YAML for {args.path} ({reasons})", file=sys.stderr)
        return 2
    text = yaml.safe_dump({k: v for k, v in proposal.spec.items() if k != "name"}, sort_keys=False, allow_unicode=True)
    print(f"\nproposed conf/sources/{args.name}.yaml:\n" + "".join(f"  {line}\n" for line in text.splitlines()))
    kept, rejected = dry_run(source, text_policy(config), args.rows)
    print(f"dry run of the first {kept + rejected} records: {kept} kept, {rejected} rejected")
    if args.dry_run:
        return 0
    target = Path(args.user_conf).expanduser() if args.user_conf else default_user_conf_dir()
    path = target / "sources" / f"{args.name}.yaml"
    if path.exists() and not args.overwrite:
        print(f"finelake sources add: {path} exists; --overwrite replaces it", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    problems = "".join(f"# TODO: {item}\n" for item in proposal.todo)
    path.write_text(f"# proposed by finelake sources add {args.path}\n{problems}{text}")
    print(f"wrote {path}; run it with: finelake run ingest --set ingest.sources=[{args.name}]")
    return 0


def dry_run(source: SourceConfig, policy, rows: int) -> tuple[int, int]:
    """The first `rows` records through ingest's reader and normalize's mapping and text rules, printed."""
    root = Path(source.path)
    files = [root] if root.is_file() else sorted(root.rglob(source.file_pattern or "*"))
    kept = rejected = 0
    for file in files:
        for record in read_file(str(file), file.name, source):
            if kept + rejected >= rows:
                return kept, rejected
            reason, detail = record.reason, record.detail
            chat = None
            if reason is None:
                chat = chat_turns(record.fields, file.name, record.row_index, source, policy)
                reason, detail = chat["reason"], chat["detail"]
            where = f"{file.name} row {record.row_index} key {record.source_key}"
            if reason:
                rejected += 1
                print(f"  {where}: rejected, {reason}: {detail}")
                continue
            kept += 1
            missing = sum(1 for image in record.images
                          if image.data is None and not ((local := local_path(image.path or "")) and Path(local).exists()))
            first = chat["turns"][0]
            print(f"  {where}: {len(record.images)} image(s){f' ({missing} not found)' if missing else ''}, "
                  f"{len(chat['turns'])} turn(s); user: {first['user'][:70]!r} -> assistant: {first['assistant'][:50]!r}")
    return kept, rejected
