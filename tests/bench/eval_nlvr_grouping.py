"""How the dedup rules group NLVR's six renderings of a scene (no Spark; a measurement, not a target).

NLVR (../shared/data/nlvr) pairs each statement with six images of one structured scene: the same
three boxes and objects, the boxes in another order. Whether those are near-duplicates is a
policy question; this script reports what each rule of tests/bench/eval_dedup_quality.py does
with them, on the same signals the stage uses (pHash plain and trimmed, SSCD, the pixel check):

- per scene: how many groups its six renderings fall into (1 = all six grouped together);
- within-scene pairs linked (pairwise, after clustering as the stage does) and cross-scene pairs linked
  (renderings of different statements grouped together: synthetic scenes look alike).

    python tests/bench/eval_nlvr_grouping.py [--statements 200] [--seed 0] [--cache /tmp/nlvr-signals.npz]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from tests.bench import eval_dedup_quality as quality  # noqa: E402
from udfs.planted import PlantedImage  # noqa: E402

NLVR = PROJECT.parent / "shared" / "data" / "nlvr"
RENDERINGS = 6


def scenes(statements: int, seed: int) -> list[PlantedImage]:
    """The six renderings of `statements` randomly chosen dev statements (all six present)."""
    listing = [json.loads(line) for line in (NLVR / "dev.jsonl").read_text().splitlines() if line.strip()]
    images = []
    for s in random.Random(seed).sample(listing, min(statements, len(listing))):
        paths = [NLVR / "images" / s["directory"] / f"dev-{s['identifier']}-{i}.png" for i in range(RENDERINGS)]
        if all(p.is_file() for p in paths):
            images += [PlantedImage(f"{s['identifier']}-{i}", s["identifier"], "nlvr", str(i), p.read_bytes())
                       for i, p in enumerate(paths)]
    return images


def grouping(images: list[PlantedImage], scorer: quality.Scorer, rule: quality.Rule) -> dict:
    n = len(images)
    labels = quality.clusters([im.image_id for im in images], *scorer.graded_edges(rule))
    scene = np.array([im.original_id for im in images])
    upper = np.triu(np.ones((n, n), bool), 1)
    together = (labels[:, None] == labels[None, :]) & upper
    same = (scene[:, None] == scene[None, :]) & upper
    per_scene = Counter(len(set(labels[scene == s])) for s in sorted(set(scene)))
    return {
        "scenes": len(set(scene)),
        "all_six_in_one_group": per_scene.get(1, 0) / len(set(scene)),
        "groups_per_scene": sum(k * v for k, v in per_scene.items()) / len(set(scene)),
        "within_scene_linked": int((together & same).sum()) / max(int(same.sum()), 1),
        "cross_scene_pairs": int((together & ~same).sum()),
        "largest_group": int(np.bincount(labels).max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="signals file, reused when the set matches")
    args = parser.parse_args(argv)
    if not (NLVR / "dev.jsonl").is_file():
        print(f"skipped: {NLVR} is absent")
        return 0
    start = time.time()
    images = scenes(args.statements, args.seed)
    print(f"{len(images) // RENDERINGS} NLVR dev statements, {len(images)} renderings")
    scorer = quality.Scorer(images, quality.signals(images, args.cache, trimmed=False))
    rules = [r for r in quality.BASELINES if not r.trim] + [quality.configured_rule()]  # SSCD of plain images
    rows = [(rule.name, grouping(images, scorer, rule)) for rule in rules]
    print(quality.table("NLVR scenes under each rule", rows, [
        ("all_six_in_one_group", "all six"), ("groups_per_scene", "groups"), ("within_scene_linked", "in-scene"),
        ("cross_scene_pairs", "x-scene"), ("largest_group", "largest")]))
    print(f"\npixel checks: {scorer.checked} pairs, {1000 * scorer.check_seconds / max(scorer.checked, 1):.1f} ms each;"
          f" total {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
