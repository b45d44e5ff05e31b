"""The run core (train/runtime.py) in isolation: failed writes named by path and cause,
one run-identity policy, output-dir checks, signals, and metrics.jsonl after a resume."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

from jaxbert.errors import UserError, WriteFailed, write_error_reason
from jaxbert.train import runtime
from jaxbert.train.logger import MetricsLogger


def test_write_errors_are_recognised_through_wrappers_and_text():
    """ENOSPC as an OSError, as tensorstore's text (os_error_code), chained under another
    exception, and numpy's short write all read "No space left on device"; a read error
    or an unrelated exception is not a write error."""
    assert write_error_reason(OSError(errno.ENOSPC, "x")) == "No space left on device"
    text = ValueError("RESOURCE_EXHAUSTED: Failed writing: x [os_error_code='28']")
    assert write_error_reason(text) == "No space left on device"
    try:
        try:
            raise OSError(errno.EACCES, "denied")
        except OSError as inner:
            raise RuntimeError("save failed") from inner
    except RuntimeError as outer:
        assert write_error_reason(outer) == "Permission denied"
    assert write_error_reason(OSError("102740 requested and 32704 written")) is not None
    assert write_error_reason(FileNotFoundError(errno.ENOENT, "gone")) is None
    assert write_error_reason(KeyError("x")) is None


def test_writing_names_the_path_and_passes_other_errors_through(tmp_path):
    """`writing` turns a refused write into one WriteFailed (exit code 1) naming the path;
    other exceptions are not swallowed."""
    refused = pytest.raises(WriteFailed, match=r"could not write metrics .*m\.json: No space")
    with refused, runtime.writing(tmp_path / "m.json", "metrics"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert WriteFailed.exit_code == 1
    with pytest.raises(KeyError), runtime.writing(tmp_path):
        raise KeyError("x")


class FakeCheckpointer:
    """Fails the save of `bad_step` the way orbax does on a full disk."""

    def __init__(self, directory: Path, bad_step: int):
        self.directory, self.bad_step, self.manager = directory, bad_step, self
        self.saved = []

    def save(self, step, *args, force=False, **kwargs):
        (self.directory / f"{step}.orbax-checkpoint-tmp-1").mkdir(parents=True)
        if step == self.bad_step:
            raise ValueError(f"Error writing {step}: No space left on device [os_error_code='28']")
        (self.directory / f"{step}.orbax-checkpoint-tmp-1").rename(self.directory / str(step))
        self.saved.append(step)

    def wait(self):
        pass

    def close(self):
        pass


def test_a_failed_checkpoint_save_names_the_step_and_the_last_good_one(tmp_path, monkeypatch):
    """Step 8's save fails: one WriteFailed naming checkpoints/8, the cause and the last
    complete checkpoint (4); the partial directory is gone, step 4 is untouched."""
    ckpt = FakeCheckpointer(tmp_path, bad_step=8)
    saver = runtime.CheckpointSaver(ckpt)
    saver.save(4, None)
    saver.poll()
    with pytest.raises(WriteFailed) as info:
        saver.save(8, None)
    message = str(info.value)
    assert f"{tmp_path}/8: No space left on device" in message
    assert f"last complete checkpoint is {tmp_path}/4" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4"]


def test_one_identity_policy_with_defaults_and_resumable_keys():
    """Keys that may change (a whole section or one key) are ignored; a key a saved config
    lacks takes its default; every other difference is named `config.KEY: old → new`."""
    defaults = {"model": {"size": "base", "new_key": 0}, "train": {"log_every": 1, "lr": 1.0}}
    saved = {"model": {"size": "tiny"}, "train": {"log_every": 1, "lr": 1.0}, "mesh": {"d": 1}}
    now = {"model": {"size": "tiny", "new_key": 0}, "train": {"log_every": 9, "lr": 2.0},
           "mesh": {"d": 4}}  # fmt: skip
    diff = runtime.config_differences(saved, now, ["mesh", "train.log_every"], defaults)
    assert diff == ["config.train.lr: 1.0 → 2.0"]
    error = runtime.refuse_resume("run/checkpoints/3", diff, overwrite=True)
    assert "run/checkpoints/3 was trained with a different config" in str(error)
    assert "--config.overwrite=true" in str(error)


def test_output_dir_checks_refuse_files_before_writing(tmp_path):
    """A file as the output dir, or as one of its parents, is refused; nothing is made."""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="is a file, not a directory"):
        runtime.check_output_dir(tmp_path / "afile")
    with pytest.raises(UserError, match="afile is a file"):
        runtime.check_output_dir(tmp_path / "afile" / "run")
    runtime.check_output_dir(tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists()


def test_signals_set_the_agreed_stop_and_a_second_ctrl_c_interrupts():
    """SIGTERM inside the context: the (single-process) agreed stop is True and named;
    a second Ctrl-C raises KeyboardInterrupt; the old handlers come back on exit."""
    before = signal.getsignal(signal.SIGTERM)
    with runtime.Interrupts() as interrupts:
        assert not interrupts.agreed()
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.agreed() and interrupts.name == "SIGTERM" and interrupts.stopping
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(KeyboardInterrupt), runtime.Interrupts() as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.name == "Ctrl-C"
        os.kill(os.getpid(), signal.SIGINT)


def test_fault_hook_fires_only_at_its_point_step_and_process(monkeypatch):
    """JAXBERT_TEST_FAULT=POINT:STEP:SIGNAL[:PROCESS]: another step, point or process does
    nothing (process 1 does not exist in a one-process run)."""
    calls = []
    monkeypatch.setattr(runtime, "FAULT_HOOK", lambda point, step: calls.append((point, step)))
    monkeypatch.setenv(runtime.FAULT_ENV, "step:3:KILL:1")
    runtime.fault_point("step", 3)
    monkeypatch.setenv(runtime.FAULT_ENV, "checkpoint:3:KILL")
    runtime.fault_point("step", 3)
    runtime.fault_point("checkpoint", 2)
    assert calls == [("step", 3), ("step", 3), ("checkpoint", 2)]


def test_metrics_resume_drops_the_rows_after_the_restored_step(tmp_path):
    """A resumed run logs steps after its checkpoint again: the killed run's rows for them
    (and a torn last line) go, so each step appears once."""
    path = tmp_path / "metrics.jsonl"
    rows = [json.dumps({"step": s, "split": "train"}) for s in range(1, 7)]
    path.write_text("\n".join(rows) + '\n{"step": 7, "spl')
    log = MetricsLogger(tmp_path, tensorboard=False)
    log.resume_at(4)
    log.write(5, "train", {"loss": 1.0})
    log.close()
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
