"""Speed of near-duplicate work: the `dedup` and `decontaminate` stages end to end on ~1,000 images,
the pixel check per pair on one core, and a plain one-process PDQ pass over the same images.

The images: originals (the demo's real photos and pages rendered by udfs/planted_disc.py, two
drawings of every template) and copies of each made by DISC21's edit families, one family per copy,
drawn in turn; stored by `normalize` as silver.images holds them. The benchmark for decontamination
is the first `--benchmark` originals. Every sample has its own text, so only images can group.

Printed:
- the pixel check on one core, as the stage splits it: preparing an image once (decode, trim, both
  views' features, to bytes), loading it in a check's batch, and checking a pair, over `--pairs`
  candidate pairs (half copies, half one-template look-alikes); target <= 10 ms a pair;
- `dedup` wall time (2 cores, with the gate and MLflow, after ingest, normalize and embed of the
  same images), target <= 120 s for 1,000 images; `decontaminate` against the benchmark, <= 90 s;
- the baseline: PDQ hashes of every image with their 8 rotations and mirrors (the `pdqhash`
  package), all pairs within PDQ_RADIUS bits, grouped by union-find, in this one process;
- pairwise precision and recall of both, against the planted truth, and their time ratio.

    python tests/bench/bench_dedup_speed.py [--images 1000] [--benchmark 100] [--pairs 200] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PROJECT = Path(__file__).resolve().parents[2]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from jobs import registry  # noqa: E402
from jobs.runtime.config import default_conf_dir, load_config  # noqa: E402
from jobs.runtime.session import get_session  # noqa: E402
from tests.bench.eval_dedup_quality import connected, photo_originals  # noqa: E402
from udfs import planted, planted_disc  # noqa: E402
from udfs.verify import Prepared, prepared, verify  # noqa: E402

PDQ_RADIUS = 31  # bits of 256: the PDQ authors' match threshold
TARGET_PAIR_MS, TARGET_DEDUP_S, TARGET_DECONTAMINATE_S = 10.0, 120.0, 90.0


def planted_images(total: int, seed: int) -> list[planted.PlantedImage]:
    """Originals and one copy per edit family in turn, about `total` images in all."""
    per_original = 1 + 7
    templates = max(1, (total // per_original - 18) // 12 + 1)
    originals = photo_originals() + planted_disc.render_templates(templates, seed)
    families = itertools.cycle(planted_disc.FAMILIES)
    images = []
    for original_id, kind, data in originals[: total // per_original]:
        images.append(planted.PlantedImage(original_id, original_id, kind, "original", data))
        source = planted.decode(data)
        for _ in range(per_original - 1):
            family = next(families)
            edit, fmt = planted_disc.FAMILIES[family]
            rng = random.Random(f"{seed}-{original_id}-{family}")
            images.append(planted.PlantedImage(f"{original_id}~{family}", original_id, kind, family,
                                               planted.encode(edit(source, rng), fmt, rng.randint(55, 85))))
    return images


def write_source(path: Path, images: list[planted.PlantedImage]) -> None:
    rows = [{"id": im.image_id, "image": {"bytes": im.data, "path": f"{k}.png"},
             "question": f"Describe picture {k} of the speed benchmark.", "answer": f"Picture {k}."}
            for k, im in enumerate(images)]
    path.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path / "data.parquet")


SOURCE_YAML = ("format: hf_parquet\npath: {path}\nkey: '{{{{ id }}}}'\nimages: {{column: image}}\n"
               "turns:\n  - user: '{{{{ question }}}}'\n    assistant: '{{{{ answer }}}}'\nlicense: bench\n")


def pairwise(labels: dict[str, str], truth: dict[str, str]) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping (key -> group) against the truth (key -> original)."""
    keys = sorted(truth)
    predicted = np.array([labels.get(k, k) for k in keys])
    actual = np.array([truth[k] for k in keys])
    upper = np.triu(np.ones((len(keys), len(keys)), bool), 1)
    same_predicted = (predicted[:, None] == predicted[None, :]) & upper
    same_actual = (actual[:, None] == actual[None, :]) & upper
    hits = int((same_predicted & same_actual).sum())
    return hits / max(int(same_predicted.sum()), 1), hits / max(int(same_actual.sum()), 1)


def pdq_baseline(images: dict[str, bytes]) -> tuple[dict[str, str], float]:
    """PDQ with its dihedral variants, all pairs, union-find: (key -> group, seconds)."""
    import pdqhash

    started = time.monotonic()
    keys = sorted(images)
    plain, turned = [], []
    for key in keys:
        variants, _ = pdqhash.compute_dihedral(np.asarray(planted.decode(images[key])))
        bits = np.packbits(np.array(variants, dtype=np.uint8), axis=1)  # (8, 32)
        plain.append(bits[0])
        turned.append(bits)
    plain, turned = np.array(plain), np.array(turned)  # (n, 32), (n, 8, 32)
    distance = np.full((len(keys), len(keys)), 256)
    for k in range(8):
        xor = np.bitwise_xor(turned[:, k][:, None, :], plain[None, :, :])
        distance = np.minimum(distance, np.unpackbits(xor, axis=2).sum(axis=2))
    edges = np.triu((distance <= PDQ_RADIUS) | (distance.T <= PDQ_RADIUS), 1)
    labels = connected(len(keys), edges)
    return {key: keys[label] for key, label in zip(keys, labels)}, time.monotonic() - started


def pixel_check_cost(images: list[planted.PlantedImage], pairs: int, seed: int) -> tuple[float, float, float, list[float]]:
    """As the stage does it, on one core: (ms to prepare an image with both views' features into bytes,
    ms to load those bytes, ms per pair check, per-pair ms)."""
    rng = random.Random(seed)
    by_original: dict[str, list[planted.PlantedImage]] = {}
    for im in images:
        by_original.setdefault(im.original_id, []).append(im)
    copies = [(group[0], other) for group in by_original.values() for other in group[1:]]
    look_alikes = [(by_original[o][0], by_original[o[:-1] + "b"][rng.randrange(len(by_original[o[:-1] + "b"]))])
                   for o in by_original if o.endswith("a") and o[:-1] + "b" in by_original]
    chosen = rng.sample(copies, min(pairs // 2, len(copies))) + rng.sample(look_alikes, min(pairs // 2, len(look_alikes)))
    ready, prepare_ms, load_ms = {}, [], []
    for im in {im.image_id: im for pair in chosen for im in pair}.values():
        began = time.perf_counter()
        carried = prepared(im.data).to_bytes()
        loading = time.perf_counter()
        ready[im.image_id] = Prepared.from_bytes(carried)
        prepare_ms.append(1000 * (loading - began))
        load_ms.append(1000 * (time.perf_counter() - loading))
    check_ms = []
    for a, b in chosen:
        began = time.perf_counter()
        verify(ready[a.image_id], ready[b.image_id])
        check_ms.append(1000 * (time.perf_counter() - began))
    return statistics.mean(prepare_ms), statistics.mean(load_ms), statistics.mean(check_ms), check_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--benchmark", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="finelake_bench_dedup_"))
    images = planted_images(args.images, args.seed)
    originals = [im for im in images if im.transform == "original"]
    print(f"{len(images)} images: {len(originals)} originals ({sum(im.kind == 'photo' for im in originals)} photos), "
          f"{len(images) - len(originals)} copies; benchmark: {min(args.benchmark, len(originals))} originals")

    prepare_ms, load_ms, pair_ms, each = pixel_check_cost(images, args.pairs, args.seed)
    verdict = "meets" if pair_ms <= TARGET_PAIR_MS else "misses"
    print(f"pixel check, one core: prepare an image once {prepare_ms:.1f} ms (decode, trim, both views' features, "
          f"to bytes); load it in a check's batch {load_ms:.1f} ms; check a pair {pair_ms:.1f} ms mean, "
          f"{np.percentile(each, 90):.1f} ms p90 over {len(each)} pairs; {verdict} the {TARGET_PAIR_MS:.0f} ms target")

    conf = workdir / "conf"
    shutil.copytree(default_conf_dir(), conf)
    write_source(workdir / "train", images)
    write_source(workdir / "bench", originals[: args.benchmark])
    (conf / "sources" / "speed_train.yaml").write_text(SOURCE_YAML.format(path=workdir / "train"))
    with (conf / "benchmarks.yaml").open("a") as listing:
        listing.write("  speed_bench:\n" + "".join(f"    {line}\n" for line in SOURCE_YAML.format(
            path=workdir / "bench").splitlines()))
    overrides = [f"paths.lake={workdir / 'lake'}", "spark.master=local[2]", "spark.conf.spark.sql.shuffle.partitions=8",
                 "spark.conf.spark.driver.memory=6g", "ingest.sources=[speed_train]",
                 "decontaminate.benchmarks=[speed_bench]"]
    flags = [*(arg for item in overrides for arg in ("--set", item)), "--conf", str(conf)]
    spark = get_session(load_config("local", overrides, conf))
    seconds = {}
    for name in ("ingest", "normalize", "embed", "dedup", "decontaminate"):
        began = time.monotonic()
        assert registry.BY_NAME[name].main(flags) == 0, name
        seconds[name] = time.monotonic() - began
    print("stages (s): " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))

    keys = spark.sql(
        "SELECT c.cluster, s.source_key FROM gold.duplicate_components c "
        "JOIN (SELECT image_id, explode(source_refs) AS ref FROM silver.images) i ON c.member_id = i.image_id "
        "JOIN silver.samples s ON s.sample_id = i.ref.sample_id WHERE c.kind = 'image'").collect()
    stage_labels = {r.source_key: r.cluster for r in keys}
    truth = {im.image_id: im.original_id for im in images}
    stage_p, stage_r = pairwise(stage_labels, truth)
    flagged = {r.source_key for r in spark.sql(
        "SELECT DISTINCT s.source_key FROM gold.contamination c JOIN silver.samples s USING (sample_id) "
        "WHERE c.kind = 'image'").collect()}
    leaking = {im.image_id for im in images if im.original_id in {o.image_id for o in originals[: args.benchmark]}}
    pdq_labels, pdq_seconds = pdq_baseline({im.image_id: im.data for im in images})
    pdq_p, pdq_r = pairwise(pdq_labels, truth)

    print(f"dedup: {seconds['dedup']:.0f} s on 2 cores, pairwise precision {stage_p:.3f} recall {stage_r:.3f}; "
          f"{'meets' if seconds['dedup'] <= TARGET_DEDUP_S else 'misses'} the {TARGET_DEDUP_S:.0f} s target")
    print(f"decontaminate: {seconds['decontaminate']:.0f} s, {len(flagged & leaking)} of {len(leaking)} leaking images "
          f"flagged, {len(flagged - leaking)} clean ones flagged; "
          f"{'meets' if seconds['decontaminate'] <= TARGET_DECONTAMINATE_S else 'misses'} the "
          f"{TARGET_DECONTAMINATE_S:.0f} s target")
    print(f"baseline PDQ (dihedral, all pairs <= {PDQ_RADIUS} bits, one process): {pdq_seconds:.1f} s, "
          f"precision {pdq_p:.3f} recall {pdq_r:.3f}; dedup / baseline time ratio {seconds['dedup'] / pdq_seconds:.1f}")
    spark.stop()


if __name__ == "__main__":
    main()
