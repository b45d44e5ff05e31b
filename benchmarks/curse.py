"""The curse of multilinguality, measured: a target language alone, with 2 and with all 5
other languages added, at two capacities (issue 32).

One shared 8k sentencepiece vocabulary (sentences drawn with α = 0.7 from English — the
first 20 files of the Wikipedia extract, 6.5M tokens — German, Korean, Vietnamese,
Chinese and Turkish Wikipedia), the recipe that leaves the unigram plateau
(`configs/pretrain/cpu_wiki.py`: MLM on packed text, 40% masking, two local heads per
layer) at cpu_smoke's batch 16 × 128 tokens, lr 2e-3, 1/8 warmup then linear decay. Targets: English
(high-resource: 6.5M tokens, never repeated here) and Turkish (low-resource: 0.33M tokens,
seen ~10 times by a 1,600-step run). Conditions per target:

- `alone`: N = 1,600 steps on the target only (3.3M target tokens);
- `+2` / `+5`: the two largest other corpora / all five others added, in two budgets:
  - `fixed_target` (Chang et al. 2023: the target's own tokens held, steps grow with the
    added data): the target keeps a 1/2 share, the added languages split the other 1/2,
    2N steps, so the target sees the same 3.3M tokens as alone;
  - `fixed_total` (XLM-R, Conneau et al. 2020, Fig. 2: one budget shared): N steps, every
    language an equal share (target 1/3 or 1/6 of the tokens).

Scales (`SCALES`): b16 above, and b64, cpu_wiki's batch 64 / lr 3e-3 held constant for
500 steps, added when every b16 run stayed on the plateau. Capacities: tiny (2 layers ×
128) and mini (4 × 256, ~4.2x the step time). On 2026-12-07 only the first ten runs of
`plan()` fitted (docs/curse.md says which and what was cut). Every run is
scored on the target's fixed held-out set (last 5% of its documents, 15% masking). Runs
are ordered by importance (`plan()`), each resumable in `runs/curse/NAME`; the results
(`benchmarks/results/curse.json`) are rewritten after every run.

    nohup taskset -c 1 .venv/bin/python benchmarks/curse.py > runs/curse/driver.log 2>&1 &
    .venv/bin/python benchmarks/curse.py --collect   # rebuild curse.json from run dirs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_sweep import JAXBERT, MALLOC, ROOT, WIKI  # noqa: E402

MULTI = ROOT.parent / "shared" / "data" / "multilingual"
BASE = ROOT / "runs" / "curse"
RESULTS = ROOT / "benchmarks" / "results" / "curse.json"
LANGS = ("en", "de", "ko", "vi", "zh", "tr")
# The two largest other corpora (prepared token counts: en 6.5M, de 4.8M, ko 1.0M).
PLUS2 = {"en": ("de", "ko"), "tr": ("en", "de")}
VOCAB = 8000
# Steps of the `alone` run: 1,600 × 16 × 128 = 3.3M target tokens, the cpu_smoke budget that
# leaves the plateau. 800 did not: tr alone stayed at 0.052 (its top-1 unigram share) and
# en alone at 0.11 through step 800 (runs/curse/pilot_800/, 2026-12-07).
N = 1600
BATCH = 16
SEQ = 128
SINGLE_CORE = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
CAPACITY = {
    "tiny": {},
    "mini": {
        "model.hidden_size": 256,
        "model.intermediate_size": 1024,
        "model.num_heads": 4,
        "model.num_layers": 4,
    },
}
COMMON = {
    "model.vocab_size": VOCAB,
    "train.batch_size": BATCH,
    "train.log_every": 100,
    "train.eval_batches": 8,
    "optimizer.learning_rate": 2e-3,
    "data.eval_fraction": 0.05,
}
# A run has left the unigram plateau when its held-out target accuracy beats the plateau
# (`plateau_accuracy`) by this margin.
MARGIN = 0.03


def corpus_path(lang: str) -> list[Path]:
    """English is the first 20 files of the extract (linked into runs/curse/en_src)."""
    if lang != "en":
        return [MULTI / f"wiki_{lang}.txt.gz"]
    src = BASE / "en_src"
    src.mkdir(parents=True, exist_ok=True)
    for f in sorted((WIKI / "AA").glob("wiki_*.gz"))[:20]:
        if not (src / f.name).exists():
            (src / f.name).symlink_to(f)
    return [src]


def ensure_data() -> None:
    """The shared tokenizer, then each language prepared with it (skipped when present:
    a rebuilt vocabulary would change every finished run's input)."""
    tok = BASE / "tokenizer"
    cmd = [*JAXBERT, "tokenizer", "train", "--corpus"]
    cmd += [str(p) for lang in LANGS for p in corpus_path(lang)]
    cmd += ["--sampling-alpha", "0.7", "--vocab-size", str(VOCAB), "--max-sentences", "100000"]
    if not (tok / "tokenizer.model").exists():
        subprocess.run(cmd + ["--out", str(tok)], check=True)
    for lang in LANGS:
        if (BASE / lang / "manifest.json").exists():
            continue
        cmd = [*JAXBERT, "data", "prepare", "--corpus", *map(str, corpus_path(lang))]
        cmd += ["--language", lang, "--tokenizer", str(tok), "--out", str(BASE / lang)]
        subprocess.run(cmd, check=True)


def mixture(target: str, added: tuple[str, ...], budget: str) -> tuple[str, float]:
    """`data.corpora` with explicit weights, and the target's share of the tokens."""
    if budget == "fixed_target":
        weights = {target: 0.5, **{lang: 0.5 / len(added) for lang in added}}
    else:
        weights = {lang: 1.0 / (1 + len(added)) for lang in (target, *added)}
    spec = ",".join(f"{lang}={BASE / lang}:{w:.6f}" for lang, w in weights.items())
    return spec, weights[target]


# The cpu_wiki recipe's own scale (`b64`): batch 64, lr 3e-3, warmup 300 and, in place
# of its 6,000-step linear decay, a constant lr after warmup: its first 500 steps, where
# cpu_wiki's English-only runs reached 0.247 / 0.249. The b16 grid's runs all stayed on
# the plateau in this shared vocabulary, so this asks whether the recipe's scale leaves it.
SCALES = {
    "b16": {"steps": N, "overrides": {}},
    "b64": {
        "steps": 500,
        "overrides": {
            "train.batch_size": 64,
            "optimizer.learning_rate": 3e-3,
            "optimizer.decay": "constant",
            "optimizer.warmup_steps": 300,
        },
    },
}


def point(
    target: str, condition: str, budget: str, capacity: str, seed: int, scale: str = "b16"
) -> dict:
    """One run: its name, overrides and the target's share of the training tokens."""
    added = {"alone": (), "+2": PLUS2[target], "+5": tuple(x for x in LANGS if x != target)}
    added = added[condition]
    if added:
        spec, share = mixture(target, added, budget)
        data = {"data.corpora": spec}
    else:
        share, data = 1.0, {"data.prepared_dir": str(BASE / target)}
    n = SCALES[scale]["steps"]
    steps = round(n / share) if budget == "fixed_target" else n
    name = f"{capacity}_{target}_{condition.replace('+', 'plus')}"
    name += f"_{budget}_s{seed}" if added else f"_s{seed}"
    name = name if scale == "b16" else f"{scale}_{name}"
    overrides = {
        **COMMON,
        **CAPACITY[capacity],
        **data,
        "train.seed": seed,
        "train.num_steps": steps,
        "train.eval_every": steps // 4 if scale == "b16" else steps // 2,
        "checkpoint.every_steps": steps // 4,
        "optimizer.warmup_steps": steps // 8,  # cpu_smoke: 200 of 1,600
        **SCALES[scale]["overrides"],
    }
    return {"name": name, "target": target, "condition": condition, "budget": budget,
            "capacity": capacity, "seed": seed, "steps": steps, "target_share": share,
            "added": list(added), "scale": scale, "overrides": overrides}  # fmt: skip


def plan() -> list[dict]:
    """Most telling points first, so a cut-off grid is still a result: tiny alone vs +5 at
    the fixed total budget (both targets, seed 0 then 1), then +5 at the held target
    budget (2N steps each), then +2, then mini (~4.2x the step time)."""
    out = [point(t, "alone", "both", "tiny", 0) for t in ("tr", "en")]
    out += [point(t, "+5", "fixed_total", "tiny", 0) for t in ("tr", "en")]
    # Every seed-0 b16 run stayed on the plateau: the recipe's scale next (seed 0).
    for target in ("en", "tr"):
        out.append(point(target, "alone", "both", "tiny", 0, "b64"))
        out.append(point(target, "+5", "fixed_total", "tiny", 0, "b64"))
    for target in ("tr", "en"):
        out.append(point(target, "alone", "both", "tiny", 1, "b64"))
        out.append(point(target, "+5", "fixed_total", "tiny", 1, "b64"))
    out += [point(t, "+5", "fixed_target", "tiny", 0, "b64") for t in ("tr", "en")]
    for seed in (1,):
        for target in ("tr", "en"):
            out.append(point(target, "alone", "both", "tiny", seed))
            out.append(point(target, "+5", "fixed_total", "tiny", seed))
    for seed in (0, 1):
        out += [point(t, "+5", "fixed_target", "tiny", seed) for t in ("tr", "en")]
    for budget in ("fixed_total", "fixed_target"):
        for seed in (0, 1):
            out += [point(t, "+2", budget, "tiny", seed) for t in ("tr", "en")]
    for seed in (0, 1):
        for target in ("en", "tr"):
            out.append(point(target, "alone", "both", "mini", seed))
            out.append(point(target, "+5", "fixed_target", "mini", seed))
            out.append(point(target, "+5", "fixed_total", "mini", seed))
    return out


def plateau_accuracy(lang: str, mask_prob_kept: float = 0.1) -> float:
    """Held-out MLM accuracy of a model that knows only unigram frequencies: at 15% eval
    masking with BERT's 80/10/10, it copies the 10% of targets left unchanged and predicts
    the most frequent token for the rest (the 10% random replacements: that guess too)."""
    counts = np.load(BASE / lang / "unigram_counts.npy").astype(np.float64)
    top = counts.max() / counts.sum()
    return mask_prob_kept + (1 - mask_prob_kept) * top


def read_metrics(run_dir: Path, target: str) -> list[dict]:
    """Eval rows as (step, target acc, target loss): a mixture logs `LANG/mlm_…`, a
    single-corpus run plain `mlm_…`."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r.get("split") != "eval":
            continue
        acc = r.get(f"{target}/mlm_accuracy", r.get("mlm_accuracy"))
        loss = r.get(f"{target}/mlm_loss", r.get("mlm_loss"))
        out.append({"step": r["step"], "mlm_accuracy": acc, "mlm_loss": loss})
    return out


def last_languages(run_dir: Path) -> dict[str, float]:
    """A mixture's last held-out accuracy on each of its languages (empty for one corpus)."""
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    evals = [r for r in rows if r.get("split") == "eval"]
    last = evals[-1] if evals else {}
    return {k.split("/")[0]: v for k, v in last.items() if k.endswith("/mlm_accuracy")}


def record(p: dict, wall_s: float | None = None, rc: int | None = None) -> dict:
    """The results row of one run (from its metrics.jsonl)."""
    evals = read_metrics(BASE / p["name"], p["target"])
    batch = p["overrides"]["train.batch_size"]
    last = evals[-1] if evals else {}
    done = bool(last) and last["step"] == p["steps"]
    plateau = plateau_accuracy(p["target"])
    acc = last.get("mlm_accuracy")
    row = {k: p[k] for k in ("target", "condition", "budget", "capacity", "seed", "steps")}
    row |= {"target_share": p["target_share"], "added": p["added"], "complete": done,
            "target_tokens_seen": round(p["target_share"] * p["steps"] * batch * SEQ),
            "batch_size": batch, "scale": p.get("scale", "b16"),
            "mlm_accuracy": acc, "mlm_loss": last.get("mlm_loss"), "curve": evals,
            "plateau_accuracy": round(plateau, 4),
            "left_plateau": None if acc is None else bool(acc >= plateau + MARGIN),
            "all_languages": last_languages(BASE / p["name"]),
            "overrides": p["overrides"]}  # fmt: skip
    if wall_s is not None:
        row |= {"wall_s_this_call": round(wall_s, 1), "returncode": rc}
    return row


def save(name: str, row: dict) -> None:
    """Re-read, update one run, write beside and rename over."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    old = results.get(name, {})
    for k in ("wall_s_this_call", "returncode"):
        if k in old and k not in row:
            row[k] = old[k]
    results[name] = row
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(sorted(results.items())), indent=1) + "\n")
    tmp.replace(RESULTS)


def run(p: dict) -> None:
    run_dir = BASE / p["name"]
    keys = {**p["overrides"], "tokenizer": str(BASE / "tokenizer"), "output_dir": str(run_dir)}
    cmd = [*JAXBERT, "pretrain", "--config", str(ROOT / "configs/pretrain/cpu_wiki.py")]
    cmd += [f"--config.{k}={v}" for k, v in keys.items()]
    t0 = time.time()
    with open(BASE / f"{p['name']}.log", "a") as log:
        rc = subprocess.run(cmd, env={**os.environ, **MALLOC, **SINGLE_CORE}, stdout=log,
                            stderr=subprocess.STDOUT).returncode  # fmt: skip
    row = record(p, time.time() - t0, rc)
    save(p["name"], row)
    print(f"== {p['name']}: rc {rc}, acc {row['mlm_accuracy']}, "
          f"left_plateau {row['left_plateau']}, {row['wall_s_this_call']}s", flush=True)  # fmt: skip


def figure(results: dict, out: Path) -> None:
    """Top: final held-out target accuracy per condition (a dot per seed, hollow when the
    run stayed on the plateau; a line through the means of each recipe and budget).
    Bottom: the seed-0 curves against the target's own tokens seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    xs = {"alone": 0, "+2": 1, "+5": 2}
    colors = {"fixed_total": "tab:orange", "fixed_target": "tab:blue", "both": "k"}
    markers = {("b16", "tiny"): "o", ("b64", "tiny"): "^", ("b16", "mini"): "s"}
    for col, target in enumerate(("en", "tr")):
        ax, curve_ax = axes[0][col], axes[1][col]
        rows = [r for r in results.values() if r["target"] == target and r.get("complete")]
        for (scale, cap), marker in markers.items():
            group = [r for r in rows if r.get("scale", "b16") == scale and r["capacity"] == cap]
            alone = [r for r in group if r["condition"] == "alone"]
            for budget in ("fixed_total", "fixed_target"):
                pts = alone + [r for r in group if r["budget"] == budget]
                if len(pts) == len(alone):
                    continue
                color = colors[budget]
                for r in pts:
                    x = xs[r["condition"]] + 0.05 * (r["seed"] - 0.5)
                    face = color if r["left_plateau"] else "none"
                    ax.scatter(x, r["mlm_accuracy"], marker=marker, facecolors=face,
                               edgecolors=color)  # fmt: skip
                means = sorted(
                    (xs[c], float(np.mean([r["mlm_accuracy"] for r in v])))
                    for c in xs
                    if (v := [r for r in pts if r["condition"] == c])
                )
                ax.plot(*zip(*means), color=color, marker=marker, alpha=0.5,
                        label=f"{scale} {cap}, {budget.replace('_', ' ')} held")  # fmt: skip
            for r in group:
                if r["seed"] != 0 or not r["curve"]:
                    continue
                tokens = r["target_share"] * r["batch_size"] * SEQ / 1e6
                ls = {"alone": "-", "+2": "--", "+5": ":"}[r["condition"]]
                curve_ax.plot([e["step"] * tokens for e in r["curve"]],
                              [e["mlm_accuracy"] for e in r["curve"]], ls,
                              color=colors[r["budget"]], marker=marker, ms=4,
                              label=f"{scale} {cap} {r['condition']} {r['budget']}")  # fmt: skip
        for a in (ax, curve_ax):
            a.axhline(plateau_accuracy(target) + MARGIN, color="grey", lw=0.8, ls="--")
        ax.set_xticks(list(xs.values()), ["alone", "+2 languages", "+5 languages"])
        ax.set_title(f"target {target}: final held-out MLM accuracy (hollow: stuck)")
        ax.legend(fontsize=7)
        curve_ax.set_xlabel(f"{target} tokens seen (M)")
        curve_ax.set_ylabel("held-out MLM accuracy")
        curve_ax.set_title(f"{target}, seed 0 (grey dashes: plateau + {MARGIN})")
        curve_ax.legend(fontsize=6)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", action="store_true", help="rebuild curse.json from run dirs")
    ap.add_argument("--list", action="store_true", help="print the plan and stop")
    ap.add_argument("--figure", type=Path, help="draw the figure (docs/img/curse.png) and stop")
    args = ap.parse_args()
    if args.figure:
        figure(json.loads(RESULTS.read_text()), args.figure)
        return 0
    if args.list:
        for p in plan():
            print(p["name"], p["steps"], p["target_share"])
        return 0
    if args.collect:
        for p in plan():
            if (BASE / p["name"] / "metrics.jsonl").exists():
                save(p["name"], record(p))
        return 0
    ensure_data()
    for p in plan():
        if record(p)["complete"]:
            continue
        run(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
