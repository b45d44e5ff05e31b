#!/usr/bin/env bash
# Run `jaxbert pretrain` as N cooperating CPU processes on this machine: a stand-in for N
# hosts of a TPU pod or GPU cluster, using JAX's own multi-controller runtime.
#
#   launch/local_multiprocess.sh [--devices-per-process K] N [jaxbert pretrain args...]
#   launch/local_multiprocess.sh 2 --config configs/pretrain/cpu_smoke.py \
#       --config.data.source=synthetic --config.train.num_steps=20 --config.output_dir=/tmp/mp
#
# Process i gets JAXBERT_COORDINATOR=127.0.0.1:PORT (a free port), JAXBERT_NUM_PROCESSES=N,
# JAXBERT_PROCESS_ID=i and JAX_PLATFORMS=cpu; jaxbert.distributed.maybe_initialize reads
# them. Each process sees only its own K local CPU devices (default 1). Output lines are
# prefixed with "[i] ". If any process fails, the others are stopped and the script exits
# with the first failure's status. JAXBERT=path overrides the jaxbert executable.
set -euo pipefail

usage() {
  sed -n '5,6p' "$0" | sed 's/^# *//' >&2
  exit 2
}

devices_per_process=1
while [[ $# -gt 0 && $1 == --devices-per-process* ]]; do
  if [[ $1 == *=* ]]; then devices_per_process=${1#*=}; shift; else devices_per_process=${2:-}; shift 2 || usage; fi
done
[[ $# -ge 1 && $1 =~ ^[1-9][0-9]*$ ]] || usage
num_processes=$1
shift
if [[ $# -gt 0 && $1 == --devices-per-process* ]]; then
  if [[ $1 == *=* ]]; then devices_per_process=${1#*=}; shift; else devices_per_process=${2:-}; shift 2 || usage; fi
fi
[[ $devices_per_process =~ ^[1-9][0-9]*$ ]] || { echo "--devices-per-process needs a positive integer" >&2; exit 2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${JAXBERT:-} ]]; then
  if [[ -x $root/.venv/bin/jaxbert ]]; then JAXBERT=$root/.venv/bin/jaxbert; else JAXBERT=jaxbert; fi
fi
python=$root/.venv/bin/python
[[ -x $python ]] || python=python3

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Replace any device-count flag inherited from the caller (tests often force 8 devices).
xla_flags=""
for flag in ${XLA_FLAGS:-}; do
  [[ $flag == --xla_force_host_platform_device_count=* ]] || xla_flags+="$flag "
done
xla_flags+="--xla_force_host_platform_device_count=$devices_per_process"

echo "local_multiprocess: $num_processes process(es) x $devices_per_process CPU device(s)," \
  "coordinator 127.0.0.1:$port" >&2

pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Give them a moment to exit (they may be blocked in a collective), then insist.
  for _ in $(seq 1 20); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT TERM

for ((i = 0; i < num_processes; i++)); do
  JAXBERT_COORDINATOR=127.0.0.1:$port JAXBERT_NUM_PROCESSES=$num_processes \
    JAXBERT_PROCESS_ID=$i JAX_PLATFORMS=cpu XLA_FLAGS=$xla_flags PYTHONUNBUFFERED=1 \
    "$JAXBERT" pretrain "$@" > >(awk -v p="[$i] " '{ print p $0; fflush() }') 2>&1 &
  pids+=($!)
done

status=0
remaining=("${pids[@]}")
while ((${#remaining[@]} > 0)); do
  finished=""
  if wait -n -p finished "${remaining[@]}"; then rc=0; else rc=$?; fi
  [[ -n $finished ]] || break # nothing left to wait for
  left=()
  for pid in "${remaining[@]}"; do [[ $pid == "$finished" ]] || left+=("$pid"); done
  remaining=("${left[@]+"${left[@]}"}")
  if ((rc != 0 && status == 0)); then
    status=$rc
    echo "local_multiprocess: process pid $finished exited with status $rc; stopping the others" >&2
    stop_all
  fi
done
wait # the output prefixers
exit "$status"
