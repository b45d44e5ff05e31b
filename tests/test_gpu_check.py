"""benchmarks/gpu_check.py --dry-run: the GPU check's three variants build, pass the
pretraining checks and get a memory plan, on any machine."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_dry_run_lists_three_variants_with_plans():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run", "--steps", "300"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [x for x in proc.stdout.splitlines() if not x.startswith(" ")]
    assert [x.split(":")[0] for x in lines] == ["recipe", "cudnn", "xla"]
    assert "base bfloat16, attention_impl cudnn, attention_dropout 0.0" in lines[1]
    assert all("batch 256 × seq 128" in x and "GiB per device" in x for x in lines)
