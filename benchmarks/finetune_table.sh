#!/usr/bin/env bash
# The README's fine-tuning table: short CPU runs of the tiny model on each task, from the
# `make pretrain` checkpoint and from scratch (same tokenizer, same recipe), side by side.
#   benchmarks/finetune_table.sh [OUT_DIR]      (needs ../shared/data and runs/cpu_smoke)
# Short on purpose (≈30 min on 2 idle cores): at most 1,500 training examples, 3 epochs,
# lr 5e-4 (a tiny model given ~140 steps wants a far higher lr than BERT-base), seq 64 for
# GLUE. Task by task, pretrained then scratch, so a partial run still pairs them.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/finetune_table}
JAXBERT=${JAXBERT:-.venv/bin/jaxbert}
PRETRAINED=${PRETRAINED:-runs/cpu_smoke}
common=(--config.optimizer.learning_rate=5e-4 --config.num_epochs=3 --config.max_train_examples=1500
        --config.overwrite=true --config.save_best=false --config.log_every=1000)
run() {  # task config init extra...
  local task=$1 config=$2 init=$3; shift 3
  local name; name=$([[ $init == scratch ]] && echo scratch || echo pretrained)
  echo "== $task from $name" >&2
  local init_args=(--config.init="$init")
  [[ $init == scratch ]] && init_args+=(--config.tokenizer="$PRETRAINED/tokenizer")
  "$JAXBERT" finetune --config "$config" "${init_args[@]}" "${common[@]}" \
    --config.output_dir="$OUT/$task-$name" "$@" > "$OUT/$task-$name.log" 2>&1 \
    || echo "   failed: see $OUT/$task-$name.log" >&2
}
mkdir -p "$OUT"
for task in sst2 rte mrpc cola stsb conll2003 squad; do
  for init in "$PRETRAINED" scratch; do
    case $task in
      conll2003) run "$task" configs/finetune/ner.py "$init" ;;
      squad) run "$task" configs/finetune/squad.py "$init" --config.max_seq_length=256 --config.num_epochs=1 ;;
      *) run "$task" "configs/finetune/glue.py:$task" "$init" --config.max_seq_length=64 ;;
    esac
  done
done
echo "metrics: $OUT/*/metrics.json" >&2
