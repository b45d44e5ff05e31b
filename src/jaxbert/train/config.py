"""The pretraining run config: every key a run can set, with google-bert's defaults.

Config files in `configs/pretrain/` start from `pretrain_defaults()` and change what they
need; the result is locked, so a misspelt key in a file or an override is an error.
"""

from __future__ import annotations

import ml_collections

from jaxbert.checkpoint import checkpoint_defaults
from jaxbert.model.config import model_config
from jaxbert.train.optim import optimizer_defaults


def data_defaults() -> ml_collections.ConfigDict:
    from jaxbert.data.pipeline import default_data_config

    cfg = default_data_config()
    cfg.source = "prepared"  # prepared | synthetic (random batches, for benchmarks)
    return cfg


def pretrain_defaults() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = model_config("base")
    cfg.data = data_defaults()
    cfg.optimizer = optimizer_defaults()
    cfg.checkpoint = checkpoint_defaults()
    cfg.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})
    cfg.train = ml_collections.ConfigDict(
        {
            "batch_size": 256,  # global, over all hosts and devices
            "num_steps": 1_000_000,
            "grad_accum_steps": 1,  # micro-batches per step (same update as one big batch)
            "seed": 0,
            # Start from another run's newest checkpoint (train state and step, not its data
            # position) when this run has none yet: phase 2 continues phase 1 this way.
            "init_from": "",
            "log_every": 100,
            "eval_every": 10_000,
            "eval_batches": 20,
            "peak_flops_per_device": 0.0,  # 0: datasheet table, or measured on CPU
            "profile_start_step": -1,  # jax.profiler trace for [start, start + steps)
            "profile_steps": 5,
        }
    )
    cfg.distributed = ml_collections.ConfigDict(
        {
            # "auto": initialise when the environment says there are several processes
            # (SLURM, TPU pod, or the variables below); "off" never; "on" always.
            "mode": "auto",
            "coordinator_address": "",
            "num_processes": 0,
            "process_id": -1,
        }
    )
    cfg.output_dir = "runs/pretrain"
    cfg.tokenizer = ""  # recorded with the run so fine-tuning finds the same vocabulary
    cfg.lock()
    return cfg
