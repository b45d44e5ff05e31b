"""A full disk, as a new user meets it: each command with its output on a small tmpfs,
then rerun after the space is freed (the tmpfs remounted larger). Records what the user
sees (exit status, lines printed, tracebacks, the error line) and what is left on disk.

The issue that asked for this measured, before the run core: `jaxbert pretrain` on a
64 KiB tmpfs printed 885 lines with 55 tracebacks, no `error:` line, kept training and
left `checkpoints/1.orbax-checkpoint-tmp`; fine-tuning on 2 MiB, 1,246 lines and 103
tracebacks. Needs root (mount). Micro models on the repository's fixtures, ~2 minutes.

    sudo .venv/bin/python benchmarks/faults.py --out benchmarks/results/faults.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIKI_TINY = ROOT / "tests" / "fixtures" / "data" / "wiki_tiny.txt"
FT = ROOT / "tests" / "fixtures" / "finetune"
JAXBERT = [sys.executable, "-m", "jaxbert.cli"]


def sh(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=900)  # fmt: skip
    if check and proc.returncode:
        raise SystemExit(f"{argv}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return proc


def pretrain_argv(work: Path, out: Path) -> list:
    values = {
        "model.vocab_size": 600, "model.hidden_size": 32, "model.num_heads": 4,
        "model.intermediate_size": 64, "model.num_layers": 2,
        "data.prepared_dir": work / "prep", "tokenizer": work / "tok",
        "data.max_seq_length": 32, "data.max_predictions_per_seq": 0,
        "train.batch_size": 8, "train.num_steps": 8, "train.log_every": 1,
        "train.eval_every": 0, "checkpoint.every_steps": 4, "optimizer.warmup_steps": 2,
        "train.peak_flops_per_device": 1e9, "output_dir": out,
    }  # fmt: skip
    config = ROOT / "configs" / "pretrain" / "cpu_smoke.py"
    return [
        *JAXBERT,
        "pretrain",
        "--config",
        config,
        *(f"--config.{k}={v}" for k, v in values.items()),
    ]


def finetune_argv(out: Path) -> list:
    values = {
        "init": "scratch", "tokenizer": FT / "vocab.txt", "data_dir": FT, "batch_size": 1,
        "max_seq_length": 16, "num_epochs": 2, "log_every": 1, "checkpoint_every_steps": 3,
        "model.hidden_size": 32, "model.num_heads": 4, "model.intermediate_size": 64,
        "model.max_position_embeddings": 64, "model.num_layers": 1,
        "model.scan_layers": False, "output_dir": out,
    }  # fmt: skip
    config = f"{ROOT / 'configs' / 'finetune' / 'glue.py'}:sst2"
    return [
        *JAXBERT,
        "finetune",
        "--config",
        config,
        *(f"--config.{k}={v}" for k, v in values.items()),
    ]


def observe(proc: subprocess.CompletedProcess, disk: Path) -> dict:
    text = proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    left = sorted(str(p.relative_to(disk)) for p in disk.rglob("*tmp*"))
    return {"exit": proc.returncode, "lines": len(text.splitlines()),
            "tracebacks": text.count("Traceback"), "error_lines": len(errors),
            "error": errors[-1].replace(str(disk), "TMPFS") if errors else "",
            "temporary_left": left}  # fmt: skip


def scenario(name: str, size: str, argv_of, disk: Path) -> dict:
    """argv_of(out) on a `size` tmpfs at `disk`, then again on 64 MiB."""
    sh(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", disk])
    try:
        out = disk / "out"
        first = observe(sh(argv_of(out), check=False), disk)
        sh(["mount", "-o", "remount,size=64m", disk])
        rerun = sh(argv_of(out), check=False)
        first["rerun_exit"] = rerun.returncode
        first["rerun_resumed"] = "resumed from" in rerun.stdout
    finally:
        sh(["umount", "-l", disk], check=False)
    print(f"{name}: {first}", flush=True)
    return {"scenario": name, "tmpfs": size, **first}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "faults.json")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("benchmarks/faults.py mounts tmpfs file systems: run it as root")
    with tempfile.TemporaryDirectory() as tmp:
        work, disk = Path(tmp), Path(tmp) / "disk"
        disk.mkdir()
        sh([*JAXBERT, "tokenizer", "train", "--corpus", WIKI_TINY, "--out", work / "tok",
            "--vocab-size", "600"])  # fmt: skip
        sh([*JAXBERT, "data", "prepare", "--corpus", WIKI_TINY, "--tokenizer", work / "tok",
            "--out", work / "prep", "--workers", "0"])  # fmt: skip
        rows = [
            scenario("pretrain", "64k", lambda out: pretrain_argv(work, out), disk),
            scenario("pretrain", "1m", lambda out: pretrain_argv(work, out), disk),
            scenario("finetune", "2m", finetune_argv, disk),  # the size: fits here
            scenario("finetune", "1m", finetune_argv, disk),
            scenario(
                "tokenizer train",
                "64k",
                lambda out: [
                    *JAXBERT,
                    "tokenizer",
                    "train",
                    "--corpus",
                    WIKI_TINY,
                    "--out",
                    out,
                    "--vocab-size",
                    "600",
                ],
                disk,
            ),  # fmt: skip
            scenario(
                "data prepare",
                "64k",
                lambda out: [
                    *JAXBERT,
                    "data",
                    "prepare",
                    "--corpus",
                    WIKI_TINY,
                    "--tokenizer",
                    work / "tok",
                    "--out",
                    out,
                    "--workers",
                    "0",
                ],
                disk,
            ),  # fmt: skip
        ]
    load = os.getloadavg()
    args.out.write_text(json.dumps({
        "command": "sudo .venv/bin/python benchmarks/faults.py",
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPU cores, load average {load[0]:.1f}",
        "rows": rows,
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
