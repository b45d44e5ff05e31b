"""A full disk during a run: training stops at the failed write with ONE error line that
names the path and "No space left on device", exit status 1, no traceback (none from
orbax, tensorstore or absl either), no partial checkpoint directory, every earlier
checkpoint byte-identical; once space is freed the same command resumes and finishes.

Each case runs the real CLI on a small tmpfs (mounting needs root: skipped otherwise,
saying so). The disk fills at a precise moment: a wrapper sets the run core's test hook
(`runtime.FAULT_HOOK`) to write a filler file until the disk is full when the run reaches
a given point (e.g. once checkpoint 4 is committed), leaving `leave` bytes free."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, WIKI_TINY

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
FT_FIXTURES = REPO / "tests" / "fixtures" / "finetune"
ERROR = re.compile(r"^jaxbert [\w ]+: error: .*No space left on device", re.M)

WRAPPER = """
import os, sys
from jaxbert.cli import main
from jaxbert.train import runtime
point, step, leave, filler = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def fill(p, s):
    if (p, s) != (point, step):
        return
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while f.write(b"\\0" * chunk):
                    pass
            except OSError:
                pass
    os.truncate(filler, max(os.path.getsize(filler) - leave, 0))
runtime.FAULT_HOOK = fill
sys.exit(main(sys.argv[5:]))
"""


@pytest.fixture
def disk(tmp_path):
    """A 16 MiB tmpfs at tmp_path/disk, unmounted afterwards."""
    if not IS_ROOT:
        pytest.skip("mounting a small tmpfs needs root (the disk-full tests run as root in CI)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def jaxbert(argv: list[str], fill: tuple[str, int, int] | None = None, filler: Path | None = None):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
        "--xla_force_host_platform_device_count=8", ""
    )
    prefix = [sys.executable, "-m", "jaxbert.cli"]
    if fill is not None:
        prefix = [sys.executable, "-c", WRAPPER, fill[0], str(fill[1]), str(fill[2]), str(filler)]
    return subprocess.run([*prefix, *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def assert_one_clean_line(proc, path_pattern: str) -> str:
    """Exit 1, exactly one error line (naming the path and the cause), no traceback."""
    shown = f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    assert proc.returncode == 1, shown
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    errors = [line for line in proc.stderr.splitlines() if " error: " in line]
    assert len(errors) == 1 and ERROR.match(errors[0]), shown
    assert re.search(path_pattern, errors[0]), shown
    assert proc.stderr.strip().splitlines()[-1] == errors[0], shown
    return errors[0]


def pretrain_args(prepared_dir: Path, tokenizer: Path, out: Path) -> list[str]:
    values = {
        "model.vocab_size": 600, "model.hidden_size": 32, "model.num_heads": 4,
        "model.intermediate_size": 64, "model.num_layers": 2,
        "data.prepared_dir": prepared_dir, "tokenizer": tokenizer,
        "data.max_seq_length": 32, "data.max_predictions_per_seq": 0,
        "train.batch_size": 8, "train.num_steps": 8, "train.log_every": 1,
        "train.eval_every": 0, "checkpoint.every_steps": 4, "optimizer.warmup_steps": 2,
        "train.peak_flops_per_device": 1e9, "output_dir": out,
    }  # fmt: skip
    config = REPO / "configs" / "pretrain" / "cpu_smoke.py"
    return ["pretrain", "--config", str(config), *(f"--config.{k}={v}" for k, v in values.items())]


@pytest.mark.slow
def test_pretraining_stops_at_a_failed_checkpoint_and_resumes_after(disk, prepared_dir, sp_model):
    """The disk fills once checkpoint 4 is committed (64 KiB left: the metrics rows fit,
    a checkpoint does not): checkpoint 8's save fails → one line
    naming checkpoints/8, the cause and the last complete checkpoint (4); training did
    not go on; 4 is intact; no *.orbax-checkpoint-tmp left. Freed, the rerun resumes from
    4 and finishes; metrics.jsonl then holds each step once."""
    out = disk / "run"
    args = pretrain_args(prepared_dir, sp_model.parent, out)
    proc = jaxbert(args, fill=("checkpoint", 4, 64 * 1024), filler=disk / "filler")
    line = assert_one_clean_line(proc, rf"{out}/checkpoints/8: No space left on device")
    assert f"last complete checkpoint is {out}/checkpoints/4" in line
    assert "step 8/8" in proc.stdout and "trained steps" not in proc.stdout
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["4"]
    before = checksums(out / "checkpoints" / "4")
    (disk / "filler").unlink()
    proc = jaxbert(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed from {out}/checkpoints/4" in proc.stdout
    assert checksums(out / "checkpoints" / "4") == before
    steps = [line.split('"step": ')[1].split(",")[0] for line in
             (out / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    assert steps == [str(s) for s in range(1, 9)]


def finetune_args(out: Path) -> list[str]:
    values = {
        "init": "scratch", "tokenizer": FT_FIXTURES / "vocab.txt", "data_dir": FT_FIXTURES,
        "batch_size": 1, "max_seq_length": 16, "num_epochs": 2, "log_every": 1,
        "checkpoint_every_steps": 3, "optimizer.learning_rate": 1e-2,
        "model.hidden_size": 32, "model.num_heads": 4, "model.intermediate_size": 64,
        "model.max_position_embeddings": 64, "model.num_layers": 1,
        "model.scan_layers": False, "output_dir": out,
    }  # fmt: skip
    config = f"{REPO / 'configs' / 'finetune' / 'glue.py'}:sst2"
    return ["finetune", "--config", config, *(f"--config.{k}={v}" for k, v in values.items())]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("leave", "culprit"),
    [(0, r"predictions"), (96 * 1024, r"best parameters .*best_params")],
    ids=["predictions", "best_params"],
)
def test_finetuning_stops_at_a_failed_output_write_and_resumes_after(disk, leave, culprit):
    """The disk fills once the last checkpoint (8) is committed: the prediction files (no
    space left at all) or best_params/ (96 KiB left: the predictions fit) cannot be
    written → one line naming them, exit 1; no best_params.new or metrics.json; the
    checkpoints stay. Freed, the rerun resumes from step 8 and finishes."""
    out = disk / "run"
    proc = jaxbert(finetune_args(out), fill=("checkpoint", 8, leave), filler=disk / "filler")
    assert_one_clean_line(proc, culprit)
    assert not (out / "metrics.json").exists() and not (out / "best_params.new").exists()
    assert not (out / "best_params").exists()
    before = checksums(out / "checkpoints")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["6", "8"]
    (disk / "filler").unlink()
    proc = jaxbert(finetune_args(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed from {out}/checkpoints/8" in proc.stdout
    assert (out / "metrics.json").is_file() and (out / "best_params").is_dir()
    assert before  # the checkpoints were read, then removed by the finished run


@pytest.mark.parametrize("command", ["tokenizer", "prepare"])
def test_tokenizer_train_and_data_prepare_on_a_full_disk(disk, sp_model, tmp_path, command):
    """Both build beside --out and swap in: on a full disk one line names --out and the
    cause, exit 1, and the previous output is byte-identical."""
    (disk / "filler").write_bytes(b"\0" * (15 * 1024 * 1024))  # ~1 MiB left
    out = disk / "out"
    if command == "tokenizer":
        argv = ["tokenizer", "train", "--corpus", str(WIKI_TINY), "--out", str(out),
                "--vocab-size", "600", "--force"]  # fmt: skip
    else:
        argv = ["data", "prepare", "--corpus", str(WIKI_TINY), "--tokenizer",
                str(sp_model.parent), "--out", str(out), "--workers", "0", "--force"]  # fmt: skip
    (disk / "filler").unlink()
    first = jaxbert(argv)
    assert first.returncode == 0, first.stderr[-2000:]
    before = checksums(out)
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while f.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    proc = jaxbert(argv)
    assert_one_clean_line(proc, rf"{out}: No space left on device")
    assert checksums(out) == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "out"]
