"""Pretraining and fine-tuning with gs:// paths, against a real local GCS server
(gcp-storage-emulator; orbax writes arrays through tensorstore's gcs driver, pointed at
the same server). Slow: `make test-slow`."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess

import pytest

from jaxbert import cli, fs
from jaxbert.config import load_config
from jaxbert.data.prepare import MANIFEST_NAME
from jaxbert.errors import UserError
from jaxbert.train.loop import pretrain
from tests.conftest import REPO
from tests.train.test_loop import CONFIG, PACKED_MLM, overrides, train_losses
from tests.train.test_loop import cli as pretrain_cli

pytestmark = pytest.mark.slow

FINETUNE_FIXTURES = REPO / "tests" / "fixtures" / "finetune"


def _steps(directory) -> list[str]:
    """Top-level names under a gs:// checkpoint prefix (step dirs, set-aside ones)."""
    return sorted({name.split("/", 1)[0] for name in fs.relative_files(directory)})


def test_checkpoints_on_gcs_resume_set_aside_refuse_and_finetune(
    prepared_dir, tmp_path, gcs_bucket, capsys
):
    """checkpoint.directory=gs://…: 8 steps == 4 steps, SIGKILL, resume for 4 (same floats);
    a corrupt newest step is moved to <step>.unreadable on the bucket and training resumes
    from the older one; another model shape is refused naming the key; fine-tuning
    initialises from the bucket's checkpoints."""
    whole_ckpt, split_ckpt = f"{gcs_bucket}/whole", f"{gcs_bucket}/split"

    def args(out, ckpt, **extra):
        return overrides(prepared_dir, tmp_path / out, **{"checkpoint.directory": ckpt, **extra})

    whole = pretrain(load_config(CONFIG, args("whole", whole_ckpt)))
    assert whole.step == 8 and _steps(whole_ckpt) == ["4", "8"]
    killed = pretrain_cli(args("split", split_ckpt), fault="checkpoint:4:KILL")
    out, _ = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, out
    assert _steps(split_ckpt) == ["4"]
    assert pretrain(load_config(CONFIG, args("split", split_ckpt))).step == 8
    a, b = train_losses(tmp_path / "whole"), train_losses(tmp_path / "split")
    assert list(a) == list(range(1, 9)) and a == b

    state = fs.as_path(f"{split_ckpt}/8/state")
    for name in fs.relative_files(state):
        (state / name).write_bytes(b"garbage")
    capsys.readouterr()
    assert pretrain(load_config(CONFIG, args("split", split_ckpt))).step == 8
    printed = capsys.readouterr().out
    assert "split/8 is unreadable" in printed and "resumed from" in printed
    assert "8.unreadable" in _steps(split_ckpt) and "8" in _steps(split_ckpt)

    with pytest.raises(UserError, match=r"config.model.num_layers: 2 → 3"):
        pretrain(load_config(CONFIG, args("split", split_ckpt, **{"model.num_layers": 3})))

    finetune = [
        "finetune", "--config", f"{REPO / 'configs' / 'finetune' / 'glue.py'}:stsb",
        f"--config.init={split_ckpt}", f"--config.tokenizer={prepared_dir / 'tokenizer'}",
        f"--config.data_dir={FINETUNE_FIXTURES}", f"--config.output_dir={tmp_path / 'ft'}",
        "--config.batch_size=8", "--config.max_seq_length=32", "--config.num_epochs=1",
    ]  # fmt: skip
    assert cli.main(finetune) == 0
    printed = capsys.readouterr().out
    assert split_ckpt in printed  # "jaxbert checkpoint gs://…" named as the source
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert metrics["task"] == "stsb" and "spearman" in metrics["dev"]


def _multiprocess(out, *args) -> list[float]:
    script = REPO / "launch" / "local_multiprocess.sh"
    proc = subprocess.run(
        [str(script), "2", "--config", CONFIG, *args, f"--config.output_dir={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [v for _, v in sorted(train_losses(out).items())]


def test_two_processes_train_from_prepared_data_on_gcs(prepared_dir, tmp_path, gcs_bucket):
    """launch/local_multiprocess.sh 2 with data.prepared_dir and checkpoints on gs:// (each
    process its contiguous block of documents) trains exactly the losses of the same two
    processes reading the prepared directory from disk."""
    bucket_data = fs.as_path(f"{gcs_bucket}/prepared")
    staging = tmp_path / "upload"
    shutil.copytree(prepared_dir, staging)
    fs.swap_in_dir(staging, bucket_data, marker=MANIFEST_NAME)
    recipe = {**PACKED_MLM, "data.host_documents": "contiguous", "train.num_steps": 4,
              "train.peak_flops_per_device": 1e9}  # fmt: skip
    runs = {}
    for name, data in (("disk", prepared_dir), ("bucket", bucket_data)):
        args = overrides(prepared_dir, tmp_path / name, **recipe)
        args = [a for a in args if not a.startswith(("--config.output_dir", "--config.data.prep"))]
        args += [f"--config.data.prepared_dir={data}"]
        if name == "bucket":
            args += [f"--config.checkpoint.directory={gcs_bucket}/ckpt"]
        runs[name] = _multiprocess(tmp_path / name, *args)
    assert len(runs["disk"]) == 4 and runs["bucket"] == runs["disk"]
    assert _steps(f"{gcs_bucket}/ckpt") == ["4"]
