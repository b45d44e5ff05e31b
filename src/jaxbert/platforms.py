"""Keep JAX off the TPU backend on hosts without a TPU, even with libtpu installed.

libtpu (the `tpu-compile` extra, for `jaxbert plan --target`) makes JAX probe for TPU
chips at its first device query: on a CPU host that prints screens of warnings, costs a
second, and takes libtpu's process lockfile, which then refuses every other process that
loads libtpu (ABORTED: "...multi-process lockfile"). Where no TPU device node exists,
the default platform list leaves TPU out; JAX_PLATFORMS, when set, always wins.
"""

from __future__ import annotations

import glob
import importlib.util
import os


def tpu_attached() -> bool:
    """TPU chips appear as /dev/accel* (v4, v5p) or /dev/vfio/* (v5e, v6e)."""
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def default_platforms() -> None:
    """Call before jax initialises a backend (importing jax is fine)."""
    if "JAX_PLATFORMS" in os.environ or tpu_attached():
        return
    if importlib.util.find_spec("libtpu") is None:
        return
    cuda = importlib.util.find_spec("jax_cuda12_plugin") is not None
    os.environ["JAX_PLATFORMS"] = "cuda,cpu" if cuda else "cpu"
