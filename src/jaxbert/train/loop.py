"""The pretraining loop: the side effects around the pure step (data, logs, checkpoints,
profiling). Everything numeric happens in `train/step.py`; signals, the agreed stop step,
resume identity and failed saves are the run core's (`train/runtime.py`), shared with
fine-tuning.

`setup` validates the whole config before anything is written, then builds a `Run`;
`_train` is flat: each periodic action (log, eval, save, profile) reads one predicate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from jaxbert import config as config_lib
from jaxbert import fs, sharding
from jaxbert.checkpoint import Checkpointer, checkpoint_defaults, step_dirs
from jaxbert.errors import UserError
from jaxbert.train import checks, flops, optim, runtime
from jaxbert.train.flops import Throughput
from jaxbert.train.logger import MetricsLogger, format_duration, plot_curves, progress_line
from jaxbert.train.losses import normalise
from jaxbert.train.step import CompiledSteps, pretraining_model


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
    preempted: str | None = None  # "SIGTERM" when a signal stopped the run (Ctrl-C raises)


def make_iterator(cfg, split: str, batch_size: int, seed: int, packing: str | None = None):
    """Host-local batches for this process: eval reads the fixed held-out set."""
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
        held_out_set=split == "eval",
        packing=packing,
    )


def _finite(metrics: dict) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


def evaluate(cfg, steps: CompiledSteps, params, batch_size: int) -> dict:
    """Held-out metrics on the fixed eval set (`data.eval_packing` at `data.eval_mask_prob`),
    the same for every recipe; an NSP model's NSP metrics come from held-out pairs."""
    sums = _eval_sums(cfg, steps, params, batch_size, packing=None)
    if "nsp_count" in sums and _eval_packing(cfg) != "pairs":
        pairs = _eval_sums(cfg, steps, params, batch_size, packing="pairs")
        sums |= {k: v for k, v in pairs.items() if k.startswith("nsp_")}
    metrics = {k: float(v) for k, v in normalise(sums).items()}
    metrics.pop("real_tokens", None)
    return metrics | _per_corpus_eval(cfg, steps, params, batch_size)


def _per_corpus_eval(cfg, steps: CompiledSteps, params, batch_size: int) -> dict:
    """A mixture's held-out MLM loss and accuracy on each corpus alone (`NAME/mlm_…`): the
    mixed eval hides which languages gain or lose when the shares change."""
    if cfg.data.source != "prepared" or not cfg.data.get("corpora"):
        return {}
    from jaxbert.data.mixture import parse_corpora

    out = {}
    for spec in parse_corpora(cfg.data.corpora):
        sub = cfg.copy_and_resolve_references()
        sub.data.corpora, sub.data.prepared_dir = "", spec.directory
        m = normalise(_eval_sums(sub, steps, params, batch_size, packing=None))
        out |= {f"{spec.name}/{k}": float(m[k]) for k in ("mlm_loss", "mlm_accuracy")}
    return out


def _eval_packing(cfg) -> str:
    """The eval set's packing as the pipeline resolves it (its defaults, one place)."""
    if cfg.data.source != "prepared":
        return "pairs"  # synthetic batches carry NSP labels
    from jaxbert.data.pipeline import validate_data_config

    return validate_data_config(cfg.data)["eval_packing"]


def _eval_sums(cfg, steps: CompiledSteps, params, batch_size: int, packing) -> dict:
    it = make_iterator(cfg, "eval", batch_size, cfg.train.seed, packing=packing)
    totals = None
    for _ in range(cfg.train.eval_batches):
        sums = steps.eval(params, sharding.global_batch(next(it), steps.mesh))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    return jax.device_get(totals)


def itstime(step: int, every: int, total: int, first: bool = False) -> bool:
    """The one predicate of every periodic action: each `every` steps and at the end."""
    return (every > 0 and step % every == 0) or step == total or first


def _example_batch(cfg) -> dict:
    b, s, p = cfg.train.batch_size, cfg.data.max_seq_length, cfg.data.max_predictions_per_seq
    z = lambda *shape: jnp.zeros(shape, jnp.int32)  # noqa: E731
    return {
        "input_ids": z(b, s),
        "input_mask": z(b, s),
        "segment_ids": z(b, s),
        "masked_positions": z(b, p),
    }


@dataclass
class Run:
    """What the loop needs, built by `setup` before the first step."""

    cfg: Any
    mesh: Any
    steps: Any
    ckpt: Checkpointer
    saver: runtime.CheckpointSaver
    train_it: Any
    state: Any
    rng: Any
    start: int
    local_batch: int
    log: MetricsLogger
    out_dir: Path


def validate(cfg) -> tuple[Any, int]:
    """All checks of a config, before anything is written: (mesh, per-process batch)."""
    mesh = sharding.create_mesh(cfg.mesh)
    model = checks.check_model_and_data(cfg, dict(mesh.shape), jax.process_count())
    checks.check_vocab(cfg)
    if model.attention_impl == "cudnn" and jax.default_backend() != "gpu":
        raise UserError(
            f"config.model.attention_impl=cudnn needs a CUDA GPU; this is {jax.default_backend()} "
            "(use attention_impl=xla)"
        )
    return mesh, cfg.train.batch_size // jax.process_count()


def check_resumable(cfg, ckpt: Checkpointer) -> None:
    """A run directory belongs to one model: refuse a config that would train another."""
    saved = ckpt.newest_config()
    if saved is None:
        return
    step, saved_cfg = saved
    diff = checks.identity_differences(saved_cfg, cfg)
    if diff:
        raise runtime.refuse_resume(f"{ckpt.directory}/{step}", diff)


def check_init_from(cfg, ckpt_dir) -> Path | None:
    """config.train.init_from's checkpoint directory (None: unset, or this run's own), read
    only: a missing or empty one is refused before anything is created."""
    if not cfg.train.init_from:
        return None
    src = fs.as_path(cfg.train.init_from)  # may be gs://: never through pathlib
    src = src / "checkpoints" if (src / "checkpoints").is_dir() else src
    if str(src) == str(fs.as_path(ckpt_dir)):
        return None
    if src.exists() and not src.is_dir():
        raise UserError(f"config.train.init_from={cfg.train.init_from} is a file, not a run "
                        "or checkpoint directory")  # fmt: skip
    if not src.is_dir():
        raise UserError(f"config.train.init_from={cfg.train.init_from}: not found")
    if not step_dirs(src):
        raise UserError(f"config.train.init_from: no checkpoint in {src}")
    return src


def setup(cfg) -> Run:
    """Validate, build the steps and restore (or init) the state, then write: config.json,
    metrics and the checkpoint directory are created only once every input was read."""
    mesh, local_batch = validate(cfg)
    out_dir, t = Path(cfg.output_dir), cfg.train
    ckpt_dir = cfg.checkpoint.directory or out_dir / "checkpoints"
    runtime.check_output_dir(out_dir)
    runtime.check_output_dir(ckpt_dir, "config.checkpoint.directory")
    train_it = make_iterator(cfg, "train", local_batch, t.seed)  # opens (checks) the shards
    init_from = check_init_from(cfg, ckpt_dir)
    is_main = jax.process_index() == 0
    say = print if is_main else (lambda *a, **k: None)
    model = pretraining_model(cfg)
    tx = optim.make_optimizer(cfg.optimizer, t.num_steps)
    schedule = optim.learning_rate_schedule(cfg.optimizer, t.num_steps)
    say(
        f"mesh {dict(mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform} "
        f"device(s), {jax.process_count()} process(es); model {cfg.model.size} "
        f"({flops.parameter_count(cfg.model) / 1e6:.1f}M params)",
        flush=True,
    )
    steps = CompiledSteps(model, tx, schedule, mesh, _example_batch(cfg), t.grad_accum_steps)
    own = None
    if "://" in str(ckpt_dir) or step_dirs(Path(ckpt_dir)):
        own = Checkpointer(ckpt_dir, cfg.checkpoint)
        check_resumable(cfg, own)
    start, state, rng, resumed = _restore_or_init(cfg, steps, own, train_it, say, init_from)
    ckpt = own or Checkpointer(ckpt_dir, cfg.checkpoint)
    log = MetricsLogger(out_dir, enabled=is_main)
    if is_main:
        with runtime.writing(out_dir / "config.json"):
            fs.atomic_write_text(out_dir / "config.json", config_lib.to_json(cfg))
    log.resume_at(start)  # rows after the checkpoint (a killed run's) are logged again
    saver = runtime.CheckpointSaver(ckpt, start if resumed else None)
    return Run(cfg, mesh, steps, ckpt, saver, train_it, state, rng, start, local_batch, log,
               out_dir)  # fmt: skip


def _restore_or_init(cfg, steps, ckpt: Checkpointer | None, train_it, say, init_from):
    """(start step, state, rng, whether this run's own checkpoint was restored)."""
    restored = ckpt.restore_latest(steps.abstract_state()) if ckpt is not None else None
    if restored is None and init_from is not None:
        restored = _init_from(init_from, steps, say)
    if restored is None:
        seed = cfg.train.seed
        return 0, steps.init_state(jax.random.key(seed)), jax.random.key(seed + 1), False
    start, state, data_state, rng = restored
    if data_state is not None:
        train_it.set_state(data_state)
        say(f"resumed from {ckpt.directory}/{start}", flush=True)
    return start, state, rng, data_state is not None


def pretrain(cfg) -> RunResult:
    t0 = time.perf_counter()
    run = setup(cfg)
    meter = Throughput(cfg, jax.device_count())
    meter.mark(run.start)  # a resumed run's first interval starts at its restored step
    run.log.print(f"setup {time.perf_counter() - t0:.1f}s; MFU peak: {meter.peak_source}")
    loop_t0 = time.perf_counter()
    with runtime.Interrupts() as interrupts:
        step, train_metrics, eval_metrics = _train(run, meter, interrupts)
    run.saver.close()
    if interrupts.signum is not None:
        run.log.close()
        interrupts.finish(runtime.stop_message(interrupts, step, run.ckpt.directory))
    done = f"steps {run.start + 1}..{step}" if step > run.start else "nothing: already complete"
    run.log.print(f"trained {done} in {format_duration(time.perf_counter() - loop_t0)}")
    plot = None
    if jax.process_index() == 0 and (run.out_dir / "metrics.jsonl").exists():
        plot = plot_curves(run.out_dir / "metrics.jsonl", run.out_dir / "curves.png")
    run.log.close()
    return RunResult(step, train_metrics, eval_metrics, run.out_dir, run.ckpt.directory, plot,
                     interrupts.name)  # fmt: skip


def _train(run: Run, meter: Throughput, interrupts: runtime.Interrupts) -> tuple[int, dict, dict]:
    """The steps, and each periodic action behind its one predicate."""
    cfg, t = run.cfg, run.cfg.train
    train_metrics, eval_metrics, step = {}, {}, run.start
    for step in range(run.start + 1, t.num_steps + 1):
        _profile(run, step)
        batch = sharding.global_batch(next(run.train_it), run.mesh)
        run.state, metrics = run.steps.train(run.state, batch, run.rng)
        run.saver.poll()
        runtime.fault_point("step", step)
        stop = interrupts.agreed()
        save = itstime(step, cfg.checkpoint.every_steps, t.num_steps) or stop
        if itstime(step, t.log_every, t.num_steps, first=step == run.start + 1) or save:
            train_metrics = _log_train(run, meter, step, metrics)
        ckpt_metrics = None
        if t.eval_every > 0 and itstime(step, t.eval_every, t.num_steps):
            eval_metrics = _log_eval(run, step)
            ckpt_metrics = {"eval_loss": eval_metrics["loss"]}
            meter.mark(step)
        if save:
            _save(run, step, ckpt_metrics)
        if stop:
            break
    return step, train_metrics, eval_metrics


def _profile(run: Run, step: int) -> None:
    t = run.cfg.train
    if t.profile_start_step <= 0:
        return
    if step == t.profile_start_step:
        jax.profiler.start_trace(str(run.out_dir / "profile"))
    if step == t.profile_start_step + t.profile_steps:
        jax.block_until_ready(run.state)
        jax.profiler.stop_trace()
        run.log.print(f"profile trace written to {run.out_dir / 'profile'}")


def _log_train(run: Run, meter: Throughput, step: int, metrics) -> dict:
    train_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    if not _finite(train_metrics):
        raise TrainingDiverged(_diverged_message(step, train_metrics, run))
    train_metrics.update(meter.report(step))
    if "real_tokens" in train_metrics:  # the logged step's share of non-pad tokens
        share = train_metrics.pop("real_tokens") / meter.tokens_per_step
        train_metrics["real_token_share"] = share
        train_metrics["real_tokens_per_s"] = share * train_metrics["tokens_per_s"]
    run.log.write(step, "train", train_metrics)
    eta = (run.cfg.train.num_steps - step) / max(train_metrics["steps_per_s"], 1e-9)
    run.log.print(progress_line(step, run.cfg.train.num_steps, train_metrics, eta))
    return train_metrics


def _log_eval(run: Run, step: int) -> dict:
    eval_metrics = evaluate(run.cfg, run.steps, run.state.params, run.local_batch)
    run.log.write(step, "eval", eval_metrics)
    nsp = eval_metrics.get("nsp_accuracy")
    per_corpus = "".join(f" | {k.split('/')[0]} {v:.3f}" for k, v in eval_metrics.items()
                         if k.endswith("/mlm_accuracy"))  # fmt: skip
    run.log.print(
        f"eval step {step}: loss {eval_metrics['loss']:.4f} | mlm acc "
        f"{eval_metrics['mlm_accuracy']:.3f}"
        + (f" | nsp acc {nsp:.3f}" if nsp is not None else "")
        + per_corpus
    )
    return eval_metrics


def _save(run: Run, step: int, ckpt_metrics: dict | None) -> None:
    """Checkpoint a finite state; a non-finite one stops the run instead."""
    if not bool(run.steps.params_finite(run.state.params)):
        raise TrainingDiverged(_diverged_message(step, {"params": float("nan")}, run))
    data_state = run.train_it.get_state()
    run.saver.save(step, run.state, data_state, run.rng, run.cfg, metrics=ckpt_metrics)


def _init_from(src: Path, steps: CompiledSteps, say) -> tuple:
    """Another run's train state (e.g. phase 1 for phase 2), with a fresh data iterator;
    read only (an unreadable step there is skipped, never moved aside)."""
    other = Checkpointer(src, checkpoint_defaults())
    try:
        for step in reversed(other.steps()):
            try:
                _, state, _, rng = other.restore(step, steps.abstract_state())
            except Exception:  # noqa: BLE001 — an unreadable step: try the one before
                continue
            say(f"initialised from {src}/{step} (train state and step; data starts afresh)")
            return step, state, None, rng
    finally:
        other.close()
    raise UserError(f"config.train.init_from: no readable checkpoint in {src}")


def _diverged_message(step: int, metrics: dict, run: Run) -> str:
    bad = ", ".join(f"{k}={v}" for k, v in metrics.items() if not math.isfinite(v))
    last_good = run.saver.pending or run.saver.last_good
    where = (
        f"the last good checkpoint is {run.ckpt.directory}/{last_good}"
        if last_good is not None
        else "no checkpoint was saved yet"
    )
    return (
        f"training diverged at step {step} ({bad}); {where}. Lower the learning rate or "
        f"check the data, then resume."
    )
