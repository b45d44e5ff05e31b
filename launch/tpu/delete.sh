#!/usr/bin/env bash
# Delete the slice and its queued resource (checkpoints in $BUCKET stay). DRY_RUN=1 prints.
# shellcheck source=launch/tpu/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run gcloud compute tpus queued-resources delete "$QUEUED_RESOURCE" "${common_flags[@]}" \
  --force --quiet
