"""export: a version of gold.curated as files training reads, written by the executors in parallel.

hf: HF datasets parquet shards `data/train-00000-of-000NN.parquet` (FineVision's `images`, `texts`,
ratings per turn) and a README.md dataset card that `datasets.load_dataset` reads; webdataset: tar
shards of `{key}.jpg` + `{key}.json` and `shards.json`; llava: JSON shards + `images/`. The folder's
finelake_export.json says what it holds: exporting the same version again writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from jobs.ops.exports import (MANIFEST, ExportError, Manifest, card_figures, curated_rows, prepare_folder, with_images,
                              write_export, write_text)
from jobs.runtime.config import absolute_location
from jobs.runtime.session import LakeInUse, get_session
from jobs.runtime.stage import add_config_flags, config_from_args
from jobs.runtime.tables import Lake
from schemas import curated, silver_images
from udfs.exports import FORMATS, dataset_card


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="hf (parquet + card), webdataset (tar) or llava (JSON)")
    parser.add_argument("--to", required=True, metavar="PATH", help="export folder: local or a URI pyarrow can write (s3://, gs://, ...)")
    parser.add_argument("--subset", default=None, metavar="NAME", help="only the samples in this difficulty subset (gold.curated.subsets)")
    parser.add_argument("--version", type=int, default=None, metavar="N", help="gold.curated version to export (default: the latest)")
    parser.add_argument("--overwrite", action="store_true", help="replace what the folder holds (refused otherwise)")
    add_config_flags(parser)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, "export", stage=False)
    if config is None:
        return 2
    target = absolute_location(args.to)
    try:
        lake = Lake(get_session(config), config)
        rows, version = curated_rows(lake, args.version, args.subset)
        manifest = Manifest(args.format, curated.CONTRACT.logical_name, version, args.subset,
                            getattr(config.publish.shard_mb, args.format))
        if not prepare_folder(target, manifest, args.overwrite):
            print(f"finelake export: {target} already holds {args.format} of gold.curated v{version}; nothing to do")
            return 0
        started = time.monotonic()
        manifest.shards = write_export(rows.transform(with_images, lake.read_current(silver_images.CONTRACT)),
                                       args.format, target, manifest.shard_mb)
    except (ExportError, LakeInUse) as err:
        print(f"finelake export: {err}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    manifest.rows, manifest.bytes = (sum(s[k] for s in manifest.shards) for k in ("rows", "bytes"))
    if args.format == "webdataset":  # wids' shard index: readers get sizes without opening the tars
        write_text(target, "shards.json", json.dumps({"__kind__": "wids-shard-index-v1", "wids_version": 1,
                                                      "name": config.publish.name, "shardlist": [
                                                          {"url": s["file"], "nsamples": s["rows"]} for s in manifest.shards]},
                                                     indent=1))
    figures = card_figures(lake, rows, config)
    manifest.policy_hashes = figures["policy_hashes"]
    write_text(target, "README.md", dataset_card(figures, vars(manifest)))
    write_text(target, MANIFEST, json.dumps(vars(manifest), indent=1, sort_keys=True))
    print(f"finelake export: {manifest.rows} samples of gold.curated v{version} in {len(manifest.shards)} {args.format} "
          f"shards ({manifest.bytes / 1e6:.1f} MB, {seconds:.1f} s, {manifest.bytes / 1e6 / max(seconds, 1e-9):.1f} MB/s) "
          f"-> {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finelake export", description=__doc__.split("\n\n")[0])
    add_flags(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
