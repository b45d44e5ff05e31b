#!/usr/bin/env bash
# The README's fine-tuning table: short CPU runs of the tiny model on each task, from the
# `make pretrain` checkpoint and from scratch (same tokenizer, same recipe), side by side.
#   benchmarks/finetune_table.sh [OUT_DIR]      (needs ../shared/data and runs/cpu_smoke)
# Short on purpose (≈40 min on 2 cores): at most 6,000 training examples, 3 epochs, lr 5e-4
# (a tiny model given a few hundred steps wants a far higher lr than BERT-base).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/finetune_table}
JAXBERT=${JAXBERT:-.venv/bin/jaxbert}
PRETRAINED=${PRETRAINED:-runs/cpu_smoke}
common=(--config.learning_rate=5e-4 --config.num_epochs=3 --config.max_train_examples=6000
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
for init in "$PRETRAINED" scratch; do
  for task in sst2 cola mrpc stsb rte; do
    run "$task" "configs/finetune/glue.py:$task" "$init"
  done
  run conll2003 configs/finetune/ner.py "$init"
  run squad configs/finetune/squad.py "$init" --config.max_seq_length=256 --config.num_epochs=1
done
echo "metrics: $OUT/*/metrics.json" >&2
