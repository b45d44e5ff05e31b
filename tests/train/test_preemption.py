"""Preemption on several hosts: SIGTERM reaches ONE of two processes, yet both stop at the
same step and save one consistent checkpoint (the run core's agreed stop step), and the
rerun resumes from it. Two CPU processes under launch/local_multiprocess.sh stand in for
two hosts; the signal comes from the run core's test hook on process 1 only."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from jaxbert.train import runtime

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "launch" / "local_multiprocess.sh"


def launch(out: Path, num_steps: int, fault: str = "") -> subprocess.CompletedProcess:
    args = [
        "--config", "configs/pretrain/cpu_smoke.py", "--config.data.source=synthetic",
        f"--config.train.num_steps={num_steps}", "--config.train.batch_size=8",
        "--config.data.max_seq_length=32", "--config.data.max_predictions_per_seq=0",
        "--config.model.hidden_size=32", "--config.model.num_heads=4",
        "--config.model.intermediate_size=64", "--config.model.num_layers=1",
        "--config.train.log_every=1", "--config.train.eval_every=0",
        "--config.checkpoint.every_steps=1000", "--config.train.peak_flops_per_device=1e9",
        f"--config.output_dir={out}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != runtime.FAULT_ENV}
    if fault:
        env[runtime.FAULT_ENV] = fault
    return subprocess.run([str(SCRIPT), "2", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_the_same_step(tmp_path):
    """Process 1 alone gets SIGTERM after step 3: both processes save step 3 (one
    checkpoint, committed), exit 0, process 0 says the signal came from another process;
    the rerun resumes from step 3 and finishes."""
    out = tmp_path / "run"
    proc = launch(out, 50, fault="step:3:TERM:1")
    shown = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, shown
    assert "[0] SIGTERM (on another process): saved a checkpoint at step 3" in proc.stdout, shown
    steps = [p.name for p in (out / "checkpoints").iterdir()]
    assert steps == ["3"], steps
    assert (out / "checkpoints" / "3" / "commit_success.txt").exists() or any(
        (out / "checkpoints" / "3").iterdir()
    )
    proc = launch(out, 5)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"resumed from {out / 'checkpoints'}/3" in proc.stdout
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["3", "5"]
