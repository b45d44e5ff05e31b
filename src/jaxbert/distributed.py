"""Multi-host start-up: `jax.distributed.initialize` from the config or the environment.

Local multi-process runs (launch/local_multiprocess.sh) set JAXBERT_COORDINATOR,
JAXBERT_NUM_PROCESSES and JAXBERT_PROCESS_ID; SLURM and TPU pods are detected by JAX
itself. Must run before anything touches a device.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import jax

from jaxbert.errors import UserError

_initialized = False


def _explicit(cfg: Any) -> dict:
    address = cfg.coordinator_address or os.environ.get("JAXBERT_COORDINATOR", "")
    num = cfg.num_processes or int(os.environ.get("JAXBERT_NUM_PROCESSES", "0"))
    pid = cfg.process_id if cfg.process_id >= 0 else int(os.environ.get("JAXBERT_PROCESS_ID", "-1"))
    if not address:
        return {}
    if num <= 0 or pid < 0:
        raise UserError(
            "distributed: a coordinator address needs num_processes and process_id "
            "(config.distributed.* or JAXBERT_NUM_PROCESSES / JAXBERT_PROCESS_ID)"
        )
    return {"coordinator_address": address, "num_processes": num, "process_id": pid}


def _cluster_detected() -> bool:
    slurm = int(os.environ.get("SLURM_NTASKS", "1")) > 1
    tpu_pod = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return slurm or tpu_pod


def maybe_initialize(cfg: Any = None) -> None:
    """Initialise the JAX distributed runtime once, if this run spans several processes.
    `cfg` is a run's `distributed` section; None reads only the environment."""
    global _initialized
    if cfg is None:
        cfg = SimpleNamespace(mode="auto", coordinator_address="", num_processes=0, process_id=-1)
    if _initialized or cfg.mode == "off":
        return
    kwargs = _explicit(cfg)
    wanted = kwargs or cfg.mode == "on" or _cluster_detected()
    if wanted and (kwargs.get("num_processes", 2) > 1 or cfg.mode == "on"):
        jax.distributed.initialize(**kwargs)
        _initialized = True
