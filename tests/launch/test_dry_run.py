"""The launch scripts, run without the hardware: DRY_RUN=1 output, and real runs against a fake
`gcloud` / `srun` / `sbatch` first on PATH that record their argv and environment."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TPU = REPO / "launch" / "tpu"
SBATCH = REPO / "launch" / "slurm" / "pretrain.sbatch"

FAKE = """#!/usr/bin/env python3
import json, os, sys
keys = ("XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_FLAGS", "NCCL_DEBUG", "SLURM_JOB_ID")
with open(os.environ["FAKE_LOG"], "a") as f:
    name = os.path.basename(sys.argv[0]).replace("record", "sbatch")
    record = {"argv": [name] + sys.argv[1:]}
    record["env"] = {k: os.environ[k] for k in keys if k in os.environ}
    f.write(json.dumps(record) + "\\n")
if "describe" in sys.argv:
    print("ACTIVE")
"""

# The fake sbatch runs the script as SLURM would, on two nodes of eight tasks each.
FAKE_SBATCH = """#!/usr/bin/env bash
"$(dirname "$0")/record" "$@"
export SLURM_JOB_ID=4242 SLURM_JOB_NAME=jaxbert SLURM_NTASKS=16 SLURM_NTASKS_PER_NODE=8
export SLURM_SUBMIT_DIR=$PWD
script=$1; shift
exec bash "$script" "$@"
"""

SETTINGS = {
    "PROJECT": "my-proj",
    "ZONE": "us-west4-a",
    "TPU_NAME": "bert-pod",
    "ACCELERATOR_TYPE": "v5litepod-64",
    "RUNTIME_VERSION": "v2-alpha-tpuv5-lite",
    "BUCKET": "gs://my-bucket",
    "CONFIG": "configs/pretrain/phase1_seq128.py:large,lamb",
}


@pytest.fixture
def fakes(tmp_path):
    """A bin/ with fake gcloud, srun and sbatch, and the file they record calls into."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gcloud", "srun", "record"):
        (bin_dir / name).write_text(FAKE)
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "XLA_", "DRY_RUN"))}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_LOG=str(log), ARCHIVE=str(tmp_path / "a.tgz"))

    def run(script, *args, dry_run=False, **extra):
        e = {**env, **SETTINGS, **extra}
        if dry_run:
            e["DRY_RUN"] = "1"
        proc = subprocess.run(
            [str(script), *args], env=e, cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return proc.stdout, calls

    return run


def printed(stdout: str) -> list[list[str]]:
    return [shlex.split(line) for line in stdout.splitlines() if line.strip()]


def remote_command(argv: list[str]) -> str:
    return next(a.split("=", 1)[1] for a in argv if a.startswith("--command="))


def test_create_uses_queued_resources(fakes):
    """create.sh asks for a queued resource with the slice type, runtime, project and zone,
    then polls its state; dry run prints exactly what a real run executes."""
    out, calls = fakes(TPU / "create.sh", dry_run=True)
    assert calls == []  # nothing ran
    cmds = printed(out)
    assert cmds[0][:5] == ["gcloud", "compute", "tpus", "queued-resources", "create"]
    for flag in (
        "--node-id=bert-pod",
        "--accelerator-type=v5litepod-64",
        "--runtime-version=v2-alpha-tpuv5-lite",
        "--project=my-proj",
        "--zone=us-west4-a",
    ):
        assert flag in cmds[0]
    assert "describe" in cmds[1]
    _, calls = fakes(TPU / "create.sh")
    assert [c["argv"] for c in calls] == cmds


def test_create_spot(fakes):
    """SPOT=1 requests spot capacity."""
    out, _ = fakes(TPU / "create.sh", dry_run=True, SPOT="1")
    assert "--spot" in printed(out)[0]


def test_install_copies_to_every_worker(fakes):
    """install.sh scp's the source to --worker=all and installs requirements-tpu.txt in a
    venv on every worker; the prepared corpus stays in the bucket unless LOCAL_COPY=1."""
    out, _ = fakes(TPU / "install.sh", dry_run=True)
    cmds = printed(out)
    assert cmds[0][:3] == ["git", "-C", str(REPO)]
    scp, setup = cmds[1:]
    assert scp[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"]
    assert "bert-pod:jaxbert-src.tar.gz" in scp
    for cmd in (scp, setup):
        assert "--worker=all" in cmd and "--project=my-proj" in cmd
    assert "pip install -q -r requirements-tpu.txt" in remote_command(setup)
    assert "rsync" not in out
    _, calls = fakes(TPU / "install.sh")
    assert [c["argv"] for c in calls] == cmds[1:]  # git archive is real, not gcloud
    out, _ = fakes(TPU / "install.sh", dry_run=True, LOCAL_COPY="1")
    data = printed(out)[-1]
    assert "--worker=all" in data
    assert "gcloud storage rsync -r gs://my-bucket/prepared" in remote_command(data)


def test_run_starts_make_target_on_all_workers(fakes):
    """run.sh runs `make pretrain-tpu CONFIG=…` on every worker at once, with the run's
    checkpoints on gs://, distributed start-up on, the MESH and extra overrides passed on."""
    out, _ = fakes(TPU / "run.sh", "--config.train.grad_accum_steps=8", dry_run=True, MESH="1,-1,1")
    (cmd,) = printed(out)
    assert cmd[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "bert-pod"]
    assert "--worker=all" in cmd
    remote = shlex.split(remote_command(cmd))
    assert remote[:6] == ["cd", "~/jaxbert", "&&", "nohup", "make", "pretrain-tpu"]
    assert "CONFIG=configs/pretrain/phase1_seq128.py:large,lamb" in remote
    args = next(a for a in remote if a.startswith("ARGS=")).split("=", 1)[1].split()
    assert "--config.output_dir=runs/phase1_seq128-large-lamb" in args
    assert (
        "--config.checkpoint.directory=gs://my-bucket/runs/phase1_seq128-large-lamb/checkpoints"
        in args
    )
    assert "--config.distributed.mode=on" in args
    assert "--config.mesh.fsdp=-1" in args and "--config.train.grad_accum_steps=8" in args
    assert "--config.data.prepared_dir=gs://my-bucket/prepared" in args  # read in place
    assert "--config.data.host_documents=contiguous" in args
    _, calls = fakes(TPU / "run.sh", "--config.train.grad_accum_steps=8", MESH="1,-1,1")
    assert [c["argv"] for c in calls] == [cmd]


def test_run_requires_a_gcs_bucket(fakes, tmp_path):
    """Without BUCKET=gs://… run.sh refuses before calling gcloud."""
    proc = subprocess.run(
        [str(TPU / "run.sh")],
        env={**os.environ, **SETTINGS, "BUCKET": "/local/dir", "DRY_RUN": "1"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "BUCKET=gs://" in proc.stderr


def test_logs_and_delete(fakes):
    """logs.sh follows worker 0's log (WORKER=all for every worker); delete.sh deletes the
    queued resource with --force so the node goes too."""
    out, _ = fakes(TPU / "logs.sh", dry_run=True)
    (cmd,) = printed(out)
    assert "--worker=0" in cmd and "tail -n +1 -F ~/jaxbert/train.log" in remote_command(cmd)
    out, _ = fakes(TPU / "logs.sh", dry_run=True, WORKER="all")
    assert "--worker=all" in printed(out)[0]
    out, calls = fakes(TPU / "delete.sh")
    assert calls[0]["argv"][:5] == ["gcloud", "compute", "tpus", "queued-resources", "delete"]
    assert "bert-pod-qr" in calls[0]["argv"] and "--force" in calls[0]["argv"]


def test_sbatch_runs_one_process_per_gpu(fakes):
    """Submitted with sbatch, the script srun's `jaxbert pretrain` as 8 tasks per node (one per
    GPU; JAX reads SLURM_* itself), with the GPU memory and XLA settings in its environment."""
    _, calls = fakes(
        "sbatch", str(SBATCH), "--config.train.num_steps=10", CONFIG="configs/pretrain/cpu_smoke.py"
    )
    sbatch, srun = calls
    assert sbatch["argv"][:2] == ["sbatch", str(SBATCH)]
    argv = srun["argv"]
    assert argv[:3] == ["srun", "--kill-on-bad-exit=1", "--ntasks-per-node=8"]
    assert argv[3].endswith("jaxbert") and argv[4] == "pretrain"
    assert argv[5:7] == ["--config", "configs/pretrain/cpu_smoke.py"]
    assert "--config.output_dir=runs/jaxbert-4242" in argv
    assert argv[-1] == "--config.train.num_steps=10"
    assert srun["env"]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.92"
    assert "--xla_gpu_enable_latency_hiding_scheduler=true" in srun["env"]["XLA_FLAGS"]
    assert srun["env"]["SLURM_JOB_ID"] == "4242"


def test_sbatch_header_requests_gpus():
    """The #SBATCH header asks for whole nodes with one task per GPU."""
    header = [line for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --ntasks-per-node=8" in header
    assert "#SBATCH --gpus-per-node=8" in header


def test_local_multiprocess_rejects_bad_usage():
    """local_multiprocess.sh needs a positive process count before the jaxbert arguments."""
    proc = subprocess.run(
        [str(REPO / "launch" / "local_multiprocess.sh"), "--config", "x.py"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
