#!/usr/bin/env bash
# Follow the training log of one worker (WORKER=0, the one that writes metrics) or all
# (WORKER=all). Ctrl-C stops following, not training. DRY_RUN=1 prints the command.
# shellcheck source=launch/tpu/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${common_flags[@]}" --worker="${WORKER:-0}" \
  --command="tail -n +1 -F ~/$REMOTE_DIR/train.log"
