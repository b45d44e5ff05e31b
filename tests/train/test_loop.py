"""The pretraining loop end to end on the tiny fixture corpus: exact resume after SIGKILL,
SIGTERM preemption, divergence, corrupt checkpoints, and the run's outputs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxbert.config import load_config
from jaxbert.errors import UserError
from jaxbert.train import runtime
from jaxbert.train.logger import read_metrics
from jaxbert.train.loop import TrainingDiverged, pretrain

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "pretrain" / "cpu_smoke.py")


def overrides(prepared_dir, out_dir, **extra) -> list[str]:
    """A micro model on the fixture corpus: 8 steps, a checkpoint every 4."""
    values = {
        "model.vocab_size": 600,
        "model.hidden_size": 32,
        "model.num_heads": 4,
        "model.intermediate_size": 64,
        "model.num_layers": 2,
        "data.prepared_dir": str(prepared_dir),
        "tokenizer": str(Path(prepared_dir) / "tokenizer"),
        "data.max_seq_length": 32,
        "data.max_predictions_per_seq": 5,
        "data.objective": "mlm_nsp",  # the loop's mechanics, tested on google-bert pairs
        "data.packing": "pairs",
        "data.mask_prob": 0.15,
        "train.batch_size": 8,
        "train.num_steps": 8,
        "train.log_every": 1,
        "train.eval_every": 0,
        "checkpoint.every_steps": 4,
        "optimizer.warmup_steps": 2,
        "output_dir": str(out_dir),
    }
    values.update(extra)
    return [f"--config.{k}={v}" for k, v in values.items()]


def wait_for_logged_steps(metrics: Path, n: int, timeout_s: float = 240) -> None:
    """Until the running job has logged n steps (so a signal lands mid-training)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and not (
        metrics.exists() and len(metrics.read_text().splitlines()) >= n
    ):
        time.sleep(0.2)


def train_losses(out_dir) -> dict[int, float]:
    return {
        r["step"]: r["loss"]
        for r in read_metrics(Path(out_dir) / "metrics.jsonl")
        if r["split"] == "train"
    }


def cli(args, fault: str = "", **kwargs) -> subprocess.Popen:
    """The real CLI in a subprocess; `fault` is the run core's one test hook
    (`runtime.FAULT_ENV`, e.g. "checkpoint:4:KILL": SIGKILL once step 4 is committed)."""
    env = {k: v for k, v in os.environ.items() if k != runtime.FAULT_ENV}
    if fault:
        env[runtime.FAULT_ENV] = fault
    return subprocess.Popen(
        [sys.executable, "-m", "jaxbert.cli", "pretrain", "--config", CONFIG, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


PACKED_MLM = {"data.objective": "mlm", "data.packing": "full_sentences", "data.mask_prob": 0.4,
              "data.max_predictions_per_seq": 0}  # fmt: skip


@pytest.mark.parametrize("recipe", [{}, PACKED_MLM], ids=["pairs_nsp", "packed_mlm"])
def test_resume_after_sigkill_reproduces_the_uninterrupted_losses_bit_for_bit(
    prepared_dir, tmp_path, recipe
):
    """8 steps in one run == 5 steps (checkpoint at 4), SIGKILL, resume for 4 more (same floats, data position
    restored), for google-bert pairs + NSP and for packed MLM-only at 40% masking; the
    resumed run's metrics.jsonl holds each step once (the killed run's rows after the
    checkpoint are dropped, not repeated)."""
    whole = pretrain(load_config(CONFIG, overrides(prepared_dir, tmp_path / "whole", **recipe)))
    assert whole.step == 8
    split = tmp_path / "split"
    killed = cli(overrides(prepared_dir, split, **recipe), fault="step:6:KILL")  # 5 logged
    out, _ = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, out
    assert [p.name for p in (split / "checkpoints").iterdir() if p.name.isdigit()] == ["4"]
    resumed = pretrain(load_config(CONFIG, overrides(prepared_dir, split, **recipe)))
    assert resumed.step == 8
    a, b = train_losses(tmp_path / "whole"), train_losses(split)
    assert list(a) == list(range(1, 9)) and a == b  # exact equality, not approximate
    rows = [json.loads(line)["step"] for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert rows == list(range(1, 9))


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(prepared_dir, tmp_path):
    """Preemption: SIGTERM mid-run → checkpoint at the current step, exit status 0."""
    proc = cli(
        overrides(
            prepared_dir, tmp_path, **{"train.num_steps": 100000, "checkpoint.every_steps": 100000}
        )
    )
    wait_for_logged_steps(tmp_path / "metrics.jsonl", 3)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "SIGTERM: saved a checkpoint at step" in out
    saved = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(saved) == 1 and saved[0] >= 3
    assert (tmp_path / "checkpoints" / str(saved[0]) / "commit_success.txt").exists() or saved


@pytest.mark.slow
def test_unreadable_latest_checkpoint_falls_back_to_the_previous_one(
    prepared_dir, tmp_path, capsys
):
    """A corrupt newest checkpoint → warning, resume from the older one, never crash."""
    cfg = load_config(CONFIG, overrides(prepared_dir, tmp_path))
    pretrain(cfg)
    for f in (tmp_path / "checkpoints" / "8" / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    result = pretrain(load_config(CONFIG, overrides(prepared_dir, tmp_path)))
    out = capsys.readouterr().out
    assert "checkpoints/8 is unreadable" in out and "resumed from" in out and "/4" in out
    assert result.step == 8


def test_divergence_stops_with_a_message_naming_the_last_good_checkpoint(prepared_dir, tmp_path):
    """A NaN loss never gets checkpointed; the error points at the last good step."""
    cfg = load_config(CONFIG, overrides(prepared_dir, tmp_path, **{"train.num_steps": 12}))
    with cfg.unlocked():
        cfg.optimizer.learning_rate = 1e30  # blows up within a few steps after warmup
        cfg.optimizer.clip_norm = 0.0
    with pytest.raises(TrainingDiverged, match="diverged at step") as info:
        pretrain(cfg)
    assert "last good checkpoint" in str(info.value) or "no checkpoint was saved" in str(info.value)


def test_run_writes_config_metrics_tensorboard_and_plot(prepared_dir, tmp_path):
    """A finished run leaves its resolved config, metrics, TensorBoard events and a PNG plot."""
    result = pretrain(
        load_config(
            CONFIG,
            overrides(prepared_dir, tmp_path, **{"train.eval_every": 4, "train.eval_batches": 2}),
        )
    )
    assert json.loads((tmp_path / "config.json").read_text())["train"]["num_steps"] == 8
    assert any((tmp_path / "tensorboard").iterdir())
    assert result.plot and result.plot.read_bytes()[:4] == b"\x89PNG"
    assert set(result.eval_metrics) >= {"mlm_accuracy", "nsp_accuracy", "loss"}


def test_packed_mlm_run_has_no_nsp_and_logs_real_tokens(prepared_dir, tmp_path):
    """objective=mlm + full_sentences: no NSP parameters or metrics; max_predictions_per_seq
    0 is derived and saved in config.json; train logs carry the real-token share (>= 0.97)
    and real tokens/s; eval reports MLM on the fixed held-out set."""
    extra = {**PACKED_MLM, "train.eval_every": 4, "train.eval_batches": 2}
    result = pretrain(load_config(CONFIG, overrides(prepared_dir, tmp_path, **extra)))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["data"]["max_predictions_per_seq"] == round(0.4 * 30)
    assert "nsp_accuracy" not in result.eval_metrics and "mlm_accuracy" in result.eval_metrics
    train = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["split"] == "train"]
    assert all("nsp_loss" not in r and r["real_token_share"] >= 0.97 for r in train)
    assert all(0 < r["real_tokens_per_s"] <= r["tokens_per_s"] for r in train)
    from jaxbert.checkpoint import load_params

    _, params = load_params(tmp_path)
    assert "nsp" not in params and "mlm" in params


def test_vocabulary_mismatch_is_an_error_naming_both_sides(prepared_dir, tmp_path):
    """A model whose vocab_size differs from the tokenizer's is refused before training."""
    cfg = load_config(CONFIG, overrides(prepared_dir, tmp_path, **{"model.vocab_size": 999}))
    with pytest.raises(UserError, match="config.model.vocab_size=999.*600 tokens"):
        pretrain(cfg)


def _checksums(root: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_run_directory_refuses_a_different_model_and_keeps_its_checkpoints(
    prepared_dir, tmp_path
):
    """Resuming with another model shape is refused naming the key and the checkpoint;
    nothing in the run directory (checkpoints, metrics, config.json) changes."""
    pretrain(load_config(CONFIG, overrides(prepared_dir, tmp_path, **{"train.num_steps": 4})))
    before = _checksums(tmp_path)
    changed = overrides(prepared_dir, tmp_path, **{"model.num_layers": 3})
    with pytest.raises(UserError, match=r"config.model.num_layers: 2 → 3") as info:
        pretrain(load_config(CONFIG, changed))
    assert "checkpoints/4" in str(info.value)
    assert _checksums(tmp_path) == before
    assert not list((tmp_path / "checkpoints").glob("*.unreadable*"))


def test_an_invalid_config_writes_nothing(prepared_dir, tmp_path):
    """A config rejected by validation (negative learning rate, a missing tokenizer) leaves
    the run's config.json as it was, and names the key."""
    pretrain(load_config(CONFIG, overrides(prepared_dir, tmp_path, **{"train.num_steps": 4})))
    before = _checksums(tmp_path)
    bad = {"optimizer.learning_rate": -1.0}
    with pytest.raises(UserError, match=r"config.optimizer.learning_rate=-1.0 must be > 0"):
        pretrain(load_config(CONFIG, overrides(prepared_dir, tmp_path, **bad)))
    with pytest.raises(UserError, match=r"config.tokenizer=.*nowhere.*not found"):
        pretrain(load_config(CONFIG, overrides(prepared_dir, tmp_path, tokenizer="nowhere")))
    assert _checksums(tmp_path) == before


def test_ctrl_c_saves_a_checkpoint_and_exits_130_without_a_traceback(prepared_dir, tmp_path):
    """SIGINT behaves like SIGTERM: a checkpoint at the current step, then exit status 130."""
    long_run = {"train.num_steps": 100000, "checkpoint.every_steps": 100000}
    proc = cli(overrides(prepared_dir, tmp_path, **long_run))
    wait_for_logged_steps(tmp_path / "metrics.jsonl", 3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Ctrl-C: saved a checkpoint at step" in out and "Traceback" not in out
    assert out.strip().splitlines()[-1] == "jaxbert pretrain: interrupted"
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    assert not list((tmp_path / "checkpoints").glob("*tmp*"))
