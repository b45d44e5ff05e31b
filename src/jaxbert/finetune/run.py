"""The fine-tuning loop: the side effects around the pure steps in `finetune/step.py`.

Features come from `finetune/data.py` (numpy); each epoch shuffles them with a seeded
numpy permutation and cuts fixed-shape batches (the last one padded with weight-0 rows);
after each epoch the dev split is scored with the task's official metric and the best
epoch's parameters are kept. At the end those parameters predict dev and test, and the
metrics, prediction files, resolved config and (optionally) the parameters are written to
`output_dir`.

Runs resume exactly. An orbax checkpoint in `output_dir/checkpoints` (train state, the
best params so far, the dropout rng and a `Progress` record: epoch, batch within it, the
epoch's loss so far, history, best metric and epoch) is written every
`checkpoint_every_steps`, at each epoch end and on SIGTERM/SIGINT; rerunning the same
command continues from it and ends with the same metrics and predictions as an
uninterrupted run. metrics.json is written last and marks a finished run, whose
checkpoints are then removed.

This module keeps only what is fine-tuning's own: epochs, dev evaluation, best params.
Signals (the agreed stop step), the test hook, failed saves and the metrics log are the
run core's (`train/runtime.py`, shared with pretraining); the pieces around the loop are
`build.py` (model, data, state), `batches.py` (host batches, predictions), `resume.py`
(resume or refuse) and `outputs.py` (predictions, best_params, metrics.json).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxbert import sharding
from jaxbert.checkpoint import Checkpointer, checkpoint_defaults
from jaxbert.errors import UserError
from jaxbert.finetune import buckets as buckets_lib
from jaxbert.finetune import seeds as seeds_lib
from jaxbert.finetune.batches import (  # noqa: F401 — the loop's API, re-exported
    epoch_order,
    evaluate,
    fmt,
    local_rows,
    num_rows,
    padded_batches,
    predict,
)
from jaxbert.finetune.build import resolve_model, setup, warmup_steps  # noqa: F401
from jaxbert.finetune.config import check_config
from jaxbert.finetune.data import TaskData
from jaxbert.finetune.outputs import FinetuneResult, finish, save_config
from jaxbert.finetune.resume import check_output_dir, config_differences, remove_checkpoints
from jaxbert.train import runtime
from jaxbert.train.logger import MetricsLogger, format_duration, progress_bar

__all__ = ["FinetuneResult", "Progress", "check_config", "finetune", "setup"]


@dataclasses.dataclass
class Progress:
    """Where training stands; saved with each checkpoint so a resumed run continues exactly."""

    epoch: int = 1  # the epoch in progress; num_epochs + 1 once training is done
    batch: int = 0  # batches of that epoch already trained
    loss_sum: float = 0.0  # their summed losses (a float32 value, restored exactly)
    epoch_time_s: float = 0.0
    train_time_s: float = 0.0
    history: list = dataclasses.field(default_factory=list)
    best: float | None = None  # the best dev metric so far; None before the first eval
    best_epoch: int = 0
    num_train_features: int = 0  # the data a checkpoint was trained on, checked on resume


# --- the run ----------------------------------------------------------------------------


def _print_main(text: str) -> None:
    if jax.process_index() == 0:
        print(text, flush=True)


def finetune(cfg) -> FinetuneResult:
    """One run, or with `config.seeds` several (`finetune/seeds.py`) and their mean ± std."""
    check_config(cfg)
    seeds = seeds_lib.parse_seeds(cfg.get("seeds", "1"), cfg.seed)
    if len(seeds) == 1 and seeds[0] == cfg.seed and "," not in str(cfg.get("seeds", "1")):
        return _finetune_one(cfg)
    if (Path(cfg.output_dir) / "metrics.json").exists() and not cfg.overwrite:
        raise UserError(
            f"config.output_dir {cfg.output_dir} already holds a fine-tuning run; choose "
            "another --config.output_dir or pass --config.overwrite=true"
        )
    results = []
    for i, seed in enumerate(seeds):
        _print_main(f"== seed {seed} ({i + 1}/{len(seeds)})")
        sub = seeds_lib.seed_config(cfg, seed)
        result = _finished_seed(sub) or _finetune_one(sub)
        if result.preempted:
            return result
        results.append(result)
    summary = seeds_lib.aggregate([r.metrics for r in results], seeds)
    if jax.process_index() == 0:
        seeds_lib.write_summary(Path(cfg.output_dir), summary)
    files = [f for r in results for f in r.files]
    return FinetuneResult(Path(cfg.output_dir), summary, files, results[-1].params)


def _finished_seed(cfg) -> FinetuneResult | None:
    """A seed an interrupted multi-seed command already finished with this config."""
    out_dir = Path(cfg.output_dir)
    if cfg.overwrite or not (out_dir / "metrics.json").is_file():
        return None
    try:
        saved = json.loads((out_dir / "config.json").read_text())
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    saved.pop("resolved", None)
    if config_differences(saved, cfg.to_dict()):
        return None  # _finetune_one refuses it, naming the directory
    _print_main(f"seed {cfg.seed}: finished earlier in {out_dir}; reusing its metrics.json")
    return FinetuneResult(out_dir, metrics, [Path(f) for f in metrics.get("predictions", [])], None)


def _finetune_one(cfg) -> FinetuneResult:
    start = check_output_dir(cfg)
    pre, data, steps, state, steps_per_epoch = setup(cfg, _print_main)
    out_dir, is_main = Path(cfg.output_dir), jax.process_index() == 0
    if start == "restart":
        remove_checkpoints(out_dir)
    log = MetricsLogger(out_dir, enabled=is_main, tensorboard=False)
    if is_main:
        save_config(cfg, pre, out_dir, steps_per_epoch * cfg.num_epochs)
    options = checkpoint_defaults()
    options.keep = 2  # the newest and, should it be unreadable, the one before
    ckpt = Checkpointer(out_dir / "checkpoints", options)
    trainer = _Trainer(cfg, steps, data, ckpt, log, state, steps_per_epoch)
    if start == "resume":
        trainer.restore()
    log.resume_at(trainer.start_step)  # a killed run's rows after the checkpoint go
    trainer.saver.last_good = trainer.start_step or None
    log.print(
        f"fine-tuning {cfg.task} ({cfg.mode}) from {pre.source} on "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), mesh "
        f"{dict(steps.mesh.shape)}: {cfg.num_epochs} epochs × {steps_per_epoch} steps"
    )
    with runtime.Interrupts() as interrupts:
        trainer.train(interrupts)
    trainer.saver.close()
    if interrupts.stopping:
        log.close()
        p = trainer.progress
        where = f" (epoch {min(p.epoch, cfg.num_epochs)}, batch {p.batch})"
        interrupts.finish(runtime.stop_message(interrupts, trainer.step, ckpt.directory, where))
        return FinetuneResult(out_dir, None, [], trainer.best_params, preempted=True)
    result = finish(cfg, pre, data, trainer, out_dir, log)
    remove_checkpoints(out_dir)
    return result


class _Trainer:
    """The loop's mutable state: train state, best params, progress, and their checkpoints."""

    def __init__(self, cfg, steps, data: TaskData, ckpt: Checkpointer, log, state, per_epoch):
        self.cfg, self.steps, self.data, self.ckpt, self.log = cfg, steps, data, ckpt, log
        self.saver = runtime.CheckpointSaver(ckpt)
        self.state, self.best_params, self.steps_per_epoch = state, None, per_epoch
        self.rng = jax.random.key(cfg.seed + 1)  # the step folds its own index in
        self.progress = Progress(num_train_features=num_rows(data.train))
        self.total = per_epoch * cfg.num_epochs
        self.start_step, self._t0, self._tick_t = 0, time.perf_counter(), time.perf_counter()
        self._lengths_seen: set[int] = set()
        self._train_lengths = buckets_lib.row_lengths(data.train) if data.buckets else None

    @property
    def step(self) -> int:
        return (self.progress.epoch - 1) * self.steps_per_epoch + self.progress.batch

    def restore(self) -> None:
        abstract = self.steps.abstract_state()
        found = self.ckpt.restore_latest({"train": abstract, "best": abstract.params})
        if found is None:
            return
        step, tree, progress, self.rng = found
        saved = Progress(**progress)
        if saved.num_train_features != self.progress.num_train_features:
            raise UserError(
                f"config.output_dir {self.cfg.output_dir}: the checkpoint was trained on "
                f"{saved.num_train_features} training features, the data now gives "
                f"{self.progress.num_train_features}; restore the data or pass "
                "--config.overwrite=true to start over"
            )
        self.state, self.progress = tree["train"], saved
        self.best_params = tree["best"] if saved.best_epoch else None
        self.start_step = step
        self.log.print(f"resumed from {self.ckpt.directory}/{step} (epoch {saved.epoch})")

    def train(self, interrupts: runtime.Interrupts) -> None:
        """Trains to the end or until the agreed stop after a signal, checkpointed."""
        self._t0 = self._tick_t = time.perf_counter()
        while self.progress.epoch <= self.cfg.num_epochs and not interrupts.stopping:
            self._epoch(interrupts)

    def _epoch(self, interrupts: runtime.Interrupts) -> None:
        cfg, p = self.cfg, self.progress
        order = epoch_order(num_rows(self.data.train), cfg.seed, p.epoch)
        loss_sum = jnp.asarray(p.loss_sum, jnp.float32)
        every = cfg.checkpoint_every_steps
        buckets, batches = self.data.buckets, None
        if buckets:
            batches = buckets_lib.bucketed_batches(
                order, self._train_lengths, cfg.batch_size, cfg.seed, p.epoch
            )
        for batch in padded_batches(self.data.train, order, cfg.batch_size, first=p.batch,
                                    batches=batches, buckets=buckets):  # fmt: skip
            self._note_shape(batch["input_ids"].shape[1])
            self.state, metrics = self.steps.train(
                self.state, sharding.global_batch(local_rows(batch), self.steps.mesh), self.rng
            )
            loss_sum, p.batch = loss_sum + metrics["loss"], p.batch + 1
            self._log_step(metrics)
            self.saver.poll()
            runtime.fault_point("step", self.step)
            stop = interrupts.agreed()
            due = stop or (every and self.step % every == 0)
            if due and p.batch < self.steps_per_epoch:  # the epoch end saves anyway
                p.loss_sum = self._finite_loss(loss_sum)
                self.save()
                if stop:
                    return
        self._end_epoch(loss_sum)

    def _note_shape(self, length: int) -> None:
        """Logs each new bucket length once: it costs one compile of the train step."""
        if length not in self._lengths_seen:
            self._lengths_seen.add(length)
            self.log.print(f"compiling the train step for length {length}")

    def _finite_loss(self, loss_sum) -> float:
        value = float(loss_sum)
        if not math.isfinite(value):
            raise UserError(
                f"fine-tuning diverged in epoch {self.progress.epoch} (train loss {value}); "
                "lower config.optimizer.learning_rate or check the data"
            )
        return value

    def _end_epoch(self, loss_sum) -> None:
        cfg, p, data = self.cfg, self.progress, self.data
        train_loss = self._finite_loss(loss_sum) / max(p.batch, 1)
        self._tick()
        record = {"epoch": p.epoch, "train_loss": train_loss, "train_time_s": p.epoch_time_s}
        if cfg.eval_every_epoch or p.epoch == cfg.num_epochs:
            eval_bs = cfg.eval_batch_size or cfg.batch_size
            record["dev"], _ = evaluate(
                self.steps, self.state.params, data.dev[0], eval_bs, data.buckets
            )
            self.log.write(self.step, "eval", record["dev"])
            self.log.print(
                f"epoch {p.epoch}: train loss {train_loss:.4f} | dev {fmt(record['dev'])}"
            )
            if p.best is None or record["dev"][data.metric] > p.best:
                p.best, p.best_epoch = record["dev"][data.metric], p.epoch
                last = p.epoch == cfg.num_epochs  # no later step will donate these buffers
                self.best_params = self.state.params if last else self.steps.copy_params(self.state)
        p.history.append(record)
        self._tick()  # the eval counts towards train_time_s, not the next epoch's time
        p.epoch, p.batch, p.loss_sum, p.epoch_time_s = p.epoch + 1, 0, 0.0, 0.0
        self.save()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.progress.epoch_time_s += now - self._tick_t
        self.progress.train_time_s += now - self._tick_t
        self._tick_t = now

    def save(self) -> None:
        self._tick()
        best = self.best_params if self.best_params is not None else self.state.params
        tree = {"train": self.state, "best": best}  # best is a placeholder until best_epoch
        progress = dataclasses.asdict(self.progress)
        self.saver.save(self.step, tree, progress, self.rng, self.cfg)

    def _log_step(self, metrics) -> None:
        first = self.step - self.start_step == min(10, self.cfg.log_every)  # an early sign of life
        if first or self.step % self.cfg.log_every == 0 or self.step == self.total:
            self.log.print(self._progress_line(metrics))
            self.log.write(self.step, "train", {k: float(v) for k, v in metrics.items()})

    def _progress_line(self, metrics) -> str:
        cfg, done = self.cfg, self.step - self.start_step
        elapsed = time.perf_counter() - self._t0
        eta = elapsed / max(done, 1) * (self.total - self.step)
        m = jax.device_get(metrics)
        return (
            f"epoch {self.progress.epoch}/{cfg.num_epochs} step {self.step}/{self.total} "
            f"{progress_bar(self.step, self.total)} loss {float(m['loss']):.4f} | "
            f"lr {float(m['learning_rate']):.2e} | "
            f"{done * cfg.batch_size / max(elapsed, 1e-9):,.0f} ex/s | ETA {format_duration(eta)}"
        )
