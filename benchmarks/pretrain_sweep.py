"""Pretraining recipe sweep on the Wikipedia extract: short runs at one token budget.

Each variant is `jaxbert pretrain` on `configs/pretrain/cpu_smoke.py` with overrides, in
its own run directory under `runs/sweep/`, so an interrupted sweep resumes where it
stopped (a finished run reports "complete" and is only read). Results — the held-out MLM
and NSP accuracy at each eval point and the wall time — go to
`benchmarks/results/pretrain_sweep.json`, rewritten after every run.

    nohup .venv/bin/python benchmarks/pretrain_sweep.py --wave lr --wave shape > runs/sweep.log 2>&1 &

The tokenizer and prepared shards (`runs/wiki8k/`) are built first if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JAXBERT = [sys.executable, "-m", "jaxbert.cli"]
# This checkout's src first, so a sweep can run from a separate worktree with any venv.
os.environ["PYTHONPATH"] = str(ROOT / "src")
WIKI = ROOT.parent / "shared" / "data" / "wikipedia"
SAMPLE = ROOT / "corpus" / "wiki_sample"
RESULTS = ROOT / "benchmarks" / "results" / "pretrain_sweep.json"
MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**36)}

# Same token budget for every variant: steps × batch × 128 ≈ 12.3M tokens.
# The model's start before cpu_smoke.py and cpu_wiki.py took the local heads (2026-12-07):
# every earlier wave ran with it, so it stays their baseline.
NORMAL_INIT = {"model.position_init": "normal", "model.attention_init": "normal"}
COMMON = {
    **NORMAL_INIT,
    "train.num_steps": 1500,
    "train.batch_size": 64,
    "train.log_every": 100,
    "train.eval_every": 500,
    "train.eval_batches": 20,
    "checkpoint.every_steps": 500,
    "optimizer.warmup_steps": 150,
}

PACKED = {
    "data.objective": "mlm",
    "data.packing": "full_sentences",
    "data.max_predictions_per_seq": 0,
}

# `make pretrain`'s budget on the shipped sample (corpus/wiki_sample, 1.5M tokens): the
# recipe that gets furthest past the unigram plateau in ~5 minutes becomes cpu_smoke.
SMOKE = {
    "train.num_steps": 800,
    "train.batch_size": 32,
    "train.log_every": 100,
    "train.eval_every": 400,
    "train.eval_batches": 20,
    "checkpoint.every_steps": 400,
    "optimizer.warmup_steps": 100,
}

WAVES = {
    "lr": {
        "tiny_lr1e-3": {"optimizer.learning_rate": 1e-3},
        "tiny_lr3e-3": {"optimizer.learning_rate": 3e-3},
        "tiny_lr6e-3": {"optimizer.learning_rate": 6e-3},
        "tiny_lr1e-2": {"optimizer.learning_rate": 1e-2},
    },
    # MLM-only packed text vs google-bert pairs+NSP, and masking rates (Wettig et al. 2023),
    # all evaluated on the same held-out set (doc_sentences windows, 15% token masking).
    "objective": {
        "tiny_pairs_nsp_lr3e-3": {"optimizer.learning_rate": 3e-3},
        "tiny_mlm_full_m15_lr3e-3": {"optimizer.learning_rate": 3e-3, **PACKED},
        "tiny_mlm_full_m40_lr3e-3": {
            "optimizer.learning_rate": 3e-3,
            **PACKED,
            "data.mask_prob": 0.4,
        },
        # Pre-LN trains stably at learning rates where post-LN BERT stalls (6e-3 above).
        "tiny_mlm_full_m40_preln_lr6e-3": {
            "optimizer.learning_rate": 6e-3,
            **PACKED,
            "data.mask_prob": 0.4,
            "model.pre_layer_norm": True,
        },
        "tiny_mlm_full_m30_lr3e-3": {
            "optimizer.learning_rate": 3e-3,
            **PACKED,
            "data.mask_prob": 0.3,
        },
    },
    "smoke": {
        "smoke_pairs_nsp_lr1e-3": {**SMOKE, "optimizer.learning_rate": 1e-3},
        "smoke_mlm_full_m15_lr3e-3": {**SMOKE, "optimizer.learning_rate": 3e-3, **PACKED},
        "smoke_mlm_full_m40_lr3e-3": {
            **SMOKE,
            "optimizer.learning_rate": 3e-3,
            **PACKED,
            "data.mask_prob": 0.4,
        },
        "smoke_mlm_full_m40_preln_lr6e-3": {
            **SMOKE,
            "optimizer.learning_rate": 6e-3,
            **PACKED,
            "data.mask_prob": 0.4,
            "model.pre_layer_norm": True,
        },
        # More, smaller updates for the same 3.3M tokens.
        "smoke_mlm_full_m40_b16_lr2e-3": {
            **SMOKE,
            "optimizer.learning_rate": 2e-3,
            **PACKED,
            "data.mask_prob": 0.4,
            "train.batch_size": 16,
            "train.num_steps": 1600,
            "train.eval_every": 800,
            "checkpoint.every_steps": 800,
            "optimizer.warmup_steps": 200,
        },
    },
    "shape": {
        "tiny_b128_lr3e-3": {
            "optimizer.learning_rate": 3e-3,
            "train.batch_size": 128,
            "train.num_steps": 750,
            "train.eval_every": 250,
            "checkpoint.every_steps": 250,
            "optimizer.warmup_steps": 75,
        },
        "mini_lr1e-3": {"model.size": "mini", "optimizer.learning_rate": 1e-3},
    },
}

# The cpu_wiki recipe itself (configs/pretrain/cpu_wiki.py, 4,000 steps, its tokenizer and
# shards), varied one key at a time. Its held-out accuracy climbed only as the lr decayed
# (0.134 at step 2,000 → 0.202 at 4,000), so these test whether more steps at low lr —
# a faster-falling schedule, or a lower peak — get further in the same budget.
RECIPE = {"train.eval_every": 500}
LOCAL = {"model.position_init": "sinusoidal_linear", "model.attention_init": "local"}
WAVES["recipe"] = {
    "wiki_poly2_lr3e-3": {**RECIPE, "optimizer.decay": "polynomial", "optimizer.decay_power": 2.0},
    "wiki_lr1.5e-3": {**RECIPE, "optimizer.learning_rate": 1.5e-3},
    # Both stayed on the plateau longer than linear at 3e-3 (2026-12-03): the climb seems to
    # need steps at a high lr, then a decay. Warmup-stable-decay keeps the most of both.
    "wiki_wsd_lr3e-3": {**RECIPE, "optimizer.decay": "wsd", "optimizer.decay_fraction": 0.25},
    # The 10k-step schedule was still on the plateau at step 4,000 (lr ≥ 1.8e-3 throughout);
    # the 4k one climbed as its lr fell through ~1.5e-3. A 6k schedule (~1.5 h on 2 cores,
    # inside the recipe's 2 h) gets there at step ~3,000 and then has 3,000 steps to climb.
    "wiki_6k_lr3e-3": {**RECIPE, "train.num_steps": 6_000},
    # It left the plateau at step ~1,700 where every other schedule stayed: a second seed.
    "wiki_6k_lr3e-3_s1": {**RECIPE, "train.num_steps": 6_000, "train.seed": 1},
    # 2026-12-07: seed 1 again on the reproducible tokenizer (the rows above used
    # vocabularies that could not be rebuilt), beside start-only changes to the model.
    "wiki_6k_s1_r": {**RECIPE, "train.seed": 1},
    "wiki_6k_s1_init0.05": {**RECIPE, "train.seed": 1, "model.initializer_range": 0.05},
    # init 0.05 left the plateau at step 1,000–1,500 with seed 1 (the control: not by
    # 1,841): the same with seed 0.
    "wiki_6k_s0_init0.05": {**RECIPE, "model.initializer_range": 0.05},
    # Start two heads per layer local (model.attention_init=local) instead of waiting for
    # one to turn local by chance: both seeds, to see whether the onset becomes dependable.
    "wiki_6k_s0_local": {**RECIPE, **LOCAL},
    "wiki_6k_s1_local": {**RECIPE, **LOCAL, "train.seed": 1},
}
# The same question for `make pretrain` (configs/pretrain/cpu_smoke.py on the shipped sample).
WAVES["smoke_recipe"] = {
    "smoke_poly2_lr2e-3": {"optimizer.decay": "polynomial", "optimizer.decay_power": 2.0},
    # cpu_smoke.py with the normal init (its recipe until 2026-12-07), on the 40-batch eval
    "smoke_baseline": {},
    # 8k pieces for 1.5M tokens of text leaves most pieces rare (seen < 200 times in the
    # whole run); 4k pieces halve the softmax and see each piece twice as often.
    "smoke_vocab4k": {"model.vocab_size": 4000},
}
# What keeps the tiny model on the ~0.13 plateau (2026-12-07): attending to a neighbour
# needs a structured position table (sinusoidal start) or faster second-moment tracking.
WAVES["smoke_plateau"] = {
    "smoke_pos_sin": {"model.position_init": "sinusoidal"},
    "smoke_b2_0.98": {"optimizer.b2": 0.98},
    # A larger start for every weight: W_q·W_k's gradient is proportional to the other
    # factor, so a small init is a slow saddle for the first useful attention pattern.
    "smoke_init_0.05": {"model.initializer_range": 0.05},
    # More, narrower heads: more chances for one to find a neighbour.
    "smoke_heads8": {"model.num_heads": 8},
    # Shorter windows: a neighbour is a larger share of a uniform attention's mix.
    "smoke_seq64_b32": {"data.max_seq_length": 64, "train.batch_size": 32},
    # W_q = W_k at init: scores start as token similarity (model.attention_init).
    "smoke_mimetic": {"model.attention_init": "mimetic"},
    # init 0.05 left the plateau at wiki scale (seed 1, step 1,000–1,500, a local head in
    # layer 0); the smoke has a third of those tokens: a larger start, or a structured one.
    "smoke_init_0.1": {"model.initializer_range": 0.1},
    "smoke_init_0.05_pos_sin": {
        "model.initializer_range": 0.05,
        "model.position_init": "sinusoidal",
    },
    # Every jump off the plateau was a head turning local (attention_probe): start two per
    # layer as previous / next-token heads, and the table they read alone as a control.
    "smoke_local": LOCAL,
    "smoke_pos_lin": {"model.position_init": "sinusoidal_linear"},
}
WAVE_CONFIG = {
    "recipe": ("configs/pretrain/cpu_wiki.py", NORMAL_INIT),
    "smoke_recipe": ("configs/pretrain/cpu_smoke.py", NORMAL_INIT),
    "smoke_plateau": ("configs/pretrain/cpu_smoke.py", NORMAL_INIT),
}  # others: cpu_smoke + COMMON

MODEL_SHAPES = {  # model.size alone does not resize the model: set its shape keys too
    "mini": {
        "model.num_layers": 4,
        "model.hidden_size": 256,
        "model.num_heads": 4,
        "model.intermediate_size": 1024,
    },
}


def ensure_data(vocab: int, lowercase: bool, corpus: Path = WIKI) -> Path:
    name = ("sample" if corpus == SAMPLE else "wiki") + f"{vocab // 1000}k"
    name += "_uncased" if lowercase else ""
    base = ROOT / "runs" / name
    tok, prep = base / "tokenizer", base / "prepared"
    if not (tok / "tokenizer.model").exists():
        cmd = [*JAXBERT, "tokenizer", "train", "--corpus", str(corpus), "--out", str(tok)]
        cmd += ["--vocab-size", str(vocab), "--max-sentences", "300000"]
        subprocess.run(cmd + (["--lowercase"] if lowercase else []), check=True)
    if not (prep / "manifest.json").exists():
        cmd = [*JAXBERT, "data", "prepare", "--corpus", str(corpus), "--tokenizer", str(tok)]
        subprocess.run(cmd + ["--out", str(prep)], check=True)
    return base


def overrides_for(name: str, variant: dict, data: Path, common: dict = COMMON) -> list[str]:
    keys = {**common, **variant}
    size = keys.get("model.size")
    keys.update(MODEL_SHAPES.get(size, {}))
    keys["data.prepared_dir"] = str(data / "prepared")
    keys["tokenizer"] = str(data / "tokenizer")
    keys["output_dir"] = str(ROOT / "runs" / "sweep" / name)
    return [f"--config.{k}={v}" for k, v in keys.items()]


def summarise(run_dir: Path) -> dict:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("split") == "eval"]
    train = [r for r in rows if r.get("split") == "train"]
    return {
        "eval": [
            {"step": r["step"], "mlm_accuracy": r["mlm_accuracy"], "nsp_accuracy": r.get("nsp_accuracy"),
             "loss": r["loss"]}
            for r in evals
        ],
        "final_train_loss": train[-1]["loss"] if train else None,
        "median_tokens_per_s": sorted(r["tokens_per_s"] for r in train)[len(train) // 2] if train else None,
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wave", action="append", choices=sorted(WAVES), required=True)
    p.add_argument("--only", action="append", help="run only these variants of the waves")
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--lowercase", action="store_true")
    p.add_argument("--data", type=Path, help="a run dir with tokenizer/ and prepared/ to use as is")
    args = p.parse_args()
    corpus = SAMPLE if set(args.wave) <= {"smoke", "smoke_recipe", "smoke_plateau"} else WIKI
    given = args.data.resolve() if args.data else None
    env = {**os.environ, **MALLOC}
    for wave in args.wave:
        for name, variant in WAVES[wave].items():
            if args.only and name not in args.only:
                continue
            run_dir = ROOT / "runs" / "sweep" / name
            # A variant that sets model.vocab_size gets a tokenizer of that size.
            vocab = int(variant.get("model.vocab_size", args.vocab))
            data = given or ensure_data(vocab, args.lowercase, corpus)
            config, common = WAVE_CONFIG.get(wave, ("configs/pretrain/cpu_smoke.py", COMMON))
            cmd = [*JAXBERT, "pretrain", "--config", str(ROOT / config)]
            t0 = time.time()
            rc = subprocess.run(
                cmd + overrides_for(name, variant, data, common), env=env
            ).returncode
            entry = {"config": config, "overrides": {**common, **variant}, "data": data.name}
            entry["returncode"] = rc
            entry["wall_s_this_call"] = round(time.time() - t0, 1)
            if (run_dir / "metrics.jsonl").exists():
                entry.update(summarise(run_dir))
            # Re-read first: two sweeps may run side by side (one core each).
            results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
            results[name] = entry
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            tmp = RESULTS.with_suffix(f".json.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(results, indent=2) + "\n")
            tmp.replace(RESULTS)
            print(f"== {name}: rc {rc}, eval {entry.get('eval', [])[-1:]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
