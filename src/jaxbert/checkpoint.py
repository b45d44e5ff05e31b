"""Orbax checkpoints: train state, data-iterator position, rng and the resolved config.

Orbax writes each step to a temporary directory and renames it when complete, so a
crash mid-save never produces a step directory that looks finished; old steps are only
removed after a newer one is committed. On restore we still try the newest step first and
fall back to older ones if it cannot be read (disk corruption, truncated copies).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from jaxbert import fs
from jaxbert.errors import UserError

log = logging.getLogger(__name__)

ITEMS = ("state", "data", "meta", "config")


def _is_closed_loop_noise(exc: BaseException | None) -> bool:
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


def _silence_closed_loop_noise() -> None:
    """A failed orbax restore leaves tensorstore callbacks that later fire into orbax's
    closed asyncio loop; each prints a RuntimeError traceback (~90 per fallback) though
    nothing is wrong. Drop exactly that error from the process's exception hooks."""
    previous_unraisable, previous_thread = sys.unraisablehook, threading.excepthook

    def unraisable_hook(args):
        if not _is_closed_loop_noise(args.exc_value):
            previous_unraisable(args)

    def thread_hook(args):
        if not _is_closed_loop_noise(args.exc_value):
            previous_thread(args)

    sys.unraisablehook, threading.excepthook = unraisable_hook, thread_hook
    logging.getLogger("asyncio").addFilter(lambda r: not _is_orphaned_read_failure(r))


def _is_orphaned_read_failure(record: logging.LogRecord) -> bool:
    """The same failed restore's sibling array reads: when their asyncio tasks are garbage
    collected, asyncio logs each one's traceback ("Task exception was never retrieved"),
    at any later moment — mid-training after a fallback, or under another command's
    output. The restore itself already raised, and the caller reported it."""
    message = record.getMessage()
    return message.startswith("Task exception was never retrieved") and (
        "coro=<async_deserialize()" in message
    )


_silence_closed_loop_noise()


def checkpoint_defaults() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "directory": "",  # "" = OUTPUT_DIR/checkpoints; may be gs://bucket/… (orbax)
            "every_steps": 1000,
            "keep": 3,  # the newest K checkpoints are kept
            "keep_best": False,  # also keep the one with the lowest eval loss
            "async_save": True,
        }
    )


class Checkpointer:
    """One run's checkpoint directory."""

    def __init__(self, directory: fs.PathLike, cfg: Any):
        self.directory = fs.as_path(directory)  # a local dir or gs://…: never via pathlib
        policies = [pp.LatestN(n=int(cfg.keep))]
        if cfg.keep_best:
            policies.append(pp.BestN(get_metric_fn=lambda m: m["eval_loss"], reverse=True, n=1))
        options = ocp.CheckpointManagerOptions(
            preservation_policy=pp.AnyPreservationPolicy(policies),
            enable_async_checkpointing=bool(cfg.async_save),
            create=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

    def save(
        self, step: int, state, data_state: dict, rng, config, metrics=None, force=False
    ) -> bool:
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
            meta=ocp.args.JsonSave({"step": int(step), "rng": _rng_to_list(rng)}),
            config=ocp.args.JsonSave(config.to_dict()),
        )
        return self.manager.save(step, args=args, metrics=metrics, force=force)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def newest_config(self) -> tuple[int, dict] | None:
        """(step, saved run config) of the newest step whose config reads; None if none."""
        for step in reversed(self.steps()):
            try:
                return step, read_config(self.directory, step).to_dict()
            except (OSError, ValueError):  # UserError (no saved config) is a ValueError
                continue
        return None

    def restore_latest(self, abstract_state) -> tuple[int, Any, dict, Any] | None:
        """(step, state, data_state, rng) from the newest readable checkpoint, or None.

        Unreadable newer steps are moved aside to `<step>.unreadable` (kept for inspection,
        never deleted) so that training can write that step again.
        """
        unreadable = []
        for step in reversed(self.steps()):
            try:
                restored = self.restore(step, abstract_state)
            except Exception as e:  # noqa: BLE001 — any unreadable checkpoint: try the previous
                print(
                    f"warning: checkpoint {self.directory}/{step} is unreadable "
                    f"({_short(e)}); falling back to an older one",
                    flush=True,
                )
                unreadable.append(step)
                continue
            self._set_aside(unreadable)
            return restored
        self._set_aside(unreadable)
        return None

    def _set_aside(self, steps: list[int]) -> None:
        if not steps or jax.process_index() != 0:
            return
        for step in steps:
            src = self.directory / str(step)
            dst = self.directory / f"{step}.unreadable"
            n = 1
            while dst.exists():
                dst, n = self.directory / f"{step}.unreadable.{n}", n + 1
            fs.swap_in_dir(src, dst)  # a rename on disk; copy + delete on gs://
            print(f"warning: moved {src} to {dst}", flush=True)
        self.manager.reload()

    def restore(self, step: int, abstract_state) -> tuple[int, Any, dict, Any]:
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=ocp.args.JsonRestore(),
            meta=ocp.args.JsonRestore(),
        )
        out = self.manager.restore(step, args=args)
        return step, out.state, out.data, _rng_from_list(out.meta["rng"])

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _rng_to_list(rng) -> list[int]:
    return np.asarray(jax.random.key_data(rng)).tolist()


def _rng_from_list(values) -> jax.Array:
    return jax.random.wrap_key_data(np.asarray(values, dtype=np.uint32))


def _short(e: Exception) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) < 200 else text[:200] + "…"


def step_dirs(directory: fs.PathLike) -> list[int]:
    """Committed step numbers in a checkpoint directory, ascending (set-aside ones excluded)."""
    directory = fs.as_path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def read_config(directory: fs.PathLike, step: int | None = None) -> ml_collections.ConfigDict:
    """The resolved run config saved with a checkpoint (newest step by default)."""
    directory = fs.as_path(directory)
    steps = step_dirs(directory)
    if not steps:
        raise UserError(f"no checkpoint found in {directory}")
    step = steps[-1] if step is None else step
    path = directory / str(step) / "config" / "metadata"
    if not path.is_file():
        raise UserError(f"checkpoint {directory / str(step)} has no saved config")
    return ml_collections.ConfigDict(json.loads(path.read_text()))


def sync_processes(name: str) -> None:
    """A barrier over all processes (a no-op in a single-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def save_params(path: fs.PathLike, params, model_cfg: ml_collections.ConfigDict) -> epath.Path:
    """A standalone parameters checkpoint (e.g. converted from Hugging Face), written atomically.

    Everything goes to `<path>.tmp-partial`, renamed to `path` once complete, so `path`
    never holds a partial checkpoint (on gs://, where there is no rename, `fs.swap_in_dir`
    copies model_config.json last: a directory without it is incomplete and not loaded).
    Every process writes its shards (orbax's save is collective); only process 0 touches
    the directories, the others wait at barriers.
    """
    path = fs.as_path(path)
    if path.exists():
        raise UserError(f"{path} already exists; refusing to overwrite it")
    tmp = path.with_name(path.name + ".tmp-partial")
    primary = jax.process_index() == 0
    if primary:
        if tmp.exists():  # left by a crashed save
            tmp.rmtree()
        tmp.mkdir(parents=True)
    sync_processes(f"save_params:start:{path}")
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(tmp / "params", params)
    ckptr.wait_until_finished()
    if primary:
        (tmp / "model_config.json").write_text(json.dumps(model_cfg.to_dict(), indent=2))
        fs.swap_in_dir(tmp, path, marker="model_config.json")
    sync_processes(f"save_params:done:{path}")
    return path


def load_params(
    path: fs.PathLike, step: int | None = None
) -> tuple[ml_collections.ConfigDict, Any]:
    """(model config, params) from `save_params` output or from a pretraining run directory.

    A run directory (the `checkpoints/` folder of `jaxbert pretrain`, or its parent) yields
    the newest readable step's parameters, without its optimizer state; `step` asks for
    that one step only (analyses of a run's history), with no fallback.
    """
    path = fs.as_path(path)
    if (path / "params").is_dir() and (path / "model_config.json").is_file():
        cfg = ml_collections.ConfigDict(json.loads((path / "model_config.json").read_text()))
        return cfg, ocp.StandardCheckpointer().restore(path / "params")
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    steps = step_dirs(path)
    if not steps:
        raise UserError(f"{path}: not a jaxbert checkpoint (no params/ or step directories)")
    if step is not None and step not in steps:
        raise UserError(f"{path}: no step {step} (steps: {', '.join(map(str, steps))})")
    for candidate in [step] if step is not None else reversed(steps):
        try:
            cfg = read_config(path, candidate).model
            with warnings.catch_warnings():  # no target: orbax warns it reads shardings from file
                warnings.filterwarnings("ignore", message="Sharding info not provided")
                state = ocp.PyTreeCheckpointer().restore(path / str(candidate) / "state")
            return cfg, state["params"]
        except Exception as e:  # noqa: BLE001 — fall back to an older step
            if step is not None:  # the asked step only: no fallback
                raise UserError(f"{path}/{step}: unreadable checkpoint ({_short(e)})") from None
            print(
                f"warning: checkpoint {path}/{candidate} is unreadable ({_short(e)}); "
                "trying an older one"
            )
    raise UserError(f"{path}: no readable checkpoint")
