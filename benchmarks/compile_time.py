"""Compile time of the full train step vs depth: with nn.scan it must not grow with layers.

    .venv/bin/python benchmarks/compile_time.py [--sizes base,large] [--rounds 2]

Lowers and compiles the sharded train step (AdamW, fp32, batch 8, seq 128) for each size,
scanned and unrolled, and prints the median compile seconds and the 24-vs-12-layer ratio.
Nothing is executed, so even BERT-large only needs its abstract shapes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from jaxbert import sharding
from jaxbert.model.config import model_config
from jaxbert.model.heads import BertForPreTraining
from jaxbert.train import optim
from jaxbert.train.step import CompiledSteps


def compile_seconds(
    size: str, scan: bool, batch: int = 8, seq: int = 128, preds: int = 20
) -> float:
    cfg = model_config(size, scan_layers=scan)
    opt = optim.optimizer_defaults()
    mesh = sharding.create_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
    z = lambda *s: jnp.zeros(s, jnp.int32)  # noqa: E731
    example = {
        "input_ids": z(batch, seq),
        "input_mask": z(batch, seq),
        "segment_ids": z(batch, seq),
        "masked_positions": z(batch, preds),
    }
    steps = CompiledSteps(
        BertForPreTraining(cfg),
        optim.make_optimizer(opt, 100),
        optim.learning_rate_schedule(opt, 100),
        mesh,
        example,
    )
    batch_spec = {
        **{k: jax.ShapeDtypeStruct(v.shape, jnp.int32) for k, v in example.items()},
        "masked_ids": jax.ShapeDtypeStruct((batch, preds), jnp.int32),
        "masked_weights": jax.ShapeDtypeStruct((batch, preds), jnp.float32),
        "next_sentence_label": jax.ShapeDtypeStruct((batch,), jnp.int32),
    }
    t = time.perf_counter()
    steps.train.lower(steps.abstract_state(), batch_spec, jax.random.key(0)).compile()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="base,large")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--unrolled", action="store_true", help="also time unscanned layers")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    modes = [True, False] if args.unrolled else [True]
    results = {}
    for scan in modes:
        for size in sizes:
            times = [compile_seconds(size, scan) for _ in range(args.rounds)]
            results[(size, scan)] = statistics.median(times)
            print(
                f"{size:<6} {'scan' if scan else 'unrolled':<8} compile {results[(size, scan)]:.2f}s "
                f"(rounds: {', '.join(f'{x:.2f}' for x in times)})",
                flush=True,
            )
    for scan in modes:
        if "base" in sizes and "large" in sizes:
            ratio = results[("large", scan)] / results[("base", scan)]
            print(
                f"{'scan' if scan else 'unrolled'}: large (24 layers) / base (12 layers) compile = {ratio:.2f}x"
            )


if __name__ == "__main__":
    main()
