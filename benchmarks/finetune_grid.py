"""Fine-tuning fidelity and speed against transformers' `Trainer` on all-MiniLM-L6-v2.

Five tasks (MRPC, RTE, STS-B, CoLA, CoNLL-2003) × seeds, one recipe for both stacks:
AdamW lr 5e-5, ε 1e-6, weight decay 0.01 (not on biases and LayerNorm), linear warmup
over round(10%) of the steps then linear decay, clip 1.0, batch 32, 3 epochs, max length
128, dev scored after every epoch. Both stacks train on the *same features*: the torch
side reads them through jaxbert's own task loaders (same token ids, same first-sub-token
NER labels, same truncation) and scores its dev predictions with jaxbert's metric code,
so a difference in the numbers is a difference in training, not in data or scoring.
Padding is each stack's default: jaxbert's length buckets (32/64/128, similar lengths
batched together), `Trainer`'s random batches padded to their longest row.

How it runs: each (task, seed) is a pair of processes started together, jaxbert on one
core and transformers on the other (`taskset`, one thread each), the cores swapped from
seed to seed, so both stacks see the same machine at the same time. Each records wall,
user and system seconds, its in-run fp32 matmul peak on its core (2048³) and the
fraction of that peak its useful training FLOPs reach (real tokens only, 3× forward).
Results merge into benchmarks/results/finetune_grid.json after every pair; a rerun skips
the pairs already there (same recipe), so the grid resumes where it stopped.

    .venv-bench/bin/python benchmarks/finetune_grid.py            # the whole grid
    .venv-bench/bin/python benchmarks/finetune_grid.py --tasks mrpc --seeds 0
    nohup .venv-bench/bin/python benchmarks/finetune_grid.py > runs/grid.log 2>&1 &

The jaxbert side runs `.venv/bin/jaxbert` (set JAXBERT_BIN to override); run `make
install` and `reference.py fetch` first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import DATA, MODEL, ROOT, load_average, model_flops, torch_peak  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "finetune_grid.json"
QUICK = int(os.environ.get("GRID_QUICK", "0"))  # a smoke test: N train/dev examples, 1 epoch
RUNS = ROOT / "runs" / "reference" / "grid"
TASKS = ("mrpc", "rte", "stsb", "cola", "conll2003")
RECIPE = {"lr": 5e-5, "epochs": 3, "batch": 32, "seq": 128, "warmup_fraction": 0.1,
          "adam_eps": 1e-6, "weight_decay": 0.01, "clip_norm": 1.0}  # fmt: skip


def job_order(tasks, seeds) -> list[tuple[str, int]]:
    """Every task at the first seed, then the GLUE tasks' other seeds, CoNLL's (the
    longest) last: an interrupted grid still has each task once."""
    first = [(t, seeds[0]) for t in tasks]
    glue = [(t, s) for s in seeds[1:] for t in tasks if t != "conll2003"]
    conll = [(t, s) for s in seeds[1:] for t in tasks if t == "conll2003"]
    return first + glue + conll


# ------------------------------------------------------------------------ the pair


def _jaxbert_bin() -> Path:
    return Path(os.environ.get("JAXBERT_BIN", str(ROOT / ".venv" / "bin" / "jaxbert")))


def _jaxbert_cmd(task: str, seed: int, out: Path) -> list[str]:
    return [str(_jaxbert_bin()), "finetune", "--task", task, f"--config.init={MODEL}",
            f"--config.data_dir={DATA}", f"--config.seed={seed}",
            f"--config.output_dir={out}", "--config.overwrite=true",
            f"--config.optimizer.learning_rate={RECIPE['lr']}",
            f"--config.num_epochs={RECIPE['epochs']}", f"--config.batch_size={RECIPE['batch']}",
            f"--config.max_seq_length={RECIPE['seq']}",
            f"--config.optimizer.eps={RECIPE['adam_eps']}",
            f"--config.optimizer.weight_decay={RECIPE['weight_decay']}",
            f"--config.optimizer.clip_norm={RECIPE['clip_norm']}",
            f"--config.warmup_fraction={RECIPE['warmup_fraction']}",
            *([f"--config.max_train_examples={QUICK}", f"--config.max_eval_examples={QUICK}"]
              if QUICK else [])]  # fmt: skip


def _torch_cmd(task: str, seed: int, out: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", task, "--seed", str(seed),
            "--out", str(out)]  # fmt: skip


def _xla_peak_on(core: int) -> float:
    """XLA's fp32 matmul peak on one core, measured in a jax process pinned there."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import reference as r; print(r.xla_peak())"
    )
    python = str(_jaxbert_bin().parent / "python")
    res = subprocess.run(["taskset", "-c", str(core), python, "-c", code], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    return float(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else float("nan")


def run_pair(task: str, seed: int) -> list[dict]:
    """jaxbert and transformers at once, each pinned to its own core."""
    cores = {"jaxbert": seed % 2, "torch": 1 - seed % 2}
    outs = {s: RUNS / f"{task}-{s}-seed{seed}" for s in cores}
    xla_peak = _xla_peak_on(cores["jaxbert"])
    cmds = {"jaxbert": _jaxbert_cmd(task, seed, outs["jaxbert"]),
            "torch": _torch_cmd(task, seed, outs["torch"])}  # fmt: skip
    procs, logs, started = {}, {}, {}
    for stack, cmd in cmds.items():
        shutil.rmtree(outs[stack], ignore_errors=True)  # a killed run would resume, not time
        outs[stack].mkdir(parents=True)
        logs[stack] = outs[stack].with_suffix(".log").open("w")
        started[stack] = time.perf_counter()
        procs[stack] = subprocess.Popen(["taskset", "-c", str(cores[stack]), *cmd], cwd=ROOT,
                                        stdout=logs[stack], stderr=subprocess.STDOUT)  # fmt: skip
    timing = {}
    pending = {p.pid: s for s, p in procs.items()}
    while pending:
        pid, status, usage = os.wait4(-1, 0)
        stack = pending.pop(pid, None)
        if stack is None:
            continue
        procs[stack].returncode = os.waitstatus_to_exitcode(status)
        timing[stack] = {"wall_s": time.perf_counter() - started[stack], "user_s": usage.ru_utime,
                         "sys_s": usage.ru_stime, "load_average": load_average()}  # fmt: skip
        logs[stack].close()
    rows = []
    for stack in cmds:
        if procs[stack].returncode != 0:
            log = outs[stack].with_suffix(".log")
            print(f"  {task} seed {seed} {stack}: failed ({procs[stack].returncode}); see {log}")
            continue
        found = json.loads((outs[stack] / "metrics.json").read_text())
        if stack == "jaxbert":
            found = _jaxbert_result(found) | {"buckets": buckets(outs[stack].with_suffix(".log"))}
        peak = xla_peak if stack == "jaxbert" else found.pop("peak_gflops")
        lengths = outs["torch"] / "train_lengths.npy"  # the same features on both sides
        found["useful_gflops"] = (
            _useful_gflops(np.load(lengths), found["train_s"]) if lengths.exists() else None
        )
        row = {"task": task, "seed": seed, "stack": stack, "core": cores[stack],
               **timing[stack], **found, "peak_gflops": peak}  # fmt: skip
        useful = row["useful_gflops"]
        row["fraction_of_own_peak"] = useful / peak if useful and peak == peak else None
        rows.append(row)
    return rows


def _useful_gflops(lengths: np.ndarray, seconds: float) -> float:
    """Training FLOPs on the real tokens (3× forward) per second of training."""
    return 3 * RECIPE["epochs"] * model_flops(lengths) / seconds / 1e9


def buckets(log: Path) -> str:
    """The length buckets a jaxbert run padded to, from its first log line."""
    found = re.search(r"length buckets \[([0-9, ]+)\]", log.read_text())
    return found.group(1).replace(", ", "/") if found else "none"


def _jaxbert_result(m: dict) -> dict:
    """The last epoch's dev scores (what `Trainer` reports), not the best epoch's."""
    return {"dev": m["last_epoch_dev"], "best_epoch_dev": m["dev"], "train_s": m["train_time_s"],
            "history": [h.get("dev") for h in m["history"]], "steps": m["num_steps"]}  # fmt: skip


# ----------------------------------------------------------------------- torch child


def _task_data(task: str, seed: int):
    """The task's features exactly as `jaxbert finetune` builds them (no jax imported)."""
    from jaxbert.data.tokenizer import load_tokenizer
    from jaxbert.finetune.config import finetune_defaults
    from jaxbert.finetune.data import load_task_data

    cfg = finetune_defaults(task)
    cfg.data_dir, cfg.seed, cfg.max_seq_length = str(DATA), seed, RECIPE["seq"]
    cfg.max_train_examples = cfg.max_eval_examples = QUICK
    return load_task_data(cfg, load_tokenizer(MODEL))


def _rows(f: dict, kind: str) -> list[dict]:
    """Each feature row cut to its real length (the collator pads per batch)."""
    rows = []
    for i, n in enumerate(f["input_mask"].sum(axis=1)):
        row = {"input_ids": f["input_ids"][i, :n], "token_type_ids": f["segment_ids"][i, :n],
               "attention_mask": f["input_mask"][i, :n]}  # fmt: skip
        if kind == "token":
            row["labels"] = np.where(f["label_weights"][i, :n] > 0, f["labels"][i, :n], -100)
        else:
            row["labels"] = f["label"][i]
        rows.append(row)
    return rows


def _collate(rows: list[dict]) -> dict:
    """Pads a batch to its longest row, as transformers' DataCollatorWithPadding does."""
    import torch

    n = max(len(r["input_ids"]) for r in rows)

    def pad(key, value):
        return np.stack([np.pad(r[key], (0, n - len(r[key])), constant_values=value) for r in rows])

    batch = {k: torch.tensor(pad(k, 0), dtype=torch.long)
             for k in ("input_ids", "token_type_ids", "attention_mask")}  # fmt: skip
    labels = [r["labels"] for r in rows]
    if np.ndim(labels[0]):
        batch["labels"] = torch.tensor(pad("labels", -100), dtype=torch.long)
    elif isinstance(labels[0], (float, np.floating)):
        batch["labels"] = torch.tensor(np.array(labels), dtype=torch.float32)
    else:
        batch["labels"] = torch.tensor(np.array(labels), dtype=torch.long)
    return batch


def _scorer(data):
    """compute_metrics for `Trainer`: jaxbert's decode and metric on torch's dev logits."""
    split = data.dev[0]

    def score(pred) -> dict:
        p = np.asarray(pred.predictions)
        if data.kind == "regression":
            preds = {"score": p.reshape(len(p), -1)[:, 0]}
        elif data.kind == "token":
            tags = p.argmax(-1)
            tags = np.pad(tags, [(0, 0), (0, RECIPE["seq"] - tags.shape[1])])
            preds = {"tags": tags}
        else:
            preds = {"logits": p}
        return split.score(split.decode(preds))

    return score


def torch_child(args) -> None:
    """transformers `Trainer` on one task and seed, on jaxbert's features."""
    import torch
    from transformers import (
        BertForSequenceClassification,
        BertForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    peak = torch_peak()
    data = _task_data(args.child, args.seed)
    rows = _rows(data.train, data.kind)
    np.save(args.out / "train_lengths.npy", data.train["input_mask"].sum(axis=1))
    dev = _rows(data.dev[0].features, data.kind)  # labels too: Trainer's eval loss
    torch.manual_seed(args.seed)
    num_labels = 1 if data.kind == "regression" else data.num_labels
    cls = BertForTokenClassification if data.kind == "token" else BertForSequenceClassification
    model = cls.from_pretrained(MODEL, num_labels=num_labels)
    steps = -(-len(rows) // RECIPE["batch"]) * RECIPE["epochs"]
    targs = TrainingArguments(
        output_dir=str(args.out / "trainer"), per_device_train_batch_size=RECIPE["batch"],
        per_device_eval_batch_size=RECIPE["batch"], learning_rate=RECIPE["lr"],
        num_train_epochs=RECIPE["epochs"], warmup_steps=round(RECIPE["warmup_fraction"] * steps),
        adam_epsilon=RECIPE["adam_eps"], weight_decay=RECIPE["weight_decay"],
        max_grad_norm=RECIPE["clip_norm"], lr_scheduler_type="linear", eval_strategy="epoch",
        save_strategy="no", logging_steps=10, seed=args.seed, report_to=[], use_cpu=True,
        dataloader_num_workers=0)  # fmt: skip
    trainer = Trainer(model=model, args=targs, train_dataset=rows, eval_dataset=dev,
                      data_collator=_collate, compute_metrics=_scorer(data))  # fmt: skip
    t = time.perf_counter()
    out = trainer.train()
    train_s = time.perf_counter() - t
    history = [
        {k[5:]: v for k, v in h.items() if k.startswith("eval_") and "runtime" not in k
         and "per_second" not in k}
        for h in trainer.state.log_history if "eval_loss" in h
    ]  # fmt: skip
    result = {"dev": history[-1], "history": history, "train_s": train_s, "steps": steps,
              "train_runtime_s": out.metrics["train_runtime"], "peak_gflops": peak,
              "threads": torch.get_num_threads()}  # fmt: skip
    (args.out / "metrics.json").write_text(json.dumps(result, indent=1))


# ----------------------------------------------------------------------------- main


def load() -> dict:
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return {"recipe": RECIPE, "runs": []}


def save(results: dict) -> None:
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    tmp.replace(RESULTS)


def _commit() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True)  # fmt: skip
    return res.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--child", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(ROOT)
    if QUICK:
        global RESULTS, RUNS
        RECIPE["epochs"], RESULTS, RUNS = 1, Path("/tmp/grid_quick.json"), Path("/tmp/grid_quick")
    if args.child:
        return torch_child(args)
    if not MODEL.is_dir():
        raise SystemExit(f"{MODEL} not found: run `benchmarks/reference.py fetch` first")
    results = load()
    if results.get("recipe") != RECIPE:
        raise SystemExit(f"{RESULTS} holds another recipe; move it aside to start over")
    for task, seed in job_order(args.tasks, args.seeds):
        done = {(r["task"], r["seed"], r["stack"]) for r in results["runs"]}
        if {(task, seed, "jaxbert"), (task, seed, "torch")} <= done:
            continue
        print(f"{time.strftime('%H:%M:%S')} {task} seed {seed} …", flush=True)
        commit = _commit()
        for row in run_pair(task, seed):
            results["runs"] = [r for r in results["runs"]
                               if (r["task"], r["seed"], r["stack"]) != (task, seed, row["stack"])]  # fmt: skip
            results["runs"].append({**row, "commit": commit})
            print(f"  {row['stack']}: dev {row['dev']} wall {row['wall_s']:.0f}s "
                  f"sys {row['sys_s']:.0f}s peak {row['peak_gflops']:.0f}", flush=True)  # fmt: skip
        save(results)


if __name__ == "__main__":
    main()
