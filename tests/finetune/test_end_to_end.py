"""End-to-end fine-tuning on the offline data, from the `make pretrain` checkpoint.

Slow (minutes on a CPU): `make test-slow`. Skipped when ../shared/data or the checkpoint
(runs/cpu_smoke, or the run dir named by $JAXBERT_PRETRAINED) is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
CONFIGS = REPO / "configs" / "finetune"


@pytest.fixture
def pretrained() -> Path:
    path = Path(os.environ.get("JAXBERT_PRETRAINED", REPO / "runs" / "cpu_smoke"))
    if not (path / "checkpoints").is_dir():
        pytest.skip(f"no pretraining checkpoint at {path}: run `make pretrain` first")
    return path


def run(spec: str, tmp_path: Path, **overrides) -> dict:
    """`jaxbert finetune` in a subprocess on one CPU device.

    Not in-process: the test session's 8 virtual CPU devices would make each step an
    all-reduce across 8 threads, which on a busy 2-core machine can exceed XLA's 40 s
    collective rendezvous timeout and abort; real runs see the host's real devices.
    """
    args = [f"--config.{k}={v}" for k, v in overrides.items()]
    argv = [
        sys.executable,
        "-m",
        "jaxbert.cli",
        "finetune",
        "--config",
        spec,
        *args,
        f"--config.output_dir={tmp_path / 'run'}",
    ]
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
        "--xla_force_host_platform_device_count=8", ""
    )
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_sst2_full_train_set_from_make_pretrain(tmp_path, shared_data, pretrained):
    """SST-2, all 67,349 training sentences (one epoch), from the `make pretrain`
    checkpoint: dev accuracy ≥ 0.78 (chance is 0.51); the leaderboard test file has all
    1,821 rows."""
    m = run(
        f"{CONFIGS / 'glue.py'}:sst2",
        tmp_path,
        init=pretrained,
        data_dir=shared_data,
        max_seq_length=64,
        **{"optimizer.learning_rate": 1e-4},
        num_epochs=1,
    )
    assert m["dev"]["accuracy"] >= 0.78, m["dev"]
    lines = (tmp_path / "run" / "predictions" / "test" / "SST-2.tsv").read_text().splitlines()
    assert len(lines) == 1 + 1821


def test_conll2003_subset_completes_and_reports_entity_f1(tmp_path, shared_data, pretrained):
    """CoNLL-2003 on 2,000 training sentences, 500 dev and test sentences: entity-level
    precision/recall/F1 for dev (testa) and test (testb), and decoded tag files."""
    m = run(
        str(CONFIGS / "ner.py"),
        tmp_path,
        init=pretrained,
        data_dir=shared_data,
        max_train_examples=2000,
        max_eval_examples=500,
        num_epochs=2,
        **{"optimizer.learning_rate": 1e-4},
    )
    for scores in (m["dev"], m["test"]["test"]):
        assert {"precision", "recall", "f1"} <= set(scores) and 0.0 <= scores["f1"] <= 1.0
    assert (tmp_path / "run" / "predictions" / "ner_test.txt").is_file()


def test_squad_article_split_subset_completes_and_reports_em_f1(tmp_path, shared_data, pretrained):
    """SQuAD v1.1 split by article (80/20 of dev), 1,500 training questions, 300 eval
    questions: official EM/F1 and a predictions JSON with one answer per question."""
    m = run(
        str(CONFIGS / "squad.py"),
        tmp_path,
        init=pretrained,
        data_dir=shared_data,
        max_train_examples=1500,
        max_eval_examples=300,
        max_seq_length=256,
        num_epochs=1,
        **{"optimizer.learning_rate": 1e-4},
    )
    assert 0.0 <= m["dev"]["exact_match"] <= m["dev"]["f1"] <= 100.0
    preds = json.loads(
        (tmp_path / "run" / "predictions" / "squad_dev_predictions.json").read_text()
    )
    assert len(preds) == 300
