#!/usr/bin/env bash
# Copy this checkout (tracked files) to every worker, install Python 3.11 + jax[tpu] there,
# and copy the prepared corpus from $BUCKET/prepared/ to each worker's local disk.
#   BUCKET=gs://my-bucket launch/tpu/install.sh
# Make the data first (locally) and upload it: `gcloud storage cp -r runs/wiki/prepared $BUCKET/`.
# PREPARED_DIR: where the config expects the prepared data [runs/wiki/prepared];
# SKIP_DATA=1 skips the copy. DRY_RUN=1 prints the commands.
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

if [[ ${SKIP_DATA:-0} != 1 ]]; then
  on_all_workers "mkdir -p ~/$REMOTE_DIR/$PREPARED_DIR && gcloud storage rsync -r $BUCKET/prepared ~/$REMOTE_DIR/$PREPARED_DIR"
fi
