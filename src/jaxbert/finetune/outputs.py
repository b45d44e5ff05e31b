"""A finished fine-tuning run's outputs: predictions of dev and test with the best
parameters, best_params/ (with its tokenizer, so `init=<output_dir>/best_params` works),
config.json and metrics.json (last: it marks the run finished). Every write goes beside
its target and is renamed over it (`jaxbert.fs`); one the disk refuses stops the run with
one line naming the path (`runtime.writing`)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections

from jaxbert import config as config_lib
from jaxbert import fs
from jaxbert.checkpoint import sync_processes
from jaxbert.finetune.batches import evaluate, num_rows
from jaxbert.finetune.build import warmup_steps
from jaxbert.finetune.data import TaskData
from jaxbert.pretrained import Pretrained
from jaxbert.train import runtime
from jaxbert.train.logger import format_duration


@dataclasses.dataclass
class FinetuneResult:
    output_dir: Path
    metrics: dict | None  # the metrics.json content; None when stopped by SIGTERM
    files: list[Path]
    params: object  # the best-on-dev parameters (sharded jax arrays)
    preempted: bool = False  # SIGTERM: checkpointed and stopped; rerun to resume


def write_json(path: Path, obj, **kw) -> None:
    """Beside, then renamed over: a reader sees the old file or the new, never half."""
    text = json.dumps(obj, indent=2, **kw)
    with runtime.writing(path):
        fs.atomic_write_text(path, text)


def finish(cfg, pre: Pretrained, data: TaskData, trainer, out_dir: Path, log) -> FinetuneResult:
    """Final predictions with the best params, best_params/, then metrics.json (last: it
    marks the run finished)."""
    p, is_main = trainer.progress, jax.process_index() == 0
    log.print(
        f"best dev {data.metric} {p.best:.4f} at epoch {p.best_epoch} "
        f"(trained in {format_duration(p.train_time_s)})"
    )
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    metrics, files = final_predictions(
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
        save_best(trainer.best_params, pre, out_dir)
    if is_main:
        write_json(out_dir / "metrics.json", summary)
    log.close()
    return FinetuneResult(out_dir, summary, files, trainer.best_params)


def save_config(cfg, pre: Pretrained, out_dir: Path, num_steps: int) -> None:
    """The run config plus what was resolved from it (model, tokenizer, step counts)."""
    resolved = {
        "model": pre.model_cfg.to_dict(),
        "tokenizer": str(pre.tokenizer_path),
        "init_source": pre.source,
        "num_steps": num_steps,
        "warmup_steps": warmup_steps(cfg, num_steps),
    }
    config = {**json.loads(config_lib.to_json(cfg)), "resolved": resolved}
    write_json(out_dir / "config.json", config, sort_keys=True)


def save_best(params, pre: Pretrained, out_dir: Path) -> None:
    """Writes the new best params beside the old ones, then swaps them in, so a crash at
    any point leaves one complete best_params/ (the old until the swap, then the new); a
    write the disk refuses leaves the old one and no partial directory."""
    from jaxbert.checkpoint import save_params

    if "bert" not in params and pre.bert_params is not None:  # mode=feature: the frozen encoder
        params = {**params, "bert": pre.bert_params}
    target, new = out_dir / "best_params", out_dir / "best_params.new"
    is_main = jax.process_index() == 0
    if is_main and new.exists():  # left by a crash before the rename: incomplete or stale
        shutil.rmtree(new)
    sync_processes(f"finetune:best:{out_dir}")
    try:
        with runtime.writing(target, "best parameters", "the previous best_params/ is intact"):
            save_params(new, *stored_layout(params, pre))
            if is_main:
                copy_tokenizer(pre.tokenizer_path, new / "tokenizer")
    except runtime.WriteFailed:
        if is_main:
            for partial in (new, new.with_name(new.name + ".tmp-partial")):
                shutil.rmtree(partial, ignore_errors=True)
        raise
    runtime.fault_point("best_params")
    if is_main:
        fs.swap_in_dir(new, target)
    sync_processes(f"finetune:best-done:{out_dir}")


def stored_layout(params, pre: Pretrained):
    """Params and model config in the layer layout the checkpoint came in (stacked or
    `layers_i`), whatever layout fine-tuning ran in (config.scan_layers). jax ops, so
    sharded arrays of a multi-host run stay where they are."""
    from jaxbert.convert import stack_layers, unstack_layers

    if pre.stored_scan is None or pre.stored_scan == pre.model_cfg.scan_layers:
        return params, pre.model_cfg
    if pre.stored_scan:
        params = stack_layers(params, stack=jnp.stack)
    else:
        params = unstack_layers(params, take=lambda x, i: x[i])
    cfg = ml_collections.ConfigDict(pre.model_cfg.to_dict())
    cfg.scan_layers = pre.stored_scan
    return params, cfg


def copy_tokenizer(path: Path, dest: Path) -> None:
    """The tokenizer beside saved params, so `init=<output_dir>/best_params` finds it."""
    from jaxbert.data.tokenizer import copy_tokenizer_files

    copy_tokenizer_files(path, dest)


def final_predictions(data: TaskData, steps, params, out_dir: Path, eval_bs, is_main):
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
            with runtime.writing(pred_dir, "predictions"):
                files += split.write(answers, pred_dir)
    results["dev"] = results["dev_splits"][data.dev[0].name]
    if len(data.dev) == 1:
        del results["dev_splits"]
    if not results["test"]:
        del results["test"]
    return results, files
