"""The curse of multilinguality at CPU scale: each language alone vs all six mixed at α.

One shared 16k sentencepiece vocabulary (trained on sentences drawn with mBERT's α = 0.7
over English, German, Korean, Vietnamese, Chinese and Turkish Wikipedia), one model
(tiny, `configs/pretrain/cpu_wiki.py`'s recipe: MLM on packed text, 40% masking,
lr 3e-3) and one token budget (steps × batch × 128 tokens) for every run:

- six monolingual runs (`mono_LANG`), each on its own corpus;
- three mixtures of all six (`mix_a1.0`, `mix_a0.7`, `mix_a0.3`): language i is drawn with
  q_i ∝ p_i^α from its token count p_i.

Every run is scored on the same fixed held-out set per language (the last 5% of each
corpus's documents, 15% token masking): a mixture reports each language alone
(`LANG/mlm_accuracy`), a monolingual run its own. Each run lives in `runs/multi/NAME` and
is resumable; results go to `benchmarks/results/multilingual.json` after every run.

    nohup .venv/bin/python benchmarks/multilingual.py > runs/multi.log 2>&1 &

Two drivers, each pinned to a core (`taskset -c 0` / `-c 1`), finish the nine runs
sooner than one (a tiny model does not scale to two threads); each skips a run another
live driver holds (`NAME/.driver.pid`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_sweep import JAXBERT, MALLOC, ROOT, WIKI  # noqa: E402

MULTI = ROOT.parent / "shared" / "data" / "multilingual"
LANGS = ("en", "de", "ko", "vi", "zh", "tr")
BASE = ROOT / "runs" / "multi"
RESULTS = ROOT / "benchmarks" / "results" / "multilingual.json"
VOCAB = 16_000

COMMON = {
    "model.vocab_size": VOCAB,
    "train.num_steps": 800,  # 6.6M tokens: nine runs in ~2 h on 2 cores
    "train.batch_size": 64,
    "train.log_every": 100,
    "train.eval_every": 400,
    "train.eval_batches": 10,
    "checkpoint.every_steps": 400,
    "optimizer.warmup_steps": 80,
    "data.eval_fraction": 0.05,  # Chinese has 64 documents: 1% would hold out one
}


def corpus_path(lang: str) -> Path:
    return WIKI if lang == "en" else MULTI / f"wiki_{lang}.txt.gz"


def ensure_data() -> None:
    """The shared tokenizer, then each language prepared with it (skipped when up to date)."""
    tok = BASE / "tokenizer"
    cmd = [*JAXBERT, "tokenizer", "train", "--corpus", *map(str, map(corpus_path, LANGS))]
    cmd += ["--sampling-alpha", "0.7", "--vocab-size", str(VOCAB), "--max-sentences", "300000"]
    subprocess.run(cmd + ["--out", str(tok)], check=True)
    for lang in LANGS:
        cmd = [*JAXBERT, "data", "prepare", "--corpus", str(corpus_path(lang)), "--language", lang]
        subprocess.run(cmd + ["--tokenizer", str(tok), "--out", str(BASE / lang)], check=True)


def variants(seed: int = 0) -> dict[str, dict]:
    """Seed 0 names runs `mix_a0.7`, `mono_en`, …; another seed appends `_s{seed}` (a
    repeat tells a run stuck on the unigram plateau by chance from a systematic effect)."""
    mix = ",".join(f"{lang}={BASE / lang}" for lang in LANGS)
    out = {f"mix_a{a}": {"data.corpora": mix, "data.sampling_alpha": a} for a in (1.0, 0.7, 0.3)}
    # English first (the high-resource baseline), then the smallest languages.
    for lang in ("en", "ko", "tr", "zh", "vi", "de"):
        out[f"mono_{lang}"] = {"data.prepared_dir": str(BASE / lang)}
    if seed == 0:
        return out
    return {f"{name}_s{seed}": {**v, "train.seed": seed} for name, v in out.items()}


def finished(name: str) -> bool:
    """Recorded with its last eval (a finished run is not re-run, its wall time kept)."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    last = str(COMMON["train.num_steps"])
    accs = results.get(name, {}).get("mlm_accuracy", {})
    return bool(accs) and all(last in a for a in accs.values())


def claim(run_dir: Path) -> bool:
    """Takes the run for this driver unless a live process holds it (`.driver.pid`), so
    several drivers can share one list: each runs what no other is running."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / ".driver.pid"
    if lock.exists():
        try:
            os.kill(int(lock.read_text()), 0)
            return False  # alive: another driver has it
        except (ValueError, ProcessLookupError):
            pass  # stale
    lock.write_text(str(os.getpid()))
    return True


def per_language(run_dir: Path, variant: dict) -> dict:
    """Held-out MLM accuracy per language at each eval point (a monolingual run's language
    is its prepared corpus's directory name)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    mono = variant.get("data.prepared_dir")
    out: dict[str, dict] = {}
    for r in (r for r in rows if r.get("split") == "eval"):
        if mono:
            out.setdefault(Path(mono).name, {})[str(r["step"])] = r["mlm_accuracy"]
        for key, value in r.items():
            if key.endswith("/mlm_accuracy"):
                out.setdefault(key.split("/")[0], {})[str(r["step"])] = value
    return out


def shares(alpha: float) -> dict[str, float]:
    """q_i ∝ p_i^α from each prepared corpus's token count."""
    tokens = {
        lang: json.loads((BASE / lang / "manifest.json").read_text())["tokens"] for lang in LANGS
    }
    w = {lang: (n / sum(tokens.values())) ** alpha for lang, n in tokens.items()}
    return {lang: v / sum(w.values()) for lang, v in w.items()}


def table(results: dict, step: str = "800") -> str:
    """The README table: held-out MLM accuracy per language, alone and mixed at each α."""
    head = "| run | " + " | ".join(LANGS) + " |\n|---|" + "---|" * len(LANGS)
    acc = lambda name, lang: results.get(name, {}).get("mlm_accuracy", {}).get(lang, {}).get(step)  # noqa: E731
    cell = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    rows = [
        head,
        "| alone (six runs) | " + " | ".join(cell(acc(f"mono_{x}", x)) for x in LANGS) + " |",
    ]
    for a in (1.0, 0.7, 0.3):
        q = shares(a)
        cells = (f"{cell(acc(f'mix_a{a}', x))} ({100 * q[x]:.0f}%)" for x in LANGS)
        rows.append(f"| all six, α = {a} (share) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help="run only these variants")
    p.add_argument(
        "--seed", type=int, default=0, help="model init and data order (0: the table's runs)"
    )
    p.add_argument("--table", action="store_true", help="print the results table and stop")
    args = p.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text())))
        return 0
    ensure_data()
    env = {**os.environ, **MALLOC}
    for name, variant in variants(args.seed).items():
        run_dir = BASE / name
        if (args.only and name not in args.only) or finished(name) or not claim(run_dir):
            continue
        keys = {
            **COMMON,
            **variant,
            "tokenizer": str(BASE / "tokenizer"),
            "output_dir": str(run_dir),
        }
        cmd = [*JAXBERT, "pretrain", "--config", str(ROOT / "configs/pretrain/cpu_wiki.py")]
        t0 = time.time()
        rc = subprocess.run(
            cmd + [f"--config.{k}={v}" for k, v in keys.items()], env=env
        ).returncode
        entry = {"overrides": {**COMMON, **variant}, "returncode": rc}
        entry["wall_s_this_call"] = round(time.time() - t0, 1)
        if (run_dir / "metrics.jsonl").exists():
            entry["mlm_accuracy"] = per_language(run_dir, variant)
        # Re-read first: two drivers may share the file (`--only` with disjoint lists).
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[name] = entry
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp = RESULTS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(RESULTS)
        (run_dir / ".driver.pid").unlink(missing_ok=True)
        print(f"== {name}: rc {rc}, {entry.get('mlm_accuracy')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
