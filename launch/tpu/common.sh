# shellcheck shell=bash
# Settings and helpers shared by launch/tpu/*.sh (sourced, not run). Configure with env vars:
#
#   PROJECT           GCP project (default: gcloud's configured project)
#   ZONE              e.g. us-central2-b (v4), us-west4-a (v5e)           [us-central2-b]
#   TPU_NAME          node name; the queued resource is "$TPU_NAME-qr"      [jaxbert]
#   ACCELERATOR_TYPE  slice, e.g. v4-8, v4-32, v5litepod-64                 [v4-8]
#   RUNTIME_VERSION   TPU VM image                                          [tpu-ubuntu2204-base]
#   BUCKET            gs://bucket (no trailing /): prepared data and run outputs live there
#   CONFIG            config spec for `jaxbert pretrain`       [configs/pretrain/phase1_seq128.py:base,adamw]
#   RUN_NAME          run directory name under $BUCKET/runs                 [derived from CONFIG]
#   SPOT=1            ask for spot capacity; DRY_RUN=1: print the commands instead of running them
set -euo pipefail

PROJECT=${PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}
ZONE=${ZONE:-us-central2-b}
TPU_NAME=${TPU_NAME:-jaxbert}
QUEUED_RESOURCE=${QUEUED_RESOURCE:-$TPU_NAME-qr}
ACCELERATOR_TYPE=${ACCELERATOR_TYPE:-v4-8}
RUNTIME_VERSION=${RUNTIME_VERSION:-tpu-ubuntu2204-base}
CONFIG=${CONFIG:-configs/pretrain/phase1_seq128.py:base,adamw}
REMOTE_DIR=${REMOTE_DIR:-jaxbert} # on every worker, relative to the login user's home
DRY_RUN=${DRY_RUN:-0}

if [[ -z $PROJECT ]]; then
  echo "launch/tpu: set PROJECT (or run: gcloud config set project ID)" >&2
  exit 2
fi

# "configs/pretrain/phase1_seq128.py:large,lamb" -> "phase1_seq128-large-lamb"
default_run_name() {
  local spec=$1 stem arg
  stem=$(basename "${spec%%:*}" .py)
  arg=${spec#*:}
  [[ $arg == "$spec" ]] && arg="" || arg=-${arg//,/-}
  echo "$stem$arg"
}
RUN_NAME=${RUN_NAME:-$(default_run_name "$CONFIG")}

need_bucket() {
  if [[ ${BUCKET:-} != gs://* ]]; then
    echo "launch/tpu: set BUCKET=gs://your-bucket (data and checkpoints live there)" >&2
    exit 2
  fi
  BUCKET=${BUCKET%/}
}

# One word, quoted for a POSIX shell only when it needs it ('…', with ' as '\'').
shell_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Run a command, or with DRY_RUN=1 print it (one line, copy-pastable) instead.
run() {
  if [[ $DRY_RUN == 1 ]]; then
    local word line=""
    for word in "$@"; do line+="$(shell_quote "$word") "; done
    echo "${line% }"
  else
    "$@"
  fi
}

common_flags=(--project="$PROJECT" --zone="$ZONE")

# Run a shell command on every worker of the slice at once.
on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${common_flags[@]}" --worker=all --command="$1"
}
