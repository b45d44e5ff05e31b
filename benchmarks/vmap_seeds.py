"""Fine-tuning seeds one after another vs as one vmapped program: which is faster?

Issue "Pretraining that produces a better encoder…" asks whether `--config.seeds=N` should
run its N seeds as one jitted program over N stacked parameter copies (one compile, each
copy its own batch, dropout and head init) instead of N ordinary runs. This measures the
train step alone — the part vmapping could speed up — on the GLUE classification model:

- `sequential`: N states, one jitted step, called N times per round (what runs today,
  minus the per-run compile, which only flatters sequential);
- `vmapped`: `jax.vmap` of the same step over the stacked states and batches, called once.

Rounds alternate the two (machine load hits both alike); reported are the median
examples/s of each and the median of per-round ratios, plus the max |Δ loss| between the
two on identical inputs (they must compute the same numbers).

    .venv/bin/python benchmarks/vmap_seeds.py --sizes tiny,mini --seeds 3 --seq 64,128
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbert.model.config import model_config
from jaxbert.model.heads import BertForSequenceClassification
from jaxbert.train.losses import weighted_xent

SIZES = ("tiny", "mini", "small")


def make_step(model, tx):
    """One AdamW step of the classification loss, dropout on (as fine-tuning trains)."""

    def loss_fn(params, batch, rng):
        logits = model.apply(
            {"params": params}, batch["input_ids"], batch["input_mask"], batch["segment_ids"],
            deterministic=False, rngs={"dropout": rng},
        )  # fmt: skip
        w = jnp.ones(batch["label"].shape, jnp.float32)
        return weighted_xent(logits, batch["label"], w)[0] / jnp.sum(w)

    def step(state, batch, rng):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, rng)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return step


def fake_batch(rng: np.random.Generator, batch: int, seq: int, vocab: int) -> dict:
    """SST-2-shaped rows: random lengths up to `seq`, the rest padding."""
    lengths = rng.integers(seq // 4, seq + 1, size=batch)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    return {
        "input_ids": (rng.integers(5, vocab, size=(batch, seq)) * mask).astype(np.int32),
        "input_mask": mask,
        "segment_ids": np.zeros((batch, seq), np.int32),
        "label": rng.integers(0, 2, size=batch).astype(np.int32),
    }


def measure(size: str, n: int, batch: int, seq: int, rounds: int, steps: int) -> dict:
    cfg = model_config(size, vocab_size=8000)
    model = BertForSequenceClassification(cfg, 2)
    tx = optax.adamw(1e-4)
    rng = np.random.default_rng(0)
    batches = [fake_batch(rng, batch, seq, cfg.vocab_size) for _ in range(n)]
    example = batches[0]

    def init(key):
        p = model.init(key, example["input_ids"], example["input_mask"], example["segment_ids"])
        p = p["params"]
        return (p, tx.init(p))

    keys = jax.random.split(jax.random.key(0), n)
    states = [jax.jit(init)(k) for k in keys]
    step = make_step(model, tx)
    seq_step = jax.jit(step, donate_argnums=0)
    vmap_step = jax.jit(jax.vmap(step), donate_argnums=0)
    stacked_batch = jax.tree.map(lambda *xs: jnp.stack(xs), *batches)
    drop = jax.random.split(jax.random.key(1), n)
    # Same inputs, same numbers: one step of each from copies of the same states.
    vstate = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    vstate, vloss = vmap_step(vstate, stacked_batch, drop)
    losses = []
    for i in range(n):
        states[i], loss = seq_step(states[i], batches[i], drop[i])
        losses.append(float(loss))
    max_dloss = float(np.max(np.abs(np.asarray(vloss) - np.asarray(losses))))

    def run_sequential():
        for _ in range(steps):
            for i in range(n):
                states[i], loss = seq_step(states[i], batches[i], drop[i])
        jax.block_until_ready(loss)

    def run_vmapped():
        nonlocal vstate
        for _ in range(steps):
            vstate, loss = vmap_step(vstate, stacked_batch, drop)
        jax.block_until_ready(loss)

    times = {"sequential": [], "vmapped": []}
    for _ in range(rounds):
        for name, fn in (("sequential", run_sequential), ("vmapped", run_vmapped)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    examples = n * batch * steps
    ratios = [s / v for s, v in zip(times["sequential"], times["vmapped"], strict=True)]
    return {
        "size": size, "seeds": n, "batch": batch, "seq": seq, "rounds": rounds,
        "steps_per_round": steps,
        "sequential_examples_per_s": round(examples / statistics.median(times["sequential"]), 1),
        "vmapped_examples_per_s": round(examples / statistics.median(times["vmapped"]), 1),
        "speedup_median": round(statistics.median(ratios), 3),
        "speedup_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
        "max_abs_loss_diff_first_step": max_dloss,
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="tiny,mini")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", default="64,128", help="comma-separated sequence lengths")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10, help="train steps per seed per round")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/vmap_seeds.json"))
    args = p.parse_args()
    rows = []
    for size in args.sizes.split(","):
        if size not in SIZES:
            p.error(f"--sizes: unknown size {size!r}; choose from {SIZES}")
        for seq in (int(s) for s in args.seq.split(",")):
            row = measure(size, args.seeds, args.batch, seq, args.rounds, args.steps)
            print(json.dumps(row), flush=True)
            rows.append(row)
    meta = {"date": time.strftime("%Y-%m-%d"), "devices": str(jax.devices()),
            "loadavg_end": list(np.round(__import__("os").getloadavg(), 2))}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
