#!/usr/bin/env bash
# Copy this checkout (tracked files) to every worker and install Python 3.11 + jax[tpu] there.
#   BUCKET=gs://my-bucket launch/tpu/install.sh
# The prepared corpus stays in the bucket: run.sh points data.prepared_dir at $BUCKET/prepared
# and each host reads only its own documents' shards from there (docs/object-storage.md), so
# nothing is copied. Make the data first (locally) and upload it:
# `jaxbert data prepare ... --out $BUCKET/prepared` (or `gcloud storage cp -r DIR $BUCKET/prepared`).
# LOCAL_COPY=1 (small corpora only: every worker gets the whole corpus) also rsyncs
# $BUCKET/prepared to PREPARED_DIR [runs/wiki/prepared] on each worker's disk; then run.sh
# needs LOCAL_COPY=1 too. DRY_RUN=1 prints the commands.
# shellcheck source=launch/tpu/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need_bucket
PREPARED_DIR=${PREPARED_DIR:-runs/wiki/prepared}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
archive=${ARCHIVE:-/tmp/jaxbert-src.tar.gz}

run git -C "$root" archive --format=tar.gz --output="$archive" HEAD
run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:jaxbert-src.tar.gz" "${common_flags[@]}" \
  --worker=all

setup="set -e; sudo apt-get update -qq && sudo apt-get install -y -qq python3.11 python3.11-venv make"
setup+=" && mkdir -p ~/$REMOTE_DIR && tar -xzf ~/jaxbert-src.tar.gz -C ~/$REMOTE_DIR"
setup+=" && cd ~/$REMOTE_DIR && python3.11 -m venv .venv"
setup+=" && .venv/bin/pip install -q -r requirements-tpu.txt && .venv/bin/pip install -q --no-deps -e ."
on_all_workers "$setup"

if [[ ${LOCAL_COPY:-0} == 1 ]]; then
  on_all_workers "mkdir -p ~/$REMOTE_DIR/$PREPARED_DIR && gcloud storage rsync -r $BUCKET/prepared ~/$REMOTE_DIR/$PREPARED_DIR"
fi
