"""The fine-tuning loop: the side effects around the pure steps in `finetune/step.py`.

Features come from `finetune/data.py` (numpy); each epoch shuffles them with a seeded
numpy permutation and cuts fixed-shape batches (the last one padded with weight-0 rows);
after each epoch the dev split is scored with the task's official metric and the best
epoch's parameters are kept. At the end those parameters predict dev and test, and the
metrics, prediction files, resolved config and (optionally) the parameters are written to
`output_dir`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxbert import config as config_lib
from jaxbert import sharding
from jaxbert.errors import UserError
from jaxbert.finetune.config import task_family
from jaxbert.finetune.data import EvalSplit, TaskData, load_task_data
from jaxbert.finetune.pretrained import Pretrained, check_vocab, load_pretrained, resolve_path
from jaxbert.finetune.step import FinetuneSteps, build_model, make_optimizer
from jaxbert.model.config import validate
from jaxbert.train import optim
from jaxbert.train.logger import MetricsLogger, format_duration, progress_bar


@dataclasses.dataclass
class FinetuneResult:
    output_dir: Path
    metrics: dict  # the metrics.json content
    files: list[Path]
    params: object  # the best-on-dev parameters (sharded jax arrays)


def check_config(cfg) -> None:
    try:
        task_family(cfg.task)
    except ValueError as e:
        raise UserError(f"config.task: {e}") from None
    for key, allowed in (("mode", ("full", "feature")), ("source", ("tsv", "tfds"))):
        if cfg[key] not in allowed:
            raise UserError(f"config.{key} must be one of {allowed}, got {cfg[key]!r}")
    if cfg.source == "tfds" and task_family(cfg.task) != "glue":
        raise UserError("config.source=tfds is only available for GLUE tasks")
    for key in ("batch_size", "num_epochs", "max_seq_length", "log_every"):
        if cfg[key] <= 0:
            raise UserError(f"config.{key} must be positive, got {cfg[key]}")
    if not 0 <= cfg.warmup_fraction <= 1:
        raise UserError(f"config.warmup_fraction must be in [0, 1], got {cfg.warmup_fraction}")


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
    features: dict[str, np.ndarray], order: np.ndarray, batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Global batches of `order`'s rows, the last one topped up with weight-0 copies.

    Padding repeats real rows (not zeros): an all-padding row would attend over no keys,
    and a NaN there would survive multiplication by weight 0.
    """
    n = len(order)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        real = len(idx)
        if real < batch_size:
            idx = np.concatenate([idx, np.resize(order[:batch_size], batch_size - real)])
        batch = {k: v[idx] for k, v in features.items()}
        batch["weight"] = (np.arange(batch_size) < real).astype(np.float32)
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


def predict(steps: FinetuneSteps, params, features, batch_size: int) -> tuple[dict, float]:
    """Predictions for every row of `features` (padding stripped) and the mean loss."""
    n = num_rows(features)
    outs, total, count = [], 0.0, 0.0
    for batch in padded_batches(features, np.arange(n), batch_size):
        preds, t, c = steps.eval(params, sharding.global_batch(local_rows(batch), steps.mesh))
        outs.append(jax.device_get(preds))
        total, count = total + float(t), count + float(c)
    merged = {k: np.concatenate([o[k] for o in outs])[:n] for k in outs[0]} if outs else {}
    return merged, total / max(count, 1.0)


def evaluate(steps, params, split: EvalSplit, batch_size: int) -> tuple[dict, object]:
    """The split's metrics and its decoded answers (for `split.write`)."""
    preds, loss = predict(steps, params, split.features, batch_size)
    answers = split.decode(preds)
    metrics = {"loss": loss}
    if split.score is not None:
        metrics.update(split.score(answers))
    return metrics, answers


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


# --- the run ----------------------------------------------------------------------------


def _prepare_output_dir(cfg) -> Path:
    out_dir = Path(cfg.output_dir)
    if (out_dir / "metrics.json").exists() and not cfg.overwrite:
        raise UserError(
            f"config.output_dir {out_dir} already holds a fine-tuning run; choose another "
            "--config.output_dir or pass --config.overwrite=true"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _optimizer_config(cfg, num_steps: int) -> ml_collections.ConfigDict:
    opt = optim.optimizer_defaults()
    opt.learning_rate = cfg.learning_rate
    opt.weight_decay = cfg.weight_decay
    opt.warmup_steps = int(round(cfg.warmup_fraction * num_steps))
    opt.clip_norm = cfg.clip_norm
    return opt


def _example(batch_size: int, seq_len: int) -> dict:
    z = jnp.zeros((batch_size, seq_len), jnp.int32)
    return {"input_ids": z, "input_mask": z, "segment_ids": z}


def setup(cfg, log=print):
    """Everything before the first step: mesh, model, data, optimizer, sharded state."""
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
    log(
        f"{cfg.task}: {num_rows(data.train)} train features, "
        + ", ".join(f"{s.name} {num_rows(s.features)}" for s in data.dev + data.test)
        + f" ({time.perf_counter() - t0:.1f}s to read and tokenize)"
    )
    steps_per_epoch = math.ceil(num_rows(data.train) / cfg.batch_size)
    num_steps = steps_per_epoch * cfg.num_epochs
    opt = _optimizer_config(cfg, num_steps)
    tx = make_optimizer(opt, num_steps, cfg.mode)
    schedule = optim.learning_rate_schedule(opt, num_steps)
    model = build_model(data.kind, pre.model_cfg, data.num_labels)
    steps = FinetuneSteps(
        model, tx, schedule, data.kind, mesh, _example(cfg.batch_size, cfg.max_seq_length)
    )
    pretrained = None if pre.bert_params is None else {"bert": pre.bert_params}
    state = steps.init_state(jax.random.key(cfg.seed), pretrained)
    return pre, data, steps, state, steps_per_epoch


def finetune(cfg) -> FinetuneResult:
    is_main = jax.process_index() == 0
    out_dir = _prepare_output_dir(cfg)
    log = MetricsLogger(out_dir, enabled=is_main, tensorboard=False)
    pre, data, steps, state, steps_per_epoch = setup(cfg, log.print)
    num_steps = steps_per_epoch * cfg.num_epochs
    if is_main:
        _save_config(cfg, pre, out_dir, num_steps)
    log.print(
        f"fine-tuning {cfg.task} ({cfg.mode}) from {pre.source} on "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), mesh "
        f"{dict(steps.mesh.shape)}: {cfg.num_epochs} epochs × {steps_per_epoch} steps"
    )
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    history, best, best_params, best_epoch = [], -math.inf, None, 0
    clock = _Clock(num_steps)
    for epoch in range(1, cfg.num_epochs + 1):
        state, record = _train_epoch(cfg, steps, state, data, epoch, clock, log)
        if cfg.eval_every_epoch or epoch == cfg.num_epochs:
            record["dev"], _ = evaluate(steps, state.params, data.dev[0], eval_bs)
            log.write(clock.step, "eval", record["dev"])
            log.print(
                f"epoch {epoch}: train loss {record['train_loss']:.4f} | dev {_fmt(record['dev'])}"
            )
            if record["dev"][data.metric] > best or best_params is None:
                best, best_epoch = record["dev"][data.metric], epoch
                last = epoch == cfg.num_epochs  # no later step will donate these buffers
                best_params = state.params if last else steps.copy_params(state)
        history.append(record)
    train_time = time.perf_counter() - clock.t0
    log.print(
        f"best dev {data.metric} {best:.4f} at epoch {best_epoch} "
        f"(trained in {format_duration(train_time)})"
    )
    metrics, files = _final_predictions(cfg, data, steps, best_params, out_dir, eval_bs, is_main)
    summary = {
        "task": cfg.task,
        "mode": cfg.mode,
        "init": pre.source,
        "metric": data.metric,
        "best_epoch": best_epoch,
        **metrics,
        "history": history,
        "num_train_features": num_rows(data.train),
        "num_steps": num_steps,
        "train_time_s": train_time,
        "predictions": [str(p) for p in files],
    }
    if is_main:
        (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    if cfg.save_best:
        _save_best(best_params, pre, out_dir)
    log.close()
    return FinetuneResult(out_dir, summary, files, best_params)


@dataclasses.dataclass
class _Clock:
    total: int
    step: int = 0
    t0: float = dataclasses.field(default_factory=time.perf_counter)


def _train_epoch(cfg, steps: FinetuneSteps, state, data: TaskData, epoch: int, clock, log):
    """One pass over the shuffled training features; returns the state and a record."""
    rng = jax.random.key(cfg.seed + 1)  # the step folds its own index in
    order = epoch_order(num_rows(data.train), cfg.seed, epoch)
    loss_sum, t_epoch, n = jnp.zeros(()), time.perf_counter(), 0
    for batch in padded_batches(data.train, order, cfg.batch_size):
        state, metrics = steps.train(
            state, sharding.global_batch(local_rows(batch), steps.mesh), rng
        )
        loss_sum, clock.step, n = loss_sum + metrics["loss"], clock.step + 1, n + 1
        if clock.step % cfg.log_every == 0 or clock.step == clock.total:
            log.print(_progress(clock, epoch, cfg, metrics))
            log.write(clock.step, "train", {k: float(v) for k, v in metrics.items()})
    train_loss = float(loss_sum) / max(n, 1)
    if not math.isfinite(train_loss):
        raise UserError(
            f"fine-tuning diverged in epoch {epoch} (train loss {train_loss}); lower "
            "config.learning_rate or check the data"
        )
    return state, {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_time_s": time.perf_counter() - t_epoch,
    }


def _save_config(cfg, pre: Pretrained, out_dir: Path, num_steps: int) -> None:
    """The run config plus what was resolved from it (model, tokenizer, step counts)."""
    resolved = {
        "model": pre.model_cfg.to_dict(),
        "tokenizer": str(pre.tokenizer_path),
        "init_source": pre.source,
        "num_steps": num_steps,
        "warmup_steps": int(round(cfg.warmup_fraction * num_steps)),
    }
    config = {**json.loads(config_lib.to_json(cfg)), "resolved": resolved}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def _save_best(params, pre: Pretrained, out_dir: Path) -> None:
    from jaxbert.checkpoint import save_params

    target = out_dir / "best_params"
    if target.exists():  # only reachable with overwrite=true (checked up front)
        shutil.rmtree(target)
    save_params(target, params, pre.model_cfg)
    if jax.process_index() == 0:
        copy_tokenizer(pre.tokenizer_path, target / "tokenizer")


def copy_tokenizer(path: Path, dest: Path) -> None:
    """The tokenizer beside saved params, so `init=<output_dir>/best_params` finds it."""
    path = Path(path)
    if path.is_dir():
        from jaxbert.data.tokenizer import load_tokenizer

        path = load_tokenizer(path).path
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, dest / ("tokenizer.model" if path.suffix == ".model" else "vocab.txt"))
    for extra in ("tokenizer_config.json",):
        if (path.parent / extra).is_file():
            shutil.copy(path.parent / extra, dest / extra)


def _progress(clock: _Clock, epoch: int, cfg, metrics) -> str:
    elapsed = time.perf_counter() - clock.t0
    eta = elapsed / clock.step * (clock.total - clock.step)
    m = jax.device_get(metrics)
    ex_per_s = clock.step * cfg.batch_size / max(elapsed, 1e-9)
    return (
        f"epoch {epoch}/{cfg.num_epochs} step {clock.step}/{clock.total} "
        f"{progress_bar(clock.step, clock.total)} loss {float(m['loss']):.4f} | "
        f"lr {float(m['learning_rate']):.2e} | {ex_per_s:,.0f} ex/s | ETA {format_duration(eta)}"
    )


def _final_predictions(cfg, data: TaskData, steps, params, out_dir: Path, eval_bs, is_main):
    """Dev and test with the best parameters: metrics per split and the prediction files."""
    pred_dir = out_dir / "predictions"
    results: dict = {"dev": {}, "dev_splits": {}, "test": {}}
    files: list[Path] = []
    for split in data.dev + data.test:
        metrics, answers = evaluate(steps, params, split, eval_bs)
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
