"""The α experiment and cross-lingual transfer: multilingual.py, FLORES and XQuAD results."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.tables._format import load, not_measured, source, table

LANGS = ("en", "de", "ko", "vi", "zh", "tr")
MACHINE = "the 2-core CPU machine, two runs at a time (one core each)"
ALPHA_COMMAND = "python benchmarks/multilingual.py"
ALPHA_ROWS = (
    ("alone (six runs, one per language)", "mono_{lang}"),
    ("all six, α = 1.0", "mix_a1.0"),
    ("all six, α = 0.7", "mix_a0.7"),
    ("all six, α = 0.3", "mix_a0.3"),
    ("alone, seed 1", "mono_{lang}_s1"),
    ("all six, α = 1.0, seed 1", "mix_a1.0_s1"),
)
FLORES_COMMAND = (
    "jaxbert eval-embeddings --task flores --init runs/multi/mix_a0.7 "
    "--corrections none,center,whiten,abtt --output benchmarks/results/flores_mix_a0.7.json"
)
XQUAD_COMMAND = "python benchmarks/xquad.py"
XQUAD_LANGS = ("en", "de", "vi", "zh", "tr", "es")


def alpha(results_dir: Path) -> str:
    runs = load(results_dir, "multilingual.json")
    if runs is None:
        return not_measured(ALPHA_COMMAND)
    rows = []
    for label, pattern in ALPHA_ROWS:
        cells = []
        for lang in LANGS:
            acc = runs.get(pattern.format(lang=lang), {}).get("mlm_accuracy", {}).get(lang, {})
            cells.append(f"{acc['800']:.3f}" if "800" in acc else "–")
        if any(c != "–" for c in cells):
            rows.append([label, *cells])
    return (
        table(["held-out MLM accuracy after 800 steps", *LANGS], rows)
        + "\n"
        + source(ALPHA_COMMAND, MACHINE, None, ["multilingual.json"])
    )


def _percent(pair: dict) -> str:
    return f"{100 * pair['to_en']:.1f} / {100 * pair['from_en']:.1f}"


def flores(results_dir: Path) -> str:
    files = {"pretrained": "flores_mix_a0.7.json", "random init": "flores_random.json"}
    runs = {k: load(results_dir, f) for k, f in files.items()}
    if any(r is None for r in runs.values()):
        return not_measured(FLORES_COMMAND)
    res = {k: r["tasks"]["flores"]["results"] for k, r in runs.items()}
    langs = runs["pretrained"]["tasks"]["flores"]["languages"]
    columns = [(k, c) for k in files for c in ("none", "whiten")]
    rows = [[lang, *(_percent(res[k][c][lang]) for k, c in columns)] for lang in langs]
    means = [
        statistics.fmean(100 * v for lang in langs for v in res[k][c][lang].values())
        for k, c in columns
    ]
    rows.append(["mean (both directions)", *(f"{m:.1f}" for m in means)])
    header = ["language", *(f"{k}, {'raw' if c == 'none' else 'whitened'}" for k, c in columns)]
    n = runs["pretrained"]["tasks"]["flores"]["sentences"]
    return (
        table(header, rows)
        + f"\n\nTop-1 retrieval % xx→en / en→xx over {n:,} FLORES-200 devtest sentences."
        + source(
            [FLORES_COMMAND, FLORES_COMMAND.replace("flores_mix_a0.7", "flores_random") + " --random-init"],
            MACHINE, None, list(files.values()),
        )
    )  # fmt: skip


def xquad(results_dir: Path) -> str:
    data = load(results_dir, "xquad.json")
    if data is None:
        return not_measured(XQUAD_COMMAND)
    rows = []
    for init, label in (("pretrained", "α = 0.7 mixture"), ("scratch", "scratch")):
        m = data[init]["metrics"]
        em_f1 = lambda r: f"{r['exact_match']:.1f} / {r['f1']:.1f}"  # noqa: E731
        tests = [m["test"][f"xquad.{lang}"] for lang in XQUAD_LANGS]
        others = statistics.fmean(t["f1"] for t in tests[1:])
        rows.append([
            f"{label} (best epoch {m['best_epoch']})", em_f1(m["dev"]), *(em_f1(t) for t in tests),
            f"{others:.1f}",
        ])  # fmt: skip
    header = ["init", "SQuAD dev 20% (EM / F1)", *(f"XQuAD {x}" for x in XQUAD_LANGS),
              "mean F1, 5 non-English"]  # fmt: skip
    return table(header, rows) + "\n" + source(XQUAD_COMMAND, MACHINE, None, ["xquad.json"])


def tables(results_dir: Path) -> dict[str, str]:
    return {
        "multilingual_alpha": alpha(results_dir),
        "flores": flores(results_dir),
        "xquad": xquad(results_dir),
    }
