#!/usr/bin/env bash
# Start `make pretrain-tpu CONFIG=…` on all workers at once (JAX's multi-controller runtime:
# one process per host), with checkpoints under $BUCKET/runs/$RUN_NAME/checkpoints (orbax
# writes gs:// directly) and logs, TensorBoard events and the plot in ~/jaxbert/runs/$RUN_NAME
# on worker 0.
#   BUCKET=gs://my-bucket CONFIG=configs/pretrain/phase1_seq128.py:large,lamb launch/tpu/run.sh
# Extra `--config.key=value` arguments are passed on, e.g. --config.train.grad_accum_steps=8.
# MESH=data,fsdp,tensor (e.g. 1,-1,1 for FSDP) overrides the config's mesh. The processes run
# detached (nohup) and log to ~/jaxbert/train.log on each worker: launch/tpu/logs.sh follows it.
# FOREGROUND=1 keeps the ssh session attached instead. DRY_RUN=1 prints the commands.
# Each worker first compiles the train step for its slice with the TPU compiler on its CPU
# (`jaxbert plan --target current`) and stops in one line if the config does not fit;
# TPU_CHECK=0 skips that check (docs/tpu.md).
# The training data is read from $BUCKET/prepared, each host its contiguous block of documents
# (data.host_documents=contiguous); LOCAL_COPY=1 reads the config's own prepared_dir instead
# (the copy install.sh LOCAL_COPY=1 made on every worker's disk).
# shellcheck source=launch/tpu/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need_bucket

args=("--config.output_dir=runs/$RUN_NAME" "--config.checkpoint.directory=$BUCKET/runs/$RUN_NAME/checkpoints"
  "--config.distributed.mode=on")
if [[ ${LOCAL_COPY:-0} != 1 ]]; then
  args+=("--config.data.prepared_dir=$BUCKET/prepared" "--config.data.host_documents=contiguous")
fi
if [[ -n ${MESH:-} ]]; then
  IFS=, read -r mesh_data mesh_fsdp mesh_tensor <<<"$MESH"
  args+=("--config.mesh.data=$mesh_data" "--config.mesh.fsdp=$mesh_fsdp" "--config.mesh.tensor=$mesh_tensor")
fi
args+=("$@")
make_cmd="make pretrain-tpu TPU_CHECK=${TPU_CHECK:-1} CONFIG=$(shell_quote "$CONFIG") ARGS=$(shell_quote "${args[*]}")"
if [[ ${FOREGROUND:-0} == 1 ]]; then
  remote="cd ~/$REMOTE_DIR && $make_cmd"
else
  remote="cd ~/$REMOTE_DIR && nohup $make_cmd > train.log 2>&1 < /dev/null &"
fi
on_all_workers "$remote"
