"""benchmarks/tables/curse.py: runs stuck on the unigram plateau are shown, never averaged in."""

from __future__ import annotations

import json
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO))
from benchmarks.tables import curse  # noqa: E402


def _run(condition: str, seed: int, acc: float, left: bool) -> dict:
    return {"target": "en", "condition": condition, "budget": "both" if condition == "alone"
            else "fixed_total", "capacity": "tiny", "scale": "b64", "seed": seed,
            "steps": 500, "complete": True, "target_share": 1.0, "target_tokens_seen": 1,
            "mlm_accuracy": acc, "mlm_loss": 5.0, "left_plateau": left}  # fmt: skip


def test_mean_and_delta_use_only_runs_that_left_the_plateau():
    """A stuck seed is excluded from the mean; a stuck group against a learning one is
    flagged, and two stuck groups are compared only as such."""
    alone = [_run("alone", 0, 0.30, True), _run("alone", 1, 0.13, False)]
    assert curse.mean_left(alone) == 0.30
    assert curse.delta([_run("+5", 0, 0.25, True)], alone) == "-0.050"
    assert curse.delta([_run("+5", 0, 0.12, False)], alone).endswith("(one stuck, one not)")
    stuck = [_run("alone", 0, 0.14, False)]
    assert curse.delta([_run("+5", 0, 0.13, False)], stuck) == "-0.010 (both stuck)"


def test_grid_marks_stuck_seeds(tmp_path):
    """Every seed's accuracy appears, a stuck one marked, with the left-plateau count."""
    runs = {"a": _run("alone", 0, 0.30, True), "b": _run("alone", 1, 0.13, False)}
    (tmp_path / "curse.json").write_text(json.dumps(runs))
    text = curse.tables(tmp_path)["curse_grid"]
    assert "0.300 / 0.130 (stuck)" in text and "| 1/2 |" in text
