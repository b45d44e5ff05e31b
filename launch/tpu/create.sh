#!/usr/bin/env bash
# Create a TPU VM or pod slice through a queued resource and wait until it is ACTIVE.
#   PROJECT=my-proj ZONE=us-central2-b ACCELERATOR_TYPE=v4-32 launch/tpu/create.sh
# See common.sh for all settings; DRY_RUN=1 prints the commands.
# shellcheck source=launch/tpu/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

extra=()
[[ ${SPOT:-0} == 1 ]] && extra+=(--spot)
run gcloud compute tpus queued-resources create "$QUEUED_RESOURCE" "${common_flags[@]}" \
  --node-id="$TPU_NAME" --accelerator-type="$ACCELERATOR_TYPE" \
  --runtime-version="$RUNTIME_VERSION" "${extra[@]+"${extra[@]}"}"

describe=(gcloud compute tpus queued-resources describe "$QUEUED_RESOURCE" "${common_flags[@]}"
  --format="value(state.state)")
if [[ $DRY_RUN == 1 ]]; then
  run "${describe[@]}" # polled until ACTIVE
  exit 0
fi
while true; do
  state=$("${describe[@]}")
  echo "queued resource $QUEUED_RESOURCE: $state"
  case $state in
    ACTIVE) break ;;
    FAILED | SUSPENDED) exit 1 ;;
  esac
  sleep 30
done
