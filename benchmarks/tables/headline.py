"""The front page's results table: one row per result, each cell from its topic module.

A topic module joins the table by defining `headline(results_dir) -> str | None` (the
figure, one short sentence; None while its results file does not exist) and a row here.
Rows link to the page that holds the full table; links are relative to the repository
root, so this table belongs in README.md.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from benchmarks.tables._format import load, table

# (result, topic module in benchmarks/tables/, page with the full table)
ROWS = (
    ("Pretrained vs from scratch", "quality", "docs/results.md#pretrained-vs-scratch"),
    ("Training speed vs peers", "throughput", "docs/results.md#training-speed"),
    ("Fidelity of imported checkpoints", "huggingface", "docs/huggingface.md"),
    ("TPU memory plan vs compiler", "tpu", "docs/tpu.md"),
    ("Object storage: reads per host", "object_storage", "docs/object-storage.md"),
    ("Curse of multilinguality", "curse", "docs/curse.md"),
    ("Faults lose nothing", "robustness", "docs/robustness.md"),
)


def object_storage(results_dir: Path) -> str | None:
    """Bytes each host reads with the corpus on gs://, against its own documents' bytes."""
    data = load(results_dir, "object_storage.json")
    runs = [r for r in (data or {}).get("runs", []) if r["mode"] == "contiguous"]
    if not runs:
        return None
    widest = max(runs, key=lambda r: r["hosts"])
    own = [r["token_bytes"] / r["share_token_bytes"] for r in widest["rows"]]
    return (
        f"each of {widest['hosts']} hosts reads {max(own):.3f}× its own documents' bytes, "
        f"all together {widest['total_over_corpus']:.3f}× the corpus (local GCS server)"
    )


def huggingface(results_dir: Path) -> str | None:
    """A real checkpoint against transformers: hidden states, tokens, a downstream score."""
    data = load(results_dir, "reference.json")
    if not data or "parity" not in data:
        return None
    parts = [f"hidden states within {data['parity']['max_abs_diff']:.1e} of transformers"]
    sets = data.get("tokenization", {}).get("sets", {}).values()
    if sets:
        texts = sum(s["texts"] for s in sets)
        parts.append(f"{sum(s['mismatches'] for s in sets)} token-id mismatches in {texts:,} texts")
    if "sts" in data:
        rho = data["sts"]["spearman"]
        parts.append(
            f"STS-B Spearman {rho['jaxbert']:.4f} vs sentence-transformers' "
            f"{rho['sentence_transformers']:.4f}"
        )
    return "all-MiniLM-L6-v2: " + ", ".join(parts)


def tpu(results_dir: Path) -> str | None:
    """`jaxbert plan`'s memory estimate against the TPU compiler's peak per device."""
    data = load(results_dir, "tpu_plan.json")
    rows = [
        r for r in (data or {}).get("rows", {}).values() if "peak_bytes" in r and "plan_bytes" in r
    ]
    if not rows:
        return None
    ratios = [r["plan_bytes"] / r["peak_bytes"] for r in rows]
    slices = "/".join(sorted({r["target"] for r in rows}))
    return (
        f"`jaxbert plan` at {min(ratios):.2f}–{max(ratios):.2f}× the XLA TPU compiler's peak "
        f"bytes per device ({len(rows)} configs on {slices}, compiled without a TPU)"
    )


LANGUAGE = {"en": "English", "tr": "Turkish"}


def _plateau_note(alone: list[dict], mixed: list[dict]) -> str:
    stuck = [not all(r.get("left_plateau", True) for r in runs) for runs in (alone, mixed)]
    return {
        (True, True): ", both on the unigram plateau",
        (True, False): ", alone on the unigram plateau",
        (False, True): ", mixed still on the unigram plateau",
    }.get(tuple(stuck), "")


def curse(results_dir: Path) -> str | None:
    """Held-out MLM accuracy of a target language with all five others added at a held
    total budget, against the target alone (mean over the seeds measured), per capacity
    at the largest recipe scale measured; runs still on the unigram plateau say so."""
    runs = [r for r in (load(results_dir, "curse.json") or {}).values() if r.get("complete")]
    by: dict[tuple, list[dict]] = {}
    for r in runs:
        key = (r.get("scale", "b16"), r["capacity"], r["target"], r["condition"], r["budget"])
        by.setdefault(key, []).append(r)
    cells = []
    for scale in sorted({k[0] for k in by}, reverse=True):
        for cap in ("tiny", "mini"):
            for target in ("en", "tr"):
                alone = by.get((scale, cap, target, "alone", "both"))
                mixed = by.get((scale, cap, target, "+5", "fixed_total"))
                if not alone or not mixed:
                    continue
                a, m = (sum(r["mlm_accuracy"] for r in x) / len(x) for x in (alone, mixed))
                note = _plateau_note(alone, mixed)
                name = LANGUAGE.get(target, target)
                cells.append(f"{name}, {cap} {scale}: {a:.3f} → {m:.3f} ({m - a:+.3f}{note})")
        if cells:
            break  # the largest recipe scale measured speaks for the row
    if not cells:
        return None
    return "held-out MLM accuracy, target alone → with 5 languages added, total held: " + "; ".join(
        cells
    )


# Figures computed here for topic modules that define no headline() of their own.
FALLBACKS = {
    "object_storage": object_storage,
    "huggingface": huggingface,
    "tpu": tpu,
    "curse": curse,
}


def figure(topic: str, results_dir: Path) -> str | None:
    """The topic's headline figure, or None when it has none (yet)."""
    try:
        module = importlib.import_module(f"benchmarks.tables.{topic}")
    except ModuleNotFoundError as e:
        if e.name != f"benchmarks.tables.{topic}":
            raise
        module = None
    make = getattr(module, "headline", None) or FALLBACKS.get(topic)
    return make(results_dir) if callable(make) else None


def tables(results_dir: Path) -> dict[str, str]:
    rows = []
    for result, topic, page in ROWS:
        value = figure(topic, results_dir)
        rows.append([result, value or "Not measured yet", f"[{page.split('#')[0]}]({page})"])
    return {"headline": table(["result", "figure", "details"], rows)}
