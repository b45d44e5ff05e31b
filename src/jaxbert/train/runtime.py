"""The run core shared by pretraining (`train/loop.py`) and fine-tuning (`finetune/run.py`).

What a run does around its steps, once for both loops:

- **Signals.** SIGTERM and Ctrl-C ask for a stop (`Interrupts`); the stop step is agreed
  across processes (`Interrupts.agreed`, an all-gather of each process's flag at every
  step), so every host checkpoints the same step even when the signal reached only some of
  them. A second Ctrl-C interrupts at once. After the checkpoint SIGTERM returns normally
  (exit 0) and Ctrl-C raises KeyboardInterrupt (exit 130).
- **One test hook** (`fault_point`): tests make a run signal or kill itself at a named
  point; runs never set it.
- **One run-identity policy** (`config_differences`, `refuse_resume`): a resumed run must
  match its checkpoint on every key except those that only say where, how often or how
  laid out; each loop names those keys. One message format for both.
- **Output checks** (`check_output_dir`) before anything is written.
- **Failed writes stop the run** (`CheckpointSaver`, `writing`): a checkpoint, parameter,
  prediction or metrics write that the environment refuses (disk full, permission) stops
  training at once with one `WriteFailed` line naming the path and the cause; the partial
  checkpoint is removed, earlier ones stay restorable, and the background noise of orbax,
  tensorstore and absl about that error is dropped (the line says it all).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Iterable
from pathlib import Path

import jax
import numpy as np

from jaxbert.errors import UserError, WriteFailed, write_error_reason, write_failed

# --- signals ------------------------------------------------------------------------------


class Interrupts:
    """SIGTERM and SIGINT set a flag; the loop checkpoints at the agreed step and stops.

    Only the main thread can install handlers; elsewhere signals keep their defaults.
    """

    def __init__(self):
        self.signum: int | None = None
        self.remote = False  # the stop came from another process's signal
        self.stopping = False  # set by `agreed`, the same on every process
        self._previous: dict = {}

    @property
    def name(self) -> str | None:
        if self.signum is None:
            return None
        name = "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name
        return f"{name} (on another process)" if self.remote else name

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user will not wait for the save
        if self.signum is None or signum == signal.SIGINT:
            self.signum = signum

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def agreed(self) -> bool:
        """Whether to stop after this step, the same answer on every process: a collective
        in a multi-process run, so every process calls it at every step."""
        code = self.signum or 0
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            codes = np.asarray(multihost_utils.process_allgather(np.int32(code)))
            agreed = int(codes.max())
            if agreed and not code:
                self.signum, self.remote = agreed, True
            code = agreed
        self.stopping = bool(code)
        return self.stopping

    def finish(self, message: str) -> None:
        """After the stop's checkpoint: print where it is; Ctrl-C then raises."""
        if jax.process_index() == 0:
            print(message, flush=True)
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt


def stop_message(interrupts: Interrupts, step: int, ckpt_dir, where: str = "") -> str:
    return (
        f"{interrupts.name}: saved a checkpoint at step {step}{where} in {ckpt_dir}; "
        "rerun the same command to resume"
    )


# --- the one test hook --------------------------------------------------------------------

# `JAXBERT_TEST_FAULT=POINT:STEP:SIGNAL[:PROCESS]` makes the run send itself SIGNAL (KILL,
# INT or TERM) at POINT ("step": after that train step; "checkpoint": once that step's
# checkpoint is committed), on every process or only on process PROCESS. `FAULT_HOOK(point,
# step)`, when set in-process, is called at every point (also "best_params": new best
# parameters written beside the old, not yet renamed over them). Tests only.
FAULT_ENV = "JAXBERT_TEST_FAULT"
FAULT_HOOK = None


def fault_point(point: str, step: int = 0, ckpt=None) -> None:
    """Called by the loops at each point; `ckpt`: the point is "once it is committed"."""
    spec = os.environ.get(FAULT_ENV, "")
    where, at, name, *process = spec.split(":") if spec else ("", "0", "", "")
    ours = where == point and int(at) == step
    if ours and process and int(process[0]) != jax.process_index():
        ours = False
    if ckpt is not None and (ours or FAULT_HOOK is not None):
        ckpt.wait()
    if FAULT_HOOK is not None:
        FAULT_HOOK(point, step)
    if ours:
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


# --- run identity -------------------------------------------------------------------------


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(
    saved: dict, now: dict, may_change: Iterable[str], defaults: dict
) -> list[str]:
    """`config.KEY: saved → now` for every key that differs, except `may_change` ones (a
    key or a section). A key one side lacks was added since: it had its default then."""
    a, b = _flat(json.loads(json.dumps(saved))), _flat(json.loads(json.dumps(now)))
    d = _flat(json.loads(json.dumps(defaults)))
    for k in (set(a) ^ set(b)) & set(d):
        a.setdefault(k, d[k])
        b.setdefault(k, d[k])
    free = tuple(may_change)
    missing = "<absent>"
    return [
        f"config.{k}: {a.get(k, missing)!r} → {b.get(k, missing)!r}"
        for k in sorted(set(a) | set(b))
        if not any(k == f or k.startswith(f + ".") for f in free)
        and a.get(k, missing) != b.get(k, missing)
    ]


def refuse_resume(checkpoint, diff: list[str], overwrite: bool = False) -> UserError:
    """The one refusal: a run directory belongs to one training config."""
    return UserError(
        f"{checkpoint} was trained with a different config; refusing to resume it with this "
        f"one ({'; '.join(diff)}). Rerun with the saved values to resume it"
        + (", pass --config.overwrite=true to start over," if overwrite else "")
        + " or choose another output_dir"
    )


# --- the output directory -----------------------------------------------------------------


def check_output_dir(path, key: str = "config.output_dir") -> None:
    """Refuses an output directory that cannot be written, before anything is written."""
    if "://" in str(path):
        return  # a bucket: its errors come from the first write
    p = Path(path).absolute()
    if p.exists() and not p.is_dir():
        raise UserError(f"{key} {p} is a file, not a directory")
    existing = p
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key} {p}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{key} {p}: permission denied (cannot write in {existing})")


# --- failed writes ------------------------------------------------------------------------


@contextlib.contextmanager
def writing(path, what: str = "", hint: str = ""):
    """Turns a write the environment refuses into one `WriteFailed` naming `path`."""
    try:
        yield
    except WriteFailed:
        raise
    except Exception as e:
        error = write_failed(path, e, what, hint)
        if error is None:
            raise
        raise error from None


class CheckpointSaver:
    """A loop's checkpoint saves. Orbax writes asynchronously; the step after a save waits
    for it (that step's computation is already dispatched, so the write still overlaps
    it), on every process at the same step. A failed write stops the run there with the
    partial directory removed: training never goes on past a lost checkpoint."""

    def __init__(self, ckpt, last_good: int | None = None):
        self.ckpt, self.last_good, self.pending = ckpt, last_good, None

    def save(self, step: int, *args, **kwargs) -> None:
        self._wait()
        try:
            self.ckpt.save(step, *args, force=True, **kwargs)
        except Exception as e:
            self._failed(step, e)
        self.pending = step
        fault_point("checkpoint", step, self)

    def poll(self) -> None:
        """Once per step, after dispatching it: the previous step's save, committed."""
        self._wait()

    def wait(self) -> None:
        self._wait()

    def _wait(self) -> None:
        if self.pending is None:
            return
        step, self.pending = self.pending, None
        try:
            self.ckpt.wait()
        except Exception as e:
            self._failed(step, e)
        self.last_good = step

    def close(self) -> None:
        self._wait()
        self.ckpt.close()

    def _failed(self, step: int, e: BaseException):
        where = self.ckpt.directory
        last = f"{where}/{self.last_good}" if self.last_good is not None else None
        hint = f"the last complete checkpoint is {last}" if last else "no checkpoint was saved"
        error = write_failed(f"{where}/{step}", e, "checkpoint", hint + "; free space and "
                             "rerun the same command to resume")  # fmt: skip
        if error is None:
            raise e
        if jax.process_index() == 0 and "://" not in str(where):
            for tmp in Path(os.fspath(where)).glob(f"{step}.orbax-checkpoint-tmp*"):
                shutil.rmtree(tmp, ignore_errors=True)
        raise error from None  # (orbax's threads stay stuck on it: the CLI exits without them)


def _quiet_write_errors() -> None:
    """Orbax's background threads report a failed write as thread tracebacks and absl
    ERROR logs (dozens per save) before the loop sees it; the loop's one line replaces them.
    Only write errors (disk full, permissions) are dropped; anything else still prints."""
    previous = threading.excepthook

    def thread_hook(args):
        if write_error_reason(args.exc_value) is None:
            previous(args)

    def is_noise(record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return write_error_reason(exc) is not None or (
            write_error_reason(Exception(record.getMessage())) is not None
        )

    threading.excepthook = thread_hook
    for name in ("absl", "asyncio"):
        logging.getLogger(name).addFilter(lambda r: not is_noise(r))


_quiet_write_errors()
