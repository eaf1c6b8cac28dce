#!/usr/bin/env bash
# Run one finelake command on Dataproc Serverless: gcloud dataproc batches submit pyspark.
#   scripts/dataproc_submit.sh run ingest                     # a curation stage, CPU
#   scripts/dataproc_submit.sh run embed                      # embed and the teacher stages get GPU properties
#   scripts/dataproc_submit.sh export --format hf --to gs://my-bucket/finelake/exports/hf
#   DRY_RUN=1 scripts/dataproc_submit.sh run publish          # print the gcloud command only
# Everything after the script name is a `finelake` command line (finelake --help); the variables
# below are what a user adapts. Build the wheel first: python3 -m pip wheel --no-deps -w dist .
set -euo pipefail

PROJECT="${PROJECT:-CHANGE-ME-project}"
REGION="${REGION:-europe-west4}"
BUCKET="${BUCKET:-gs://CHANGE-ME-bucket/finelake}"       # wheel, conf overlay, lake (conf/dataproc.yaml)
RUNTIME_VERSION="${RUNTIME_VERSION:-3.0}"                 # Dataproc Serverless runtime: Spark 4, Scala 2.13
DELTA_PACKAGE="${DELTA_PACKAGE:-io.delta:delta-spark_2.13:4.0.0}"  # the Scala 2.13 artifact for the runtime's Spark
WHEEL="${WHEEL:-$(ls dist/finelake-*.whl 2>/dev/null | tail -1)}"
CONF_OVERLAY="${CONF_OVERLAY:-}"                          # a folder with base.yaml + dataproc.yaml (default: packaged conf/)
# finelake's Python dependencies (pydantic, mlflow, great_expectations, torch, ...): an image built
# FROM the runtime's base with `pip install dist/finelake-*.whl` (the wheel is also shipped as --py-files).
CONTAINER_IMAGE="${CONTAINER_IMAGE:-CHANGE-ME-region-docker.pkg.dev/CHANGE-ME-project/finelake/finelake:latest}"
GPU_STAGES="embed caption rate distill verify route difficulty"
GPU_TYPE="${GPU_TYPE:-nvidia-l4}"

if [[ $# -eq 0 ]]; then
  sed -n '2,8p' "$0"; exit 2
fi
[[ -n "$WHEEL" ]] || { echo "no wheel in dist/: python3 -m pip wheel --no-deps -w dist ." >&2; exit 2; }

properties="spark.jars.packages=${DELTA_PACKAGE}"
properties+=",spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension"
properties+=",spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"
if [[ "${1:-}" == "run" && " ${GPU_STAGES} " == *" ${2:-} "* ]]; then
  properties+=",spark.dataproc.driver.compute.tier=premium,spark.dataproc.executor.compute.tier=premium"
  properties+=",spark.dataproc.executor.resource.accelerator.type=${GPU_TYPE}"
  properties+=",spark.executor.resource.gpu.amount=1,spark.task.resource.gpu.amount=0.25"
fi

args=("$@" --env dataproc)
files=()
if [[ -n "$CONF_OVERLAY" ]]; then
  files=(--files "$(ls "$CONF_OVERLAY"/*.yaml | paste -sd, -)")
  args+=(--conf .)  # the overlay's files land in the driver's working directory
fi

command=(gcloud dataproc batches submit pyspark "$(dirname "$0")/dataproc_entry.py"
  --project "$PROJECT" --region "$REGION" --version "$RUNTIME_VERSION"
  --deps-bucket "$BUCKET/deps" --container-image "$CONTAINER_IMAGE" --py-files "$WHEEL" "${files[@]}"
  --properties "$properties"
  -- "${args[@]}")
if [[ -n "${DRY_RUN:-}" ]]; then
  printf '%q ' "${command[@]}"; echo
else
  "${command[@]}"
fi
