"""What the tiny model's attention does on the ~0.13 plateau and after it.

For each checkpoint of a pretraining run: each head's attention entropy (in nats; uniform
over 128 keys is 4.85), the attention-weighted mean distance |i − j|, the share of
attention within ±2 positions and on masked slots (15% of tokens in the eval set), and
how alike the tokens' final hidden states are (mean pairwise cosine within a window:
"representation collapse", Gopalani & Hu 2025, "What happens during the loss plateau?").
Read on the run's fixed held-out eval set.

    .venv/bin/python benchmarks/attention_probe.py runs/sweep/wiki_6k_s1_r --out \
      benchmarks/results/attention_probe_wiki_6k_s1_r.json

Checkpoints already probed (by step) are kept in --out and skipped, so it can be rerun as
a run writes new ones (a run keeps only its newest three).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

from jaxbert import checkpoint
from jaxbert.convert import unstack_layers
from jaxbert.data.pipeline import make_pretrain_iterator
from jaxbert.model.encoder import BertEncoder


def load_step(ckdir: Path, step: int):
    cfg = checkpoint.read_config(ckdir, step)
    _, params = checkpoint.load_params(ckdir, step)
    model = cfg.model.to_dict() | {"scan_layers": False, "remat_policy": "none"}
    return cfg, model, unstack_layers(params)["bert"]


def attention_stats(q: np.ndarray, k: np.ndarray, lengths: np.ndarray, masked: np.ndarray) -> dict:
    """Per head, averaged over real query tokens: entropy, mean |i − j|, the share within
    ±2 positions and the share on masked slots (`masked`: [b, s] bool)."""
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    seq = q.shape[1]
    valid = np.arange(seq)[None, :] < lengths[:, None]  # [b, s]
    scores = np.where(valid[:, None, None, :], scores, -1e30)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    distance = np.abs(np.arange(seq)[:, None] - np.arange(seq)[None, :])
    entropy = -(probs * np.log(np.maximum(probs, 1e-30))).sum(-1)  # [b, h, q]
    mean_distance = (probs * distance).sum(-1)
    local = (probs * (distance <= 2)).sum(-1)
    on_masked = (probs * masked[:, None, None, :]).sum(-1)
    weight = valid[:, None, :].astype(np.float64)

    def per_head(x):
        return ((x * weight).sum((0, 2)) / weight.sum((0, 2))).round(3).tolist()

    return {"entropy": per_head(entropy), "distance": per_head(mean_distance),
            "local": per_head(local), "masked": per_head(on_masked)}  # fmt: skip


def collapse(hidden: np.ndarray, lengths: np.ndarray) -> float:
    """Mean cosine between distinct real tokens' final hidden states in one window."""
    out = []
    for h, n in zip(hidden, lengths, strict=True):
        x = h[:n] / np.linalg.norm(h[:n], axis=-1, keepdims=True)
        sims = x @ x.T
        out.append((sims.sum() - n) / (n * (n - 1)))
    return round(float(np.mean(out)), 3)


def probe(ckdir: Path, step: int, batches: int) -> dict:
    cfg, model_cfg, params = load_step(ckdir, step)
    it = make_pretrain_iterator(cfg.data, batch_size=16, seed=cfg.train.seed, process_index=0,
                                process_count=1, split="eval", held_out_set=True)  # fmt: skip
    encoder = BertEncoder(model_cfg)
    wanted = ("query", "key")

    @jax.jit
    def run(ids, mask, segments):
        return encoder.apply(
            {"params": params}, ids, mask, segments,
            capture_intermediates=lambda mdl, _: mdl.name in wanted,
        )  # fmt: skip

    layers = [{"entropy": [], "distance": [], "local": [], "masked": []}
              for _ in range(model_cfg["num_layers"])]  # fmt: skip
    collapsed = []
    for _ in range(batches):
        b = next(it)
        (hidden, _), state = run(b["input_ids"], b["input_mask"], b["segment_ids"])
        lengths = np.asarray(b["input_mask"]).sum(-1)
        masked = np.zeros(b["input_ids"].shape, bool)
        np.put_along_axis(masked, b["masked_positions"], b["masked_weights"] > 0, axis=1)
        found = state["intermediates"]["encoder"]
        for i, acc in enumerate(layers):
            attn = found[f"layers_{i}"]["attention"]
            q, k = (np.asarray(attn[n]["__call__"][0], np.float64) for n in wanted)
            for key, value in attention_stats(q, k, lengths, masked).items():
                acc[key].append(value)
        collapsed.append(collapse(np.asarray(hidden, np.float64), lengths))
    return {
        "step": step,
        "layers": [
            {k: np.mean(v, axis=0).round(3).tolist() for k, v in acc.items()} for acc in layers
        ],
        "hidden_cosine": round(float(np.mean(collapsed)), 3),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batches", type=int, default=4)
    args = p.parse_args()
    ckdir = args.run_dir.absolute() / "checkpoints"
    done = json.loads(args.out.read_text()) if args.out.exists() else []
    seen = {row["step"] for row in done}
    for step in checkpoint.step_dirs(ckdir):
        if step in seen:
            continue
        row = probe(ckdir, step, args.batches)
        done = sorted([*done, row], key=lambda r: r["step"])
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(done, indent=1) + "\n")
        tmp.replace(args.out)
        heads = " | ".join(
            f"L{i}: H {x['entropy']} d {x['distance']} ±2 {x['local']} mask {x['masked']}"
            for i, x in enumerate(row["layers"])
        )  # fmt: skip
        print(f"step {step}: hidden cos {row['hidden_cosine']} | {heads}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
