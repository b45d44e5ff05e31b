"""The pretraining loop: the side effects around the pure step (data, logs, checkpoints,
signals, profiling). Everything numeric happens in `train/step.py`."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxbert import config as config_lib
from jaxbert import distributed, sharding
from jaxbert.checkpoint import Checkpointer, checkpoint_defaults
from jaxbert.errors import UserError
from jaxbert.model.config import validate
from jaxbert.model.heads import BertForPreTraining
from jaxbert.train import flops, optim
from jaxbert.train.logger import (
    MetricsLogger,
    format_duration,
    plot_curves,
    progress_line,
    read_metrics,
)
from jaxbert.train.losses import normalise
from jaxbert.train.step import CompiledSteps


class TrainingDiverged(UserError):
    """The loss became NaN/Inf; the message names the last good checkpoint."""


@dataclass
class RunResult:
    step: int
    train_metrics: dict
    eval_metrics: dict
    output_dir: Path
    checkpoint_dir: Path
    plot: Path | None
    preempted: bool = False


class _Preemption:
    """SIGTERM sets a flag; the loop saves a checkpoint at the next step and exits."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self._previous)


def make_iterator(cfg, split: str, batch_size: int, seed: int):
    """Host-local batches for this process."""
    d = cfg.data
    if d.source == "synthetic":
        from jaxbert.data.synthetic import SyntheticIterator

        return SyntheticIterator(
            batch_size=batch_size,
            seq_len=d.max_seq_length,
            max_predictions=d.max_predictions_per_seq,
            vocab_size=cfg.model.vocab_size,
            seed=seed + (1_000_003 if split == "eval" else 0),
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )
    if d.source != "prepared":
        raise UserError(f"config.data.source must be prepared or synthetic, got {d.source!r}")
    if not d.prepared_dir:
        raise UserError("config.data.prepared_dir is empty: run `jaxbert data prepare` first")
    from jaxbert.data.pipeline import make_pretrain_iterator

    return make_pretrain_iterator(
        d,
        batch_size=batch_size,
        seed=seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        split=split,
    )


def check_config(cfg, mesh) -> int:
    """Validate what can only be checked against the mesh; returns the per-process batch."""
    validate(cfg.model, "config.model")
    t = cfg.train
    divisor = sharding.batch_divisor(mesh) * t.grad_accum_steps
    if t.batch_size % divisor:
        raise UserError(
            f"config.train.batch_size={t.batch_size} must be divisible by data×fsdp×grad_accum_steps"
            f" = {divisor}"
        )
    if t.batch_size % jax.process_count():
        raise UserError(f"config.train.batch_size must divide over {jax.process_count()} processes")
    tensor = mesh.shape["tensor"]
    for key in ("vocab_size", "num_heads", "intermediate_size"):
        if cfg.model[key] % tensor:
            raise UserError(
                f"config.model.{key}={cfg.model[key]} is not divisible by mesh.tensor={tensor}"
                + (
                    " (train the tokenizer with a vocab size that is a multiple of 128)"
                    if key == "vocab_size"
                    else ""
                )
            )
    if cfg.data.max_seq_length > cfg.model.max_position_embeddings:
        raise UserError("config.data.max_seq_length exceeds config.model.max_position_embeddings")
    return t.batch_size // jax.process_count()


def check_vocab(cfg) -> None:
    """The model's vocabulary must be the tokenizer's, or ids index the wrong embeddings."""
    if cfg.data.source != "prepared":
        return
    manifest = Path(cfg.data.prepared_dir) / "manifest.json"
    if not manifest.is_file():
        raise UserError(
            f"{manifest} not found: config.data.prepared_dir must be the output of "
            "`jaxbert data prepare` (an interrupted prepare leaves no manifest)"
        )
    vocab = json.loads(manifest.read_text())["tokenizer"]["vocab_size"]
    if vocab != cfg.model.vocab_size:
        raise UserError(
            f"config.model.vocab_size={cfg.model.vocab_size}, but the tokenizer of "
            f"{cfg.data.prepared_dir} has {vocab} tokens; set --config.model.vocab_size={vocab}"
        )


def _example_batch(cfg) -> dict:
    b, s, p = cfg.train.batch_size, cfg.data.max_seq_length, cfg.data.max_predictions_per_seq
    z = lambda *shape: jnp.zeros(shape, jnp.int32)  # noqa: E731
    return {
        "input_ids": z(b, s),
        "input_mask": z(b, s),
        "segment_ids": z(b, s),
        "masked_positions": z(b, p),
    }


def _finite(metrics: dict) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


def evaluate(cfg, steps: CompiledSteps, params, batch_size: int) -> dict:
    it = make_iterator(cfg, "eval", batch_size, cfg.train.seed)
    totals = None
    for _ in range(cfg.train.eval_batches):
        sums = steps.eval(params, sharding.global_batch(next(it), steps.mesh))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    return {k: float(v) for k, v in normalise(jax.device_get(totals)).items()}


class Throughput:
    """Tokens/s and MFU over the interval since the last report."""

    def __init__(self, cfg, num_devices: int):
        b, s, p = cfg.train.batch_size, cfg.data.max_seq_length, cfg.data.max_predictions_per_seq
        self.tokens_per_step = b * s
        self.flops_per_step = flops.computed_flops_per_step(cfg.model, b, s, p)
        self.standard_flops_per_step = flops.standard_flops_per_step(cfg.model, b, s)
        peak, self.peak_source = flops.peak_flops_per_device(cfg.train.peak_flops_per_device)
        self.peak = peak * num_devices
        self.mark(0)

    def mark(self, step: int) -> None:
        self.t, self.step = time.perf_counter(), step

    def report(self, step: int) -> dict:
        dt = max(time.perf_counter() - self.t, 1e-9)
        steps_per_s = (step - self.step) / dt
        self.mark(step)
        return {
            "steps_per_s": steps_per_s,
            "tokens_per_s": steps_per_s * self.tokens_per_step,
            "mfu": steps_per_s * self.flops_per_step / self.peak,
            "mfu_standard": steps_per_s * self.standard_flops_per_step / self.peak,
        }


def pretrain(cfg) -> RunResult:
    distributed.maybe_initialize(cfg.distributed)
    mesh = sharding.create_mesh(cfg.mesh)
    local_batch = check_config(cfg, mesh)
    check_vocab(cfg)
    is_main = jax.process_index() == 0
    out_dir = Path(cfg.output_dir)
    log = MetricsLogger(out_dir, enabled=is_main)
    if is_main:
        (out_dir / "config.json").write_text(config_lib.to_json(cfg))
    t = cfg.train
    model = BertForPreTraining(cfg.model)
    tx = optim.make_optimizer(cfg.optimizer, t.num_steps)
    schedule = optim.learning_rate_schedule(cfg.optimizer, t.num_steps)
    log.print(
        f"mesh {dict(mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform} "
        f"device(s), {jax.process_count()} process(es); model {cfg.model.size} "
        f"({flops.parameter_count(cfg.model) / 1e6:.1f}M params)"
    )
    t0 = time.perf_counter()
    steps = CompiledSteps(model, tx, schedule, mesh, _example_batch(cfg), t.grad_accum_steps)
    ckpt = Checkpointer(cfg.checkpoint.directory or out_dir / "checkpoints", cfg.checkpoint)
    train_it = make_iterator(cfg, "train", local_batch, t.seed)
    restored = ckpt.restore_latest(steps.abstract_state())
    if restored is None and t.init_from:
        restored = _init_from(t.init_from, steps, ckpt.directory, log)
    if restored is None:
        state, rng, start = steps.init_state(jax.random.key(t.seed)), jax.random.key(t.seed + 1), 0
    else:
        start, state, data_state, rng = restored
        if data_state is not None:
            train_it.set_state(data_state)
            log.print(f"resumed from {ckpt.directory}/{start}")
    meter = Throughput(cfg, jax.device_count())
    log.print(f"setup {time.perf_counter() - t0:.1f}s; MFU peak: {meter.peak_source}")
    train_metrics, eval_metrics = {}, {}
    last_good = start if restored else None
    step, preempted, loop_t0 = start, False, time.perf_counter()
    with _Preemption() as preemption:
        for step in range(start + 1, t.num_steps + 1):
            if step == t.profile_start_step:
                jax.profiler.start_trace(str(out_dir / "profile"))
            state, metrics = steps.train(state, sharding.global_batch(next(train_it), mesh), rng)
            if t.profile_start_step > 0 and step == t.profile_start_step + t.profile_steps - 1:
                jax.block_until_ready(state)
                jax.profiler.stop_trace()
                log.print(f"profile trace written to {out_dir / 'profile'}")
            preempted = preemption.requested
            last = step == t.num_steps
            save = step % cfg.checkpoint.every_steps == 0 or last or preempted
            if step % t.log_every == 0 or save or step == start + 1:
                train_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not _finite(train_metrics):
                    raise TrainingDiverged(_diverged_message(step, train_metrics, ckpt, last_good))
                train_metrics.update(meter.report(step))
                log.write(step, "train", train_metrics)
                eta = (t.num_steps - step) / max(train_metrics["steps_per_s"], 1e-9)
                log.print(progress_line(step, t.num_steps, train_metrics, eta))
            ckpt_metrics = None
            if t.eval_every > 0 and (step % t.eval_every == 0 or last):
                eval_metrics = evaluate(cfg, steps, state.params, local_batch)
                log.write(step, "eval", eval_metrics)
                log.print(
                    f"eval step {step}: loss {eval_metrics['loss']:.4f} | mlm acc "
                    f"{eval_metrics['mlm_accuracy']:.3f} | nsp acc {eval_metrics['nsp_accuracy']:.3f}"
                )
                ckpt_metrics = {"eval_loss": eval_metrics["loss"]}
                meter.mark(step)
            if save:
                if not bool(steps.params_finite(state.params)):
                    raise TrainingDiverged(
                        _diverged_message(step, {"params": float("nan")}, ckpt, last_good)
                    )
                ckpt.save(
                    step, state, train_it.get_state(), rng, cfg, metrics=ckpt_metrics, force=True
                )
                last_good = step
                if step == t.debug_kill_at_step:
                    ckpt.wait()
                    os.kill(os.getpid(), signal.SIGKILL)
            if preempted:
                log.print(f"SIGTERM: saved checkpoint at step {step}; exiting")
                break
    ckpt.close()
    log.print(
        f"trained steps {start + 1}..{step} in {format_duration(time.perf_counter() - loop_t0)}"
    )
    plot = None
    if is_main and (out_dir / "metrics.jsonl").exists():
        plot = plot_curves(out_dir / "metrics.jsonl", out_dir / "curves.png")
    log.close()
    return RunResult(step, train_metrics, eval_metrics, out_dir, ckpt.directory, plot, preempted)


def _last_logged(out_dir: Path, split: str) -> dict:
    path = out_dir / "metrics.jsonl"
    rows = [r for r in read_metrics(path) if r["split"] == split] if path.exists() else []
    return rows[-1] if rows else {}


def _init_from(path: str, steps: CompiledSteps, own_dir: Path, log) -> tuple | None:
    """Another run's train state (e.g. phase 1 for phase 2), with a fresh data iterator."""
    src = Path(path)
    src = src / "checkpoints" if (src / "checkpoints").is_dir() else src
    if str(src.absolute()) == str(own_dir):
        return None
    other = Checkpointer(src, checkpoint_defaults())
    found = other.restore_latest(steps.abstract_state())
    other.close()
    if found is None:
        raise UserError(f"config.train.init_from: no readable checkpoint in {src}")
    step, state, _, rng = found
    log.print(f"initialised from {src}/{step} (train state and step; data starts afresh)")
    return step, state, None, rng


def _diverged_message(step: int, metrics: dict, ckpt: Checkpointer, last_good: int | None) -> str:
    bad = ", ".join(f"{k}={v}" for k, v in metrics.items() if not math.isfinite(v))
    where = (
        f"the last good checkpoint is {ckpt.directory}/{last_good}"
        if last_good is not None
        else "no checkpoint was saved yet"
    )
    return (
        f"training diverged at step {step} ({bad}); {where}. Lower the learning rate or "
        f"check the data, then resume."
    )
