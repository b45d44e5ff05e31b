"""Fine-tuning survives interruption: after SIGKILL, Ctrl-C or SIGTERM mid-epoch, rerunning
the same command resumes and ends with the uninterrupted run's metrics, predictions and
best parameters, bit for bit.

Every run is `python -m jaxbert.cli finetune` in a subprocess on one CPU device: SST-2's
fixture (4 training sentences) at batch 1 gives 4 steps an epoch, 2 epochs, a checkpoint
every 3 steps and at epoch ends (steps 3, 4, 6, 8). Faults come from the run core's one
test hook, JAXBERT_TEST_FAULT (the run signals itself at a given step).
The runs share a persistent compilation cache, so only the first one compiles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbert.checkpoint import load_params, step_dirs
from jaxbert.config import load_config
from jaxbert.errors import UserError
from jaxbert.finetune import run
from jaxbert.train import runtime
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "finetune"
CONFIG = f"{REPO / 'configs' / 'finetune' / 'glue.py'}:sst2"
SETTINGS = {
    "init": "scratch",
    "tokenizer": FIXTURES / "vocab.txt",
    "data_dir": FIXTURES,
    "batch_size": 1,
    "max_seq_length": 16,
    "num_epochs": 2,
    "log_every": 1,
    "checkpoint_every_steps": 3,
    "optimizer.learning_rate": 1e-2,
    "model.hidden_size": 32,
    "model.num_heads": 4,
    "model.intermediate_size": 64,
    "model.max_position_embeddings": 64,
    "model.num_layers": 1,
    "model.scan_layers": False,
}


def overrides(out: Path, **extra) -> list[str]:
    values = {**SETTINGS, "output_dir": out, **extra}
    return [f"--config.{k}={v}" for k, v in values.items()]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """One real CPU device (not the test session's 8) and a shared compilation cache."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
        "--xla_force_host_platform_device_count=8", ""
    )
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    env.pop(runtime.FAULT_ENV, None)
    return env


def finetune(out: Path, env: dict, fault: str = "") -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "jaxbert.cli", "finetune", "--config", CONFIG, *overrides(out)]
    env = {**env, runtime.FAULT_ENV: fault} if fault else env
    return subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def outputs(out: Path) -> tuple[dict, dict, list]:
    """metrics.json without timings and paths, the prediction files, the best params."""
    metrics = json.loads((out / "metrics.json").read_text())
    for record in [metrics, *metrics["history"]]:
        record.pop("train_time_s")
    metrics["predictions"] = [str(Path(p).relative_to(out)) for p in metrics["predictions"]]
    files = {str(p.relative_to(out)): p.read_text() for p in (out / "predictions").rglob("*.*")}
    _, params = load_params(out / "best_params")
    return metrics, files, jax.tree.leaves(params)


@pytest.fixture(scope="module")
def baseline(env, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("baseline") / "run"
    proc = finetune(out, env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return outputs(out)


def assert_same_outputs(out: Path, baseline: tuple) -> None:
    metrics, files, params = outputs(out)
    assert metrics == baseline[0]
    assert files == baseline[1] and len(files) == 2
    assert all(np.array_equal(a, b) for a, b in zip(params, baseline[2], strict=True))


def test_sigkill_mid_epoch_then_rerun_resumes_to_identical_outputs(env, baseline, tmp_path):
    """SIGKILL once step 6's checkpoint (epoch 2, batch 2) is committed: no metrics.json,
    the checkpoint is there. Rerunning the same command resumes from it (not refused as a
    finished run) and writes the uninterrupted run's metrics (losses, dev scores, best
    epoch), prediction files and best params exactly; the checkpoints are then removed and
    the finished run is refused without overwrite=true."""
    out = tmp_path / "run"
    proc = finetune(out, env, fault="checkpoint:6:KILL")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert step_dirs(out / "checkpoints") == [4, 6] and not (out / "metrics.json").exists()
    proc = finetune(out, env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"resumed from {out / 'checkpoints'}/6 (epoch 2)" in proc.stdout
    assert "epoch 2/2 step 6/8" not in proc.stdout  # trained steps are not trained again
    assert_same_outputs(out, baseline)
    assert not (out / "checkpoints").exists()
    with pytest.raises(UserError, match="already holds a fine-tuning run"):
        run.check_output_dir(load_config(CONFIG, overrides(out)))


def test_ctrl_c_and_sigterm_checkpoint_exit_cleanly_and_resume(env, tmp_path):
    """Ctrl-C after step 2: a checkpoint at step 2 (not a scheduled one), exit 130, one
    line, no traceback. Rerun, SIGTERM after step 5: resumed from 2, a checkpoint at 5,
    exit 0 with a message.
    A changed training key is then refused, naming it with both values; a changed
    log_every is not. (Resuming to identical outputs is the SIGKILL test's.)"""
    out = tmp_path / "run"
    proc = finetune(out, env, fault="step:2:INT")
    assert proc.returncode == 130
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "jaxbert finetune: interrupted"
    assert "Ctrl-C: saved a checkpoint at step 2 (epoch 1, batch 2)" in proc.stdout
    assert step_dirs(out / "checkpoints") == [2]
    proc = finetune(out, env, fault="step:5:TERM")
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr
    assert f"resumed from {out / 'checkpoints'}/2" in proc.stdout
    assert "SIGTERM: saved a checkpoint at step 5 (epoch 2, batch 1)" in proc.stdout
    assert step_dirs(out / "checkpoints") == [4, 5] and not (out / "metrics.json").exists()

    changed = load_config(CONFIG, overrides(out, **{"optimizer.learning_rate": 0.02}))
    with pytest.raises(UserError, match=r"config\.optimizer\.learning_rate: 0\.01 → 0\.02"):
        run.check_output_dir(changed)
    assert run.check_output_dir(load_config(CONFIG, overrides(out, log_every=7))) == "resume"
