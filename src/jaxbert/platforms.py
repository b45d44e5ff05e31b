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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def cpu_malloc() -> bool:
    """On CPU-only hosts, glibc malloc set to keep freed memory instead of returning it.

    XLA:CPU allocates each step's temporaries afresh; glibc mmaps every large block and
    unmaps it on free, so each step page-faults its whole temp buffer in again (17M minor
    faults and 32 s of system time in one epoch of MRPC on all-MiniLM-L6-v2). One arena
    that neither mmaps nor trims keeps those pages: the Makefile's CPU_MALLOC, applied
    here for every `jaxbert` command. Off with JAXBERT_CPU_MALLOC=0, and wherever the
    user set a MALLOC_* variable or an accelerator is attached.
    """
    if os.environ.get("JAXBERT_CPU_MALLOC", "1") == "0" or tpu_attached():
        return False
    if glob.glob("/dev/nvidia[0-9]*") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        return bool(ok and libc.mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False


def compile_cache() -> str | None:
    """JAX's persistent compilation cache, on by default in ~/.cache/jaxbert/xla.

    Every fine-tuning seed, rerun and resumed job compiles the same programs again (a
    train and an eval step per length bucket, ~40% of a short run's CPU time); read back
    from disk they cost nothing. JAX_COMPILATION_CACHE_DIR, when set, wins (jax reads it
    itself); JAXBERT_COMPILE_CACHE=DIR moves the cache, =0 turns it off.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return os.environ["JAX_COMPILATION_CACHE_DIR"] or None
    setting = os.environ.get("JAXBERT_COMPILE_CACHE", "")
    if setting == "0":
        return None
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    path = os.path.expanduser(setting or os.path.join(home, "jaxbert", "xla"))
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    return path
