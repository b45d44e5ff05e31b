"""jaxbert installed, not only checked out: the wheel, installed without -e into a fresh
virtual environment, pretrains (3 steps on a tiny corpus) and fine-tunes (a few steps)
from an unrelated directory, so nothing resolves a path against the source tree. And the
Makefile's run directory is where `make pretrain` trains.

The fresh venv borrows this interpreter's installed dependencies through a .pth file
(not its editable jaxbert: a .pth path line does not run the .pth files found there), so
the test downloads nothing but the build backend (pip's build isolation, from PyPI)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WIKI_TINY = REPO / "tests" / "fixtures" / "data" / "wiki_tiny.txt"
FT_FIXTURES = REPO / "tests" / "fixtures" / "finetune"


def run(argv, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the built wheel installed (no -e); returns its bin directory."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info"))  # fmt: skip
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", source],
        cwd=root)  # fmt: skip
    (wheel,) = (root / "dist").glob("jaxbert-*.whl")
    run([sys.executable, "-m", "venv", root / "venv"], cwd=root)
    bin_dir = root / "venv" / "bin"
    (purelib,) = (root / "venv" / "lib").glob("python3*/site-packages")
    (purelib / "_jaxbert_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        cwd=root)  # fmt: skip
    return bin_dir


@pytest.mark.slow
def test_the_installed_wheel_pretrains_and_finetunes_from_another_directory(installed, tmp_path):
    """From an empty directory far from the checkout: jaxbert imports from the venv, and
    tokenizer train → data prepare → pretrain (3 steps) → finetune (SST-2 fixture, 2
    steps) all succeed with the config files copied there."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
        "--xla_force_host_platform_device_count=8", ""
    )
    where = run([installed / "python", "-c", "import jaxbert; print(jaxbert.__file__)"], work,
                env).stdout.strip()  # fmt: skip
    assert where.startswith(str(installed.parent)) and str(REPO / "src") not in where
    shutil.copy(WIKI_TINY, work / "corpus.txt")
    shutil.copytree(FT_FIXTURES, work / "ft_data")
    shutil.copy(REPO / "configs" / "pretrain" / "cpu_smoke.py", work / "smoke.py")
    shutil.copy(REPO / "configs" / "finetune" / "glue.py", work / "glue.py")
    jaxbert = installed / "jaxbert"
    run([jaxbert, "tokenizer", "train", "--corpus", "corpus.txt", "--out", "tok",
         "--vocab-size", "600"], work, env)  # fmt: skip
    run([jaxbert, "data", "prepare", "--corpus", "corpus.txt", "--tokenizer", "tok", "--out",
         "prep", "--workers", "0"], work, env)  # fmt: skip
    micro = ["--config.model.vocab_size=600", "--config.model.hidden_size=32",
             "--config.model.num_heads=4", "--config.model.intermediate_size=64",
             "--config.model.num_layers=1"]  # fmt: skip
    run([jaxbert, "pretrain", "--config", "smoke.py", *micro, "--config.data.prepared_dir=prep",
         "--config.tokenizer=tok", "--config.output_dir=run", "--config.train.num_steps=3",
         "--config.train.batch_size=4", "--config.data.max_seq_length=32",
         "--config.train.eval_every=0", "--config.train.log_every=1",
         "--config.checkpoint.every_steps=3", "--config.optimizer.warmup_steps=1",
         "--config.train.peak_flops_per_device=1e9"], work, env)  # fmt: skip
    assert (work / "run" / "checkpoints" / "3").is_dir()
    ft = run([jaxbert, "finetune", "--config", "glue.py:sst2", "--config.init=run",
              "--config.data_dir=ft_data", "--config.output_dir=ft", "--config.batch_size=2",
              "--config.num_epochs=1", "--config.max_seq_length=32"], work, env)  # fmt: skip
    assert "done: sst2" in ft.stdout
    assert (work / "ft" / "metrics.json").is_file() and (work / "ft" / "best_params").is_dir()


def test_make_pretrain_trains_in_its_run_directory():
    """`make pretrain RUN=runs/x` builds the tokenizer and shards in runs/x and trains from
    them into runs/x; `make finetune` names its task from the registry (--task) and
    replaces a finished run only with OVERWRITE=1."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "pretrain", "RUN=runs/x", "STAMP=Makefile"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    pretrain = dry[dry.index(" pretrain ") :]
    for flag in ("data.prepared_dir=runs/x/prepared", "tokenizer=runs/x/tokenizer",
                 "output_dir=runs/x"):  # fmt: skip
        assert f"--config.{flag}" in pretrain
    assert "--out runs/x/tokenizer" in dry and "--out runs/x/prepared" in dry
    finetune = subprocess.run(["make", "-n", "finetune", "STAMP=Makefile"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "overwrite" not in finetune and "finetune --task sst2" in finetune
    again = subprocess.run(["make", "-n", "finetune", "OVERWRITE=1", "STAMP=Makefile"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "--config.overwrite=true" in again
