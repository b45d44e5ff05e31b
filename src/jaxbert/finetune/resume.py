"""Whether a fine-tuning output_dir resumes, starts fresh or starts over: the run core's
one run-identity policy (`runtime.config_differences`) with fine-tuning's keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax

from jaxbert import config as config_lib
from jaxbert.checkpoint import read_config, step_dirs, sync_processes
from jaxbert.errors import UserError
from jaxbert.finetune.config import finetune_defaults
from jaxbert.train import runtime

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


def config_differences(saved: dict, current: dict) -> list[str]:
    """`config.KEY: checkpoint → now` for each key a resume may not change (keys one side
    lacks were added since: features.*, squad.eval_files, …; they had their defaults)."""
    defaults = json.loads(config_lib.to_json(finetune_defaults(current.get("task", "sst2"))))
    return runtime.config_differences(saved, current, RESUMABLE_CHANGES, defaults)


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
    runtime.check_output_dir(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    if step_dirs(ckpt_dir):
        saved = _saved_config(ckpt_dir)
        diff = [] if saved is None else config_differences(saved, cfg.to_dict())
        if not diff:
            return "resume"
        if not cfg.overwrite:
            raise runtime.refuse_resume(f"{ckpt_dir}/{step_dirs(ckpt_dir)[-1]}", diff, True)
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


def _print_main(text: str) -> None:
    if jax.process_index() == 0:
        print(text, flush=True)


def remove_checkpoints(out_dir: Path) -> None:
    if jax.process_index() == 0 and (out_dir / "checkpoints").exists():
        shutil.rmtree(out_dir / "checkpoints")
    sync_processes(f"finetune:rm-checkpoints:{out_dir}")
