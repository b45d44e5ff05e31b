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
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxbert import config as config_lib
from jaxbert import sharding
from jaxbert.checkpoint import (
    Checkpointer,
    checkpoint_defaults,
    read_config,
    step_dirs,
    sync_processes,
    write_atomic,
)
from jaxbert.errors import UserError
from jaxbert.finetune import buckets as buckets_lib
from jaxbert.finetune import features as features_lib
from jaxbert.finetune import seeds as seeds_lib
from jaxbert.finetune.config import check_config, finetune_defaults
from jaxbert.finetune.data import EvalSplit, TaskData, load_task_data
from jaxbert.finetune.step import SEQUENCE_KINDS, FinetuneSteps, build_model, make_optimizer
from jaxbert.model.config import validate
from jaxbert.pretrained import Pretrained, check_vocab, load_pretrained, resolve_path
from jaxbert.train import optim
from jaxbert.train.logger import MetricsLogger, format_duration, progress_bar

__all__ = ["FinetuneResult", "Progress", "check_config", "finetune", "setup"]

# Keys a resumed run may change: where things go, how often it logs or checkpoints, how
# it is laid out on devices (the eval batch size and the mesh change only rounding), not
# what it trains on or how. A moved data_dir is fine: the data's size is checked instead.
RESUMABLE_CHANGES = frozenset(
    {
        "output_dir",
        "overwrite",
        "log_every",
        "checkpoint_every_steps",
        "save_best",
        "eval_batch_size",
        "mesh",
        "data_dir",
    }
)

# Fault injection, for tests only (never set in real runs). `JAXBERT_TEST_FAULT=POINT:
# STEP:SIGNAL` makes the run send itself SIGNAL (KILL, INT or TERM) at POINT: "step"
# (after that train step) or "checkpoint" (once that step's checkpoint is committed).
# `FAULT_HOOK(point, step)`, when set, is called at those points and at "best_params"
# (the new best params written beside the old ones, not yet renamed over them).
FAULT_ENV = "JAXBERT_TEST_FAULT"
FAULT_HOOK = None


def _fault(point: str, step: int = 0, ckpt: Checkpointer | None = None) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(point, step)
    spec = os.environ.get(FAULT_ENV, "")
    if spec:
        where, at, name = spec.split(":")
        if where == point and int(at) == step:
            if ckpt is not None:
                ckpt.wait()
            os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


@dataclasses.dataclass
class FinetuneResult:
    output_dir: Path
    metrics: dict | None  # the metrics.json content; None when stopped by SIGTERM
    files: list[Path]
    params: object  # the best-on-dev parameters (sharded jax arrays)
    preempted: bool = False  # SIGTERM: checkpointed and stopped; rerun to resume


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


def resolve_model(cfg) -> tuple[Pretrained, object]:
    """The encoder to fine-tune (config, weights or None, tokenizer) and the tokenizer."""
    from jaxbert.data.tokenizer import load_tokenizer

    if cfg.init == "scratch":
        if not cfg.tokenizer:
            raise UserError("config.init=scratch needs --config.tokenizer (a .model or vocab.txt)")
        tokenizer = load_tokenizer(resolve_path(cfg.tokenizer))
        model_cfg = ml_collections.ConfigDict(cfg.model.to_dict())
        model_cfg.vocab_size = tokenizer.vocab_size
        pre = Pretrained(model_cfg, None, tokenizer.path, f"scratch ({model_cfg.size} size)")
    else:
        pre = load_pretrained(cfg.init, cfg.tokenizer)
        tokenizer = load_tokenizer(pre.tokenizer_path)
    if cfg.dtype:
        pre.model_cfg.dtype = cfg.dtype
    validate(pre.model_cfg, "model")
    check_vocab(pre.model_cfg, tokenizer, "config.tokenizer")
    if cfg.max_seq_length > pre.model_cfg.max_position_embeddings:
        raise UserError(
            f"config.max_seq_length={cfg.max_seq_length} exceeds the model's "
            f"max_position_embeddings={pre.model_cfg.max_position_embeddings}"
        )
    return pre, tokenizer


# --- host batches -----------------------------------------------------------------------


def padded_batches(
    features: dict[str, np.ndarray], order: np.ndarray, batch_size: int, first: int = 0,
    batches: list[np.ndarray] | None = None, buckets: tuple[int, ...] | None = None,
) -> Iterator[dict[str, np.ndarray]]:  # fmt: skip
    """Global batches of `order`'s rows (or of the given `batches` of row indices) from
    batch `first` on, the last one topped up with weight-0 copies; with `buckets`, each
    trimmed to the smallest bucket length that holds its rows.

    Padding repeats real rows (not zeros): an all-padding row would attend over no keys,
    and a NaN there would survive multiplication by weight 0.
    """
    if batches is None:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    seq_len = features["input_ids"].shape[1]
    for idx in batches[first:]:
        real = len(idx)
        if real < batch_size:
            idx = np.concatenate([idx, np.resize(order[:batch_size], batch_size - real)])
        batch = {k: v[idx] for k, v in features.items()}
        batch["weight"] = (np.arange(batch_size) < real).astype(np.float32)
        if buckets:
            length = buckets_lib.trim_length(buckets_lib.row_lengths(batch), buckets)
            batch = buckets_lib.trim(batch, length, seq_len)
        yield batch


def local_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """This process's slice of a global batch (every process builds the same batches)."""
    if jax.process_count() == 1:
        return batch
    n = len(batch["weight"]) // jax.process_count()
    lo = jax.process_index() * n
    return {k: v[lo : lo + n] for k, v in batch.items()}


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def num_rows(features: dict[str, np.ndarray]) -> int:
    return len(features["input_ids"])


# --- evaluation -------------------------------------------------------------------------


def predict(
    steps: FinetuneSteps, params, features, batch_size: int, buckets=None
) -> tuple[dict, float]:
    """Predictions for every row of `features` (padding stripped, file order) and the mean
    loss; with `buckets`, rows go through in length order in trimmed batches."""
    n, seq_len = num_rows(features), features["input_ids"].shape[1]
    order = np.arange(n)
    if buckets:
        order = np.argsort(buckets_lib.row_lengths(features), kind="stable")
    outs, total, count = [], 0.0, 0.0
    for batch in padded_batches(features, order, batch_size, buckets=buckets):
        preds, t, c = steps.eval(params, sharding.global_batch(local_rows(batch), steps.mesh))
        length = batch["input_ids"].shape[1]
        outs.append(buckets_lib.pad_back(jax.device_get(preds), length, seq_len))
        total, count = total + float(t), count + float(c)
    if not outs:
        return {}, 0.0
    merged = {k: np.concatenate([o[k] for o in outs])[:n] for k in outs[0]}
    in_file_order = {}
    for k, v in merged.items():
        in_file_order[k] = np.empty_like(v)
        in_file_order[k][order] = v
    return in_file_order, total / max(count, 1.0)


def evaluate(steps, params, split: EvalSplit, batch_size: int, buckets=None) -> tuple[dict, object]:
    """The split's metrics and its decoded answers (for `split.write`)."""
    preds, loss = predict(steps, params, split.features, batch_size, buckets)
    answers = split.decode(preds)
    metrics = {"loss": loss}
    if split.score is not None:
        metrics.update(split.score(answers))
    return metrics, answers


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


# --- the output directory ---------------------------------------------------------------


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(saved: dict, current: dict) -> list[str]:
    """`key (checkpoint A, now B)` for each training-shaping key whose value differs."""
    a = _flat(json.loads(json.dumps(saved)))
    b = _flat(json.loads(json.dumps(current)))
    # A key one side lacks was added since (features.*, squad.eval_files, …): it had its
    # default then, so only a non-default value counts as a difference.
    defaults = _flat(json.loads(config_lib.to_json(finetune_defaults(current.get("task", "sst2")))))
    for k in set(a) ^ set(b):
        if k in defaults:
            a.setdefault(k, defaults[k])
            b.setdefault(k, defaults[k])
    keys = sorted(k for k in set(a) | set(b) if k.split(".")[0] not in RESUMABLE_CHANGES)
    missing = "<absent>"
    return [
        f"{k} (checkpoint {a.get(k, missing)!r}, now {b.get(k, missing)!r})"
        for k in keys
        if a.get(k, missing) != b.get(k, missing)
    ]


def _saved_config(ckpt_dir: Path) -> dict | None:
    """The config of the newest checkpoint whose config is readable (None: none is)."""
    for step in reversed(step_dirs(ckpt_dir)):
        try:
            return read_config(ckpt_dir, step).to_dict()
        except (UserError, ValueError, OSError):
            continue
    return None


def check_output_dir(cfg) -> str:
    """Whether to "resume", start "fresh" or "restart" (overwrite=true over an unfinished
    run with another config); refuses whatever would lose work.

    Checkpoints mean an unfinished run (a finished one removes them): it resumes if its
    training config is this one's. metrics.json alone means a finished run. Either is
    replaced only with overwrite=true. Reads only: nothing is written before validation.
    """
    out_dir = Path(cfg.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"config.output_dir {out_dir} is a file, not a directory")
    ckpt_dir = out_dir / "checkpoints"
    if step_dirs(ckpt_dir):
        saved = _saved_config(ckpt_dir)
        diff = [] if saved is None else config_differences(saved, cfg.to_dict())
        if not diff:
            return "resume"
        if not cfg.overwrite:
            raise UserError(
                f"config.output_dir {out_dir} holds an unfinished run with a different "
                f"training config: {'; '.join(diff)}. Rerun with its values to resume it, "
                "pass --config.overwrite=true to start over, or choose another output_dir"
            )
        _print_main(
            f"overwrite=true: starting over in {out_dir} (config differs: {'; '.join(diff)})"
        )
        return "restart"
    if (out_dir / "metrics.json").exists() and not cfg.overwrite:
        raise UserError(
            f"config.output_dir {out_dir} already holds a fine-tuning run; choose another "
            "--config.output_dir or pass --config.overwrite=true"
        )
    return "fresh"


def _write_json(path: Path, obj, **kw) -> None:
    """Beside, then renamed over: a reader sees the old file or the new, never half."""
    write_atomic(path, json.dumps(obj, indent=2, **kw))


def _remove_checkpoints(out_dir: Path) -> None:
    if jax.process_index() == 0 and (out_dir / "checkpoints").exists():
        shutil.rmtree(out_dir / "checkpoints")
    sync_processes(f"finetune:rm-checkpoints:{out_dir}")


# --- setup ------------------------------------------------------------------------------


def warmup_steps(cfg, num_steps: int) -> int:
    """optimizer.warmup_steps, or (when it is -1) warmup_fraction of the run's steps."""
    if cfg.optimizer.warmup_steps >= 0:
        return int(cfg.optimizer.warmup_steps)
    return int(round(cfg.warmup_fraction * num_steps))


def _optimizer_config(cfg, num_steps: int) -> ml_collections.ConfigDict:
    opt = ml_collections.ConfigDict(cfg.optimizer.to_dict())
    opt.warmup_steps = warmup_steps(cfg, num_steps)
    return opt


def _example(batch_size: int, seq_len: int) -> dict:
    z = jnp.zeros((batch_size, seq_len), jnp.int32)
    return {"input_ids": z, "input_mask": z, "segment_ids": z}


def setup(cfg, log=print):
    """Everything before the first step: mesh, model, data, optimizer, sharded state.

    Reads but never writes, so a bad input found here leaves output_dir as it was.
    """
    check_config(cfg)
    mesh = sharding.create_mesh(cfg.mesh)
    divisor = sharding.batch_divisor(mesh) * jax.process_count()
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    for key, bs in (("batch_size", cfg.batch_size), ("eval_batch_size", eval_bs)):
        if bs % divisor:
            raise UserError(f"config.{key}={bs} must be divisible by {divisor} (data×fsdp shards)")
    pre, tokenizer = resolve_model(cfg)
    t0 = time.perf_counter()
    data = load_task_data(cfg, tokenizer)
    if cfg.get("length_buckets", True) and data.kind != "span":  # SQuAD windows stay full
        data.buckets = buckets_lib.bucket_lengths(cfg.max_seq_length)
    log(
        f"{cfg.task}: {num_rows(data.train)} train features, "
        + ", ".join(f"{s.name} {num_rows(s.features)}" for s in data.dev + data.test)
        + f" ({time.perf_counter() - t0:.1f}s to read and tokenize)"
        + (f"; length buckets {list(data.buckets)}" if data.buckets else "")
    )
    steps_per_epoch = math.ceil(num_rows(data.train) / cfg.batch_size)
    num_steps = steps_per_epoch * cfg.num_epochs
    opt = _optimizer_config(cfg, num_steps)
    tx = make_optimizer(opt, num_steps, cfg.mode)
    schedule = optim.learning_rate_schedule(opt, num_steps)
    if cfg.mode == "feature":  # the encoder runs once here; only the head trains
        model = _feature_head(cfg, pre, data, eval_bs, log)
        example = {k: jnp.zeros((cfg.batch_size, *v.shape[1:]), v.dtype)
                   for k, v in data.train.items() if k in ("features", "input_mask")}  # fmt: skip
        pretrained = None
    else:
        _pooling_hint(cfg, pre, data.kind, log)
        model = build_model(data.kind, pre.model_cfg, data.num_labels, pooling=cfg.pooling)
        example = _example(cfg.batch_size, cfg.max_seq_length)
        pretrained = None if pre.bert_params is None else {"bert": pre.bert_params}
    steps = FinetuneSteps(model, tx, schedule, data.kind, mesh, example)
    state = steps.init_state(jax.random.key(cfg.seed), pretrained)
    return pre, data, steps, state, steps_per_epoch


def _pooling_hint(cfg, pre: Pretrained, kind: str, log) -> None:
    """An MLM-only checkpoint never trained its [CLS] pooler: say so where it matters."""
    if pre.objective == "mlm" and cfg.pooling == "cls" and kind in SEQUENCE_KINDS:
        log(
            "note: this checkpoint was pretrained without NSP (data.objective=mlm), so its "
            "[CLS] pooler is untrained; --config.pooling=mean reads the tokens' states "
            "instead (SST-2 from cpu_wiki, dev accuracy: 79.9 vs 78.9 at lr 3e-4, "
            "a tie at 1e-3, 79.9 vs 80.0; README)"
        )


def _feature_head(cfg, pre: Pretrained, data: TaskData, batch_size: int, log):
    """mode=feature: every split gains its cached encoder features (a scratch init's are
    those of a random encoder, kept as pre.bert_params so best_params holds them)."""
    from jaxbert.embed import random_bert_params

    if pre.bert_params is None:
        pre.bert_params = random_bert_params(pre.model_cfg, cfg.seed)
    t0 = time.perf_counter()
    splits = [data.train] + [s.features for s in data.dev + data.test]
    for arrays in splits:
        arrays["features"] = features_lib.compute(
            cfg, pre.model_cfg, pre.bert_params, arrays, data.kind, batch_size, pre.source
        )
    f = cfg.features
    layers = features_lib.feature_layers(cfg, pre.model_cfg.num_layers)
    log(
        f"features: layer(s) {layers} ({f.combine}), {data.train['features'].shape[-1]}-dim, "
        f"{sum(num_rows(a) for a in splits)} rows encoded once in "
        f"{time.perf_counter() - t0:.1f}s; head {f.head}"
    )
    return build_model(data.kind, pre.model_cfg, data.num_labels, cfg.features)


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
        _remove_checkpoints(out_dir)
    log = MetricsLogger(out_dir, enabled=is_main, tensorboard=False)
    if is_main:
        _save_config(cfg, pre, out_dir, steps_per_epoch * cfg.num_epochs)
    options = checkpoint_defaults()
    options.keep = 2  # the newest and, should it be unreadable, the one before
    ckpt = Checkpointer(out_dir / "checkpoints", options)
    trainer = _Trainer(cfg, steps, data, ckpt, log, state, steps_per_epoch)
    if start == "resume":
        trainer.restore()
    log.print(
        f"fine-tuning {cfg.task} ({cfg.mode}) from {pre.source} on "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), mesh "
        f"{dict(steps.mesh.shape)}: {cfg.num_epochs} epochs × {steps_per_epoch} steps"
    )
    with _Interrupts() as interrupts:
        stopped = trainer.train(interrupts)
    ckpt.close()
    if stopped is not None:
        log.close()
        return _stopped(stopped, trainer, out_dir)
    result = _finish(cfg, pre, data, trainer, out_dir, log)
    _remove_checkpoints(out_dir)
    return result


def _stopped(signum: int, trainer: _Trainer, out_dir: Path) -> FinetuneResult:
    """After the signal's checkpoint: SIGINT re-raises Ctrl-C, SIGTERM returns normally."""
    p = trainer.progress
    where = f"step {trainer.step} (epoch {min(p.epoch, trainer.cfg.num_epochs)}, batch {p.batch})"
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    _print_main(
        f"{name}: saved a checkpoint at {where} in {out_dir / 'checkpoints'}; "
        "rerun the same command to resume"
    )
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    return FinetuneResult(out_dir, None, [], trainer.best_params, preempted=True)


class _Interrupts:
    """SIGTERM and SIGINT set a flag; the loop checkpoints after the current step and stops.

    A second Ctrl-C interrupts at once, for a user who will not wait for the save. Only the
    main thread can install handlers; elsewhere signals keep their default behaviour.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class _Trainer:
    """The loop's mutable state: train state, best params, progress, and their checkpoints."""

    def __init__(self, cfg, steps, data: TaskData, ckpt: Checkpointer, log, state, per_epoch):
        self.cfg, self.steps, self.data, self.ckpt, self.log = cfg, steps, data, ckpt, log
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

    def train(self, interrupts: _Interrupts) -> int | None:
        """Trains to the end (None) or until a signal, checkpointed (its number)."""
        self._t0 = self._tick_t = time.perf_counter()
        while self.progress.epoch <= self.cfg.num_epochs:
            self._epoch(interrupts)
            if interrupts.signum is not None:
                return interrupts.signum
        return None

    def _epoch(self, interrupts: _Interrupts) -> None:
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
            _fault("step", self.step)
            due = interrupts.signum is not None or (every and self.step % every == 0)
            if due and p.batch < self.steps_per_epoch:  # the epoch end saves anyway
                p.loss_sum = self._finite_loss(loss_sum)
                self.save()
                if interrupts.signum is not None:
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
                f"epoch {p.epoch}: train loss {train_loss:.4f} | dev {_fmt(record['dev'])}"
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
        self.ckpt.save(self.step, tree, progress, self.rng, self.cfg, force=True)
        _fault("checkpoint", self.step, self.ckpt)

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


# --- outputs ----------------------------------------------------------------------------


def _finish(cfg, pre: Pretrained, data: TaskData, trainer: _Trainer, out_dir: Path, log):
    """Final predictions with the best params, best_params/, then metrics.json (last: it
    marks the run finished)."""
    p, is_main = trainer.progress, jax.process_index() == 0
    log.print(
        f"best dev {data.metric} {p.best:.4f} at epoch {p.best_epoch} "
        f"(trained in {format_duration(p.train_time_s)})"
    )
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    metrics, files = _final_predictions(
        data, trainer.steps, trainer.best_params, out_dir, eval_bs, is_main
    )
    summary = {
        "task": cfg.task,
        "mode": cfg.mode,
        "init": pre.source,
        "metric": data.metric,
        "best_epoch": p.best_epoch,
        # "dev"/"test" below are the best epoch's params (selected on dev), not the last's
        "headline": f"best epoch on dev {data.metric} (epoch {p.best_epoch})",
        **metrics,
        "last_epoch_dev": p.history[-1]["dev"] if p.history else None,
        "history": p.history,
        "num_train_features": num_rows(data.train),
        "num_steps": trainer.total,
        "train_time_s": p.train_time_s,
        "predictions": [str(f) for f in files],
    }
    if cfg.save_best:
        _save_best(trainer.best_params, pre, out_dir)
    if is_main:
        _write_json(out_dir / "metrics.json", summary)
    log.close()
    return FinetuneResult(out_dir, summary, files, trainer.best_params)


def _save_config(cfg, pre: Pretrained, out_dir: Path, num_steps: int) -> None:
    """The run config plus what was resolved from it (model, tokenizer, step counts)."""
    resolved = {
        "model": pre.model_cfg.to_dict(),
        "tokenizer": str(pre.tokenizer_path),
        "init_source": pre.source,
        "num_steps": num_steps,
        "warmup_steps": warmup_steps(cfg, num_steps),
    }
    config = {**json.loads(config_lib.to_json(cfg)), "resolved": resolved}
    _write_json(out_dir / "config.json", config, sort_keys=True)


def _save_best(params, pre: Pretrained, out_dir: Path) -> None:
    """Writes the new best params beside the old ones, then renames them over, so a crash
    at any point leaves one complete best_params/ (the old until the rename, then the new)."""
    from jaxbert.checkpoint import save_params

    if "bert" not in params and pre.bert_params is not None:  # mode=feature: the frozen encoder
        params = {**params, "bert": pre.bert_params}
    target, new = out_dir / "best_params", out_dir / "best_params.new"
    is_main = jax.process_index() == 0
    if is_main and new.exists():  # left by a crash before the rename: incomplete or stale
        shutil.rmtree(new)
    sync_processes(f"finetune:best:{out_dir}")
    save_params(new, params, pre.model_cfg)
    if is_main:
        copy_tokenizer(pre.tokenizer_path, new / "tokenizer")
    _fault("best_params")
    if is_main:
        replace_dir(new, target)
    sync_processes(f"finetune:best-done:{out_dir}")


def replace_dir(src: Path, dst: Path) -> None:
    """Renames `src` over `dst` (a directory cannot be os.replace'd over a non-empty one).

    `dst` moves to `dst.old` first and is deleted only once `src` is in place; a crash
    between the two renames leaves `dst.old`, which the next call puts back first.
    """
    old = dst.with_name(dst.name + ".old")
    if old.exists():
        if dst.exists():
            shutil.rmtree(old)
        else:
            old.rename(dst)
    if dst.exists():
        dst.rename(old)
    src.rename(dst)
    if old.exists():
        shutil.rmtree(old)


def copy_tokenizer(path: Path, dest: Path) -> None:
    """The tokenizer beside saved params, so `init=<output_dir>/best_params` finds it."""
    from jaxbert.data.tokenizer import copy_tokenizer_files

    copy_tokenizer_files(path, dest)


def _final_predictions(data: TaskData, steps, params, out_dir: Path, eval_bs, is_main):
    """Dev and test with the best parameters: metrics per split and the prediction files."""
    pred_dir = out_dir / "predictions"
    results: dict = {"dev": {}, "dev_splits": {}, "test": {}}
    files: list[Path] = []
    for split in data.dev + data.test:
        metrics, answers = evaluate(steps, params, split, eval_bs, data.buckets)
        group = "test" if split in data.test else "dev_splits"
        if split.score is not None:
            results[group][split.name] = metrics
        if is_main:
            files += split.write(answers, pred_dir)
    results["dev"] = results["dev_splits"][data.dev[0].name]
    if len(data.dev) == 1:
        del results["dev_splits"]
    if not results["test"]:
        del results["test"]
    return results, files
