"""Benchmark: the embed stage through Spark (jobs.embed.embed) vs a plain onnxruntime loop.

Both embed the same distinct images (the demo photos rescaled and cropped into variants, half
JPEG and half PNG, as in bench_normalize) with the configured settings (embed: backend onnx,
model, batch_size, image_size, preprocessing). The plain loop calls the project's own per-worker
code, udfs.embedding.embed_images (pixels, OnnxSSCD, l2_normalized), directly in this process.
Fairness on the same cores: Spark local[--cores] runs one Python worker per core, each with
embed.threads intra-op threads; the plain loop's session gets the same total (--cores x
embed.threads) intra-op threads, and decodes and resizes on one thread, as each Spark worker
does. Each side runs once as a warm-up (model loads, JIT, Python workers; the two sides' vectors
are compared there), then reports its best of --repeats.
Prints images/s for both and the ratio Spark/plain (target >= 0.85).

    python tests/bench/bench_embed.py [--images 256] [--cores 2] [--repeats 2]
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from bench_normalize import image_bench_setup, timed, variants  # the script's folder is on sys.path when run as a script

from jobs.ops.embeddings import embed, embedding_settings
from jobs.runtime.session import get_session
from udfs.embedding import embed_images


def main() -> None:
    args, workdir, config = image_bench_setup(__doc__, 256)
    settings = embedding_settings(config)
    if settings.backend != "onnx":
        raise SystemExit("bench_embed compares against a plain onnxruntime loop: embed.backend must be onnx")
    partitions = config.embed.partitions or 4 * args.cores  # the stage's default: 4 x the default parallelism
    loop_threads = args.cores * settings.threads
    images = variants(args.images)
    pq.write_table(pa.table({"image_id": [f"v{n:05d}" for n in range(len(images))], "bytes": images}),
                   workdir / "images.parquet", row_group_size=16)
    print(f"{len(images)} distinct images, {sum(map(len, images)) / 1e6:.0f} MB; model {settings.model_id}, "
          f"batch {settings.batch_size}, {partitions} partitions")

    spark = get_session(config)
    stage = embed(spark.read.parquet(str(workdir / "images.parquet")), settings, partitions)
    loop_settings = dataclasses.replace(settings, threads=loop_threads)  # its own cached OnnxSSCD session

    warm = {r.image_id: r for r in stage.collect()}
    errors = [r.error for r in warm.values() if r.error]
    spark_vectors = np.array([warm[f"v{n:05d}"].vector for n in range(len(images))], dtype=np.float32)
    loop_vectors = embed_images(images, loop_settings)
    agreement = np.sum(spark_vectors * loop_vectors, axis=1).min()
    print(f"warm-up: {len(errors)} errors; smallest cosine between the two sides' vectors {agreement:.6f}")

    loop_seconds = min(timed(lambda: embed_images(images, loop_settings)) for _ in range(args.repeats))
    spark_seconds = min(timed(lambda: stage.write.format("noop").mode("overwrite").save()) for _ in range(args.repeats))

    loop_rate, spark_rate = len(images) / loop_seconds, len(images) / spark_seconds
    print(f"plain onnxruntime loop, 1 process x {loop_threads} threads  : {loop_rate:6.2f} images/s ({loop_seconds:.1f} s)")
    print(f"Spark embed stage, {args.cores} workers x {settings.threads} thread(s)     : {spark_rate:6.2f} images/s ({spark_seconds:.1f} s)")
    print(f"ratio Spark/plain (target >= 0.85)          : {spark_rate / loop_rate:6.2f}")
    spark.stop()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
