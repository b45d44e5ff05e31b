"""launch/local_multiprocess.sh: N CPU processes on 127.0.0.1 as a stand-in for N hosts.

The data-parallel global batch is the same whatever the number of processes, so the losses
of 1, 2 and 4 processes must agree to float rounding (the only difference is the order of
the cross-device sums).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "launch" / "local_multiprocess.sh"
STEPS = 3


def train(num_processes: int, out: Path, *extra: str, devices: int = 1) -> list[float]:
    args = [
        "--config",
        "configs/pretrain/cpu_smoke.py",
        "--config.data.source=synthetic",
        f"--config.train.num_steps={STEPS}",
        "--config.train.batch_size=8",
        "--config.data.max_seq_length=32",
        "--config.data.max_predictions_per_seq=5",
        "--config.data.mask_prob=0.15",
        "--config.train.log_every=1",
        "--config.train.eval_every=0",
        "--config.train.peak_flops_per_device=1e9",  # skip the CPU matmul benchmark
        f"--config.output_dir={out}",
        *extra,
    ]
    proc = subprocess.run(
        [str(SCRIPT), f"--devices-per-process={devices}", str(num_processes), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if num_processes > 1:
        assert f"{num_processes} process(es)" in proc.stdout  # really multi-controller
        assert f"[{num_processes - 1}] " in proc.stdout  # every process's output, prefixed
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert len(losses) == STEPS
    return losses


@pytest.mark.slow
def test_losses_match_one_process(tmp_path):
    """2 and 4 processes (1 CPU device each) train the same losses as 1 process, ≤1e-5 rel."""
    reference = train(1, tmp_path / "p1")
    for n in (2, 4):
        assert train(n, tmp_path / f"p{n}") == pytest.approx(reference, rel=1e-5), n


@pytest.mark.slow
def test_several_devices_per_process(tmp_path):
    """2 processes × 2 devices (a 4-device mesh over 2 hosts) match 1 process as well."""
    reference = train(1, tmp_path / "p1")
    multi = train(2, tmp_path / "p2x2", "--config.mesh.fsdp=2", devices=2)
    assert multi == pytest.approx(reference, rel=1e-5)


@pytest.mark.slow
def test_one_failing_process_fails_the_launch(tmp_path):
    """If a process exits with an error the script stops the others and exits non-zero."""
    proc = subprocess.run(
        [str(SCRIPT), "2", "--config", "configs/pretrain/does_not_exist.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "config file not found" in proc.stdout
