"""Benchmark: the normalize stage's image step through Spark vs a plain single-process Pillow loop.

Both work on the same distinct images (real photos from the demo packages, rescaled and cropped
into distinct variants, half JPEG and half PNG): decode, RGB, cap the longest side, encode, hash.
Prints images/s per core for both and their ratio (target: Spark >= 0.7 of the plain loop).
Steady state is what a job over millions of images sees, so the Spark stage first runs once
over all images (JIT-compiling the JVM's paths); each side then reports its best of --repeats.

    python tests/bench/bench_normalize.py [--images 600] [--cores 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from jobs.ops.samples import image_policy, normalize_images
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session
from udfs import demo_sources


def variants(count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    photos = [Image.open(io.BytesIO(p.data)).convert("RGB") for p in demo_sources.load_photos()]
    out = []
    for n in range(count):
        photo = photos[n % len(photos)]
        scale = rng.uniform(0.6, 2.6)
        size = (int(photo.width * scale), int(photo.height * scale))
        left, top = rng.randint(0, 20), rng.randint(0, 20)
        image = photo.resize(size, Image.Resampling.BILINEAR).crop((left, top, size[0] - rng.randint(0, 20), size[1] - rng.randint(0, 20)))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG" if n % 2 else "PNG", quality=92)
        out.append(buffer.getvalue())
    return out


def plain_loop(images: list[bytes], max_side: int, quality: int) -> None:
    for data in images:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        if max(image.size) > max_side:
            scale = max_side / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC, reducing_gap=3.0)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, subsampling=0)
        hashlib.sha256(buffer.getvalue()).hexdigest()


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def image_bench_setup(description: str, images: int):
    """(args, workdir, config) of an image benchmark: --images, --cores, --repeats, --set; a temporary lake."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=images)
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N]")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as for finelake")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="finelake-bench-"))
    config = load_config("local", [f"paths.lake={workdir}/lake", f"spark.master=local[{args.cores}]",
                                   f"spark.conf.spark.sql.shuffle.partitions={args.cores * 4}", *args.set])
    return args, workdir, config


def main() -> None:
    args, workdir, config = image_bench_setup(__doc__, 600)
    policy = image_policy(config)
    images = variants(args.images)
    rows = [{"images": [{"path": f"v{n}", "bytes": data, "sha256": hashlib.sha256(data).hexdigest()}]} for n, data in enumerate(images)]
    pq.write_table(pa.Table.from_pylist(rows), workdir / "records.parquet", row_group_size=16)
    megapixels = sum(Image.open(io.BytesIO(d)).width * Image.open(io.BytesIO(d)).height for d in images) / 1e6
    print(f"{len(images)} distinct images, {megapixels:.0f} Mpx, {sum(map(len, images)) / 1e6:.0f} MB")

    spark = get_session(config)
    records = spark.read.parquet(str(workdir / "records.parquet"))
    stage = normalize_images(records, policy, 8 * args.cores)
    run_stage = lambda: stage.write.format("noop").mode("overwrite").save()  # noqa: E731
    run_stage()  # warm-up

    loop_seconds = min(timed(lambda: plain_loop(images, policy.max_side, policy.quality)) for _ in range(args.repeats))
    spark_seconds = min(timed(run_stage) for _ in range(args.repeats))

    loop_rate = len(images) / loop_seconds
    spark_rate = len(images) / spark_seconds / args.cores
    print(f"plain Pillow loop, 1 core : {loop_rate:7.1f} images/s per core ({loop_seconds:.1f} s)")
    print(f"Spark stage, {args.cores} cores    : {spark_rate:7.1f} images/s per core ({spark_seconds:.1f} s wall)")
    print(f"ratio (target >= 0.70)    : {spark_rate / loop_rate:7.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
