"""Training throughput and MFU: jaxbert vs keras-hub's BertMaskedLM and transformers'
FlaxBertForPreTraining, in one process.

For each model size (seq 128, batch 32, base at batch 8; fp32; vocab 30522) it compiles
one full pretraining step (MLM over masked positions + NSP, AdamW with clipping, jitted,
state donated) for every variant, then times them in interleaved rounds (A/B/C, A/B/C,
...) so machine noise hits all variants alike. Reported: compile time, median step time,
tokens/s, MFU under two FLOP counts, and the jaxbert / HF tokens/s ratio.

Variants per size:
  jaxbert        dropout 0.1 (BERT's default; attention takes the explicit softmax path)
  jaxbert-nodrop dropout 0 (attention takes jax.nn.dot_product_attention)
  jaxbert-mlm    jaxbert's MLM-only objective (no NSP head or loss), dropout 0.1
  keras-hub      keras-hub BertMaskedLM on the JAX backend (the same jax): logits at the
                 masked positions, no NSP, AdamW, jit_compile train_on_batch; compared
                 with jaxbert-mlm (like for like) and jaxbert (with NSP)
  hf-flax        transformers FlaxBertForPreTraining, dropout 0.1, same optimizer and batch

The MFU denominator is a fp32 2048² matmul peak (`flops.measure_matmul_peak`, best of 3)
measured at the start of every round, median over the rounds of that size, so it sees
the same machine load as the median step times. Numerators:
  standard  6·N·T + 12·L·H·S·T (N = all parameters, T = tokens): the same for every model
  computed  the matmul FLOPs each model actually executes (×3 of the forward); jaxbert
            projects to the vocabulary at the 20 masked positions per sequence, HF at
            every position.

    python benchmarks/train_throughput.py --sizes tiny,mini --rounds 3 --steps 10 \
        --out benchmarks/results/train_throughput.json

If transformers or keras-hub is not importable, that peer is skipped (and the output says
so); KERAS_BACKEND is set to jax before keras is imported.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported (the keras-hub peer)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from jaxbert import sharding
from jaxbert.data.synthetic import SyntheticIterator
from jaxbert.model.config import model_config
from jaxbert.model.heads import BertForPreTraining
from jaxbert.train import flops
from jaxbert.train.losses import pretraining_sums
from jaxbert.train.optim import learning_rate_schedule, make_optimizer, optimizer_defaults
from jaxbert.train.step import CompiledSteps

SEQ, PREDICTIONS = 128, 20
DEFAULT_BATCH = {"base": 8, "large": 8}
NUM_BATCHES = 4  # distinct synthetic batches, cycled


# ---------------------------------------------------------------- variants


class Variant:
    """One compiled training step with its own state; `step()` runs it once, blocking."""

    name: str
    model_cfg: Any
    compile_s: float

    def __init__(self, batches: list):
        self.batches, self.i = batches, 0

    def step(self) -> None:
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.state, metrics = self.compiled(self.state, batch, self.rng)
        jax.block_until_ready(metrics)


def _optimizer(num_steps: int = 10_000):
    opt = optimizer_defaults()
    opt.warmup_steps = 100
    return make_optimizer(opt, num_steps), learning_rate_schedule(opt, num_steps)


class JaxbertVariant(Variant):
    nsp = True  # MLM + NSP, google-bert's objective

    def __init__(self, name: str, cfg, host_batches: list[dict]):
        mesh = sharding.create_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
        super().__init__([sharding.global_batch(b, mesh) for b in host_batches])
        self.name, self.model_cfg, self.rng = name, cfg, jax.random.key(1)
        tx, schedule = _optimizer()
        example = {k: jnp.asarray(v) for k, v in host_batches[0].items()}
        model = BertForPreTraining(cfg, nsp=self.nsp)
        steps = CompiledSteps(model, tx, schedule, mesh, example)
        self.state = steps.init_state(jax.random.key(0))
        start = time.perf_counter()
        self.compiled = steps.train.lower(self.state, self.batches[0], self.rng).compile()
        self.compile_s = time.perf_counter() - start

    def computed_flops(self, batch: int) -> float:
        return flops.computed_flops_per_step(self.model_cfg, batch, SEQ, PREDICTIONS)


def _hf_train_step(state, batch, rng, *, model, tx, schedule):
    """The same step as jaxbert's: MLM xent at the masked positions + NSP xent, AdamW."""
    step, params, opt_state = state
    rng = jax.random.fold_in(rng, step)

    def loss_fn(p):
        out = model(
            batch["input_ids"],
            attention_mask=batch["input_mask"],
            token_type_ids=batch["segment_ids"],
            params=p,
            dropout_rng=rng,
            train=True,
        )
        # HF projects every position to the vocabulary (that is their model); the loss
        # reads the masked positions only, exactly as jaxbert's.
        positions = batch["masked_positions"][..., None]
        mlm_logits = jnp.take_along_axis(out.prediction_logits, positions, axis=1)
        sums = pretraining_sums(
            {"mlm_logits": mlm_logits, "nsp_logits": out.seq_relationship_logits}, batch
        )
        mlm_n = jnp.maximum(sums["mlm_count"], 1.0)
        return sums["mlm_loss"] / mlm_n + sums["nsp_loss"] / sums["nsp_count"], sums

    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = {
        "loss": loss,
        "grad_norm": optax.tree.norm(grads),
        "learning_rate": schedule(step),
    }
    return (step + 1, params, opt_state), metrics


class JaxbertMLMVariant(JaxbertVariant):
    """jaxbert's MLM-only objective (`data.objective=mlm`: no NSP head or loss), the
    like-for-like comparison with keras-hub's BertMaskedLM."""

    nsp = False


class KerasHubVariant(Variant):
    """keras-hub's BertMaskedLM on the JAX backend (the maintained JAX BERT): the same
    shapes, logits at the masked positions only (no NSP), AdamW, XLA-compiled
    `train_on_batch` (which returns host floats, so each step blocks)."""

    def __init__(self, name: str, cfg, host_batches: list[dict]):
        import keras
        import keras_hub

        self.name, self.model_cfg = name, cfg
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=cfg.vocab_size, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
            hidden_dim=cfg.hidden_size, intermediate_dim=cfg.intermediate_size,
            dropout=cfg.hidden_dropout, max_sequence_length=cfg.max_position_embeddings,
        )  # fmt: skip
        self.model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
        self.model.compile(
            optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        super().__init__([
            ({"token_ids": b["input_ids"], "segment_ids": b["segment_ids"],
              "padding_mask": b["input_mask"].astype(bool), "mask_positions": b["masked_positions"]},
             b["masked_ids"], b["masked_weights"])
            for b in host_batches
        ])  # fmt: skip
        start = time.perf_counter()
        self.step()  # the first call traces and compiles
        self.compile_s = time.perf_counter() - start

    def step(self) -> None:
        x, y, w = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.model.train_on_batch(x, y, sample_weight=w)

    def computed_flops(self, batch: int) -> float:
        return flops.computed_flops_per_step(self.model_cfg, batch, SEQ, PREDICTIONS)


def keras_hub_available() -> tuple[bool, str]:
    try:
        import keras
        import keras_hub
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip the peer"
        return False, f"{type(exc).__name__}: {exc}"
    if keras.backend.backend() != "jax":
        return False, f"keras backend is {keras.backend.backend()!r}, not jax"
    return True, f"keras {keras.__version__}, keras-hub {keras_hub.__version__}"


class HFVariant(Variant):
    def __init__(self, name: str, cfg, host_batches: list[dict]):
        from transformers import BertConfig, FlaxBertForPreTraining

        super().__init__([{k: jnp.asarray(v) for k, v in b.items()} for b in host_batches])
        self.name, self.model_cfg, self.rng = name, cfg, jax.random.key(1)
        hf_cfg = BertConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size,
            hidden_act="gelu",
            hidden_dropout_prob=cfg.hidden_dropout,
            attention_probs_dropout_prob=cfg.attention_dropout,
            max_position_embeddings=cfg.max_position_embeddings,
            type_vocab_size=cfg.type_vocab_size,
            layer_norm_eps=cfg.layer_norm_eps,
        )
        model = FlaxBertForPreTraining(hf_cfg, seed=0, dtype=jnp.float32)
        tx, schedule = _optimizer()
        params = model.params
        self.state = (jnp.zeros((), jnp.int32), params, tx.init(params))
        step = functools.partial(_hf_train_step, model=model, tx=tx, schedule=schedule)
        start = time.perf_counter()
        lowered = jax.jit(step, donate_argnums=(0,)).lower(self.state, self.batches[0], self.rng)
        self.compiled = lowered.compile()
        self.compile_s = time.perf_counter() - start

    def computed_flops(self, batch: int) -> float:
        # The vocabulary projection runs at every position: predictions = seq.
        return flops.computed_flops_per_step(self.model_cfg, batch, SEQ, SEQ)


def peer_available() -> tuple[bool, str]:
    try:
        import transformers
        from transformers import FlaxBertForPreTraining  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip the peer"
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"transformers {transformers.__version__}"


# ---------------------------------------------------------------- measurement


def host_batches(batch: int, vocab: int) -> list[dict]:
    it = SyntheticIterator(
        batch_size=batch, seq_len=SEQ, max_predictions=PREDICTIONS, vocab_size=vocab, seed=0
    )
    return [next(it) for _ in range(NUM_BATCHES)]


def build_variants(size: str, batch: int, peer: bool, nodrop: bool,
                   keras: bool = False) -> list[Variant]:  # fmt: skip
    cfg = model_config(size)
    batches = host_batches(batch, cfg.vocab_size)
    variants: list[Variant] = [JaxbertVariant("jaxbert", cfg, batches)]
    if keras:
        variants.append(JaxbertMLMVariant("jaxbert-mlm", cfg, batches))
        variants.append(KerasHubVariant("keras-hub", cfg, batches))
    if nodrop:
        cfg0 = model_config(size, hidden_dropout=0.0, attention_dropout=0.0)
        variants.append(JaxbertVariant("jaxbert-nodrop", cfg0, batches))
    if peer:
        variants.append(HFVariant("hf-flax", cfg, batches))
    return variants


def time_interleaved(
    variants: list[Variant], rounds: int, steps: int, warmup: int
) -> tuple[dict, list[float]]:
    """Per-variant step times (s) and matmul peaks (FLOP/s), one peak per round.

    Each round measures the peak, then every variant warms up once and runs `steps`, so
    the MFU denominator sees the same machine load as the step times.
    """
    for v in variants:  # first touch: page in buffers, settle the thread pool
        for _ in range(warmup):
            v.step()
    times: dict[str, list[list[float]]] = {v.name: [] for v in variants}
    peaks = []
    for r in range(rounds):
        peaks.append(flops.measure_matmul_peak(repeats=3))
        # Rotate the order each round so no variant always runs right after another.
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            v.step()  # re-warm caches after the previous variant
            samples = []
            for _ in range(steps):
                start = time.perf_counter()
                v.step()
                samples.append(time.perf_counter() - start)
            times[v.name].append(samples)
    return times, peaks


def summarise(v: Variant, samples: list[list[float]], batch: int, peak: float) -> dict:
    flat = [t for round_ in samples for t in round_]
    median = statistics.median(flat)
    tokens = batch * SEQ
    standard = flops.standard_flops_per_step(v.model_cfg, batch, SEQ)
    computed = v.computed_flops(batch)
    return {
        "variant": v.name,
        "compile_s": v.compile_s,
        "step_ms": 1e3 * median,
        "round_medians_ms": [1e3 * statistics.median(s) for s in samples],
        "min_step_ms": 1e3 * min(flat),
        "tokens_per_s": tokens / median,
        "mfu_standard": standard / median / peak,
        "mfu_computed": computed / median / peak,
        "standard_flops": standard,
        "computed_flops": computed,
    }


def ratio_to_peer(name: str, samples: dict, peer: str = "hf-flax") -> float | None:
    """name / peer tokens/s, as the median of per-round ratios (robust to drifting load)."""
    if peer not in samples or name not in samples or name == peer:
        return None
    ratios = [
        statistics.median(other) / statistics.median(own)
        for own, other in zip(samples[name], samples[peer])
    ]
    return statistics.median(ratios)


# ---------------------------------------------------------------- output


def markdown_table(results: list[dict]) -> str:
    lines = [
        "| size (batch) | model | compile s | step ms | tokens/s | vs HF | vs keras-hub | MFU std"
        " | MFU computed | peak GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for row in res["rows"]:
            ratio = res["ratio_vs_hf"].get(row["variant"])
            kr = res.get("ratio_vs_keras_hub", {}).get(row["variant"])
            lines.append(
                f"| {res['size']} ({res['batch']}) | {row['variant']} | {row['compile_s']:.1f} "
                f"| {row['step_ms']:.1f} | {row['tokens_per_s']:,.0f} "
                f"| {'' if ratio is None else f'{ratio:.2f}×'} "
                f"| {'' if kr is None else f'{kr:.2f}×'} "
                f"| {100 * row['mfu_standard']:.1f}% | {100 * row['mfu_computed']:.1f}% "
                f"| {res['peak_flops'] / 1e9:.0f} |"
            )
    return "\n".join(lines)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="tiny,mini,small,medium", help="comma-separated sizes")
    p.add_argument("--batch", type=int, default=32, help="batch size (base/large: 8)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    p.add_argument("--steps", type=int, default=10, help="timed steps per round per variant")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before round 1")
    p.add_argument("--no-peer", action="store_true", help="skip transformers' Flax BERT")
    p.add_argument("--no-nodrop", action="store_true", help="skip the dropout-0 jaxbert row")
    p.add_argument("--no-keras", action="store_true", help="skip keras-hub's BertMaskedLM")
    p.add_argument("--out", type=Path, default=None, help="write results JSON here")
    return p.parse_args(argv)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_size(size: str, args: argparse.Namespace, peer: bool, keras: bool = False) -> dict:
    batch = DEFAULT_BATCH.get(size, args.batch)
    variants = build_variants(size, batch, peer, not args.no_nodrop, keras)
    compiles = ", ".join(f"{v.name} {v.compile_s:.1f}s" for v in variants)
    print(f"bench: {size} batch {batch}: compiled ({compiles}); timing ...", flush=True)
    samples, peaks = time_interleaved(variants, args.rounds, args.steps, args.warmup)
    # Median of the per-round peaks: the same load as the median step times.
    peak = statistics.median(peaks)
    rows = [summarise(v, samples[v.name], batch, peak) for v in variants]
    ratios = {
        r["variant"]: ratio_to_peer(r["variant"], samples)
        for r in rows
        if r["variant"] != "hf-flax"
    }
    vs_keras = {r["variant"]: ratio_to_peer(r["variant"], samples, "keras-hub") for r in rows}
    return {
        "size": size,
        "batch": batch,
        "peak_flops": peak,
        "peaks_measured": peaks,
        "loadavg_after": loadavg(),
        "rows": rows,
        "ratio_vs_hf": ratios,
        "ratio_vs_keras_hub": {k: v for k, v in vs_keras.items() if v is not None},
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    peer, peer_note = (False, "disabled by --no-peer") if args.no_peer else peer_available()
    if not peer:
        print(f"bench: transformers peer skipped ({peer_note})", file=sys.stderr)
    keras, keras_note = (
        (False, "disabled by --no-keras") if args.no_keras else keras_hub_available()
    )
    if not keras:
        print(f"bench: keras-hub peer skipped ({keras_note})", file=sys.stderr)
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs",
        "device": jax.devices()[0].device_kind,
        "versions": {
            "jax": jax.__version__,
            "peer": peer_note if peer else None,
            "keras_hub": keras_note if keras else None,
        },  # fmt: skip
        "seq_len": SEQ,
        "max_predictions": PREDICTIONS,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "loadavg_start": loadavg(),
    }
    print(f"bench: load average {meta['loadavg_start']}", flush=True)
    results = []
    for size in sizes:
        results.append(run_size(size, args, peer, keras))
        print("\n".join(markdown_table(results[-1:]).splitlines()[2:]), flush=True)
        meta["loadavg_end"] = loadavg()
        if args.out is not None:  # after every size, so an interrupted run keeps its rows
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(
        f"\nload average {meta['loadavg_start']} → {meta['loadavg_end']}; "
        f"{args.rounds} rounds × {args.steps} steps; MFU against the fp32 matmul peak "
        "measured in each round (median)\n"
    )
    print(markdown_table(results))
    if args.out is not None:
        print(f"\nbench: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
