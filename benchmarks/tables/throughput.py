"""Training-step speed against the peers: benchmarks/train_throughput.py's results files."""

from __future__ import annotations

from pathlib import Path

from benchmarks.tables._format import load, not_measured, source, table, thousands

HF_FILES = ("train_throughput.json", "train_throughput_base.json")
KERAS_FILES = ("train_throughput_keras_quiet.json", "train_throughput_keras_quiet_smb.json")
HF_COMMAND = "make bench"
KERAS_COMMAND = (
    ".venv-bench/bin/python benchmarks/train_throughput.py --sizes tiny,mini,small,medium,base "
    "--rounds 3 --steps 5 --no-nodrop --out benchmarks/results/train_throughput_keras_quiet.json"
)


def _sizes(results_dir: Path, files) -> tuple[list[dict], list[dict]]:
    """(every size's result, every file's meta), in file order; absent files skipped."""
    sizes, metas = [], []
    for name in files:
        data = load(results_dir, name)
        if data is not None:
            metas.append(data["meta"])
            sizes += data["results"]
    return sizes, metas


def _row(size: dict, variant: str) -> dict | None:
    return next((r for r in size["rows"] if r["variant"] == variant), None)


def _machine(metas: list[dict]) -> str:
    load_avgs = [m[k][0] for m in metas for k in ("loadavg_start", "loadavg_end")]
    cores = metas[0]["machine"]
    return f"{cores}, CPU, fp32, load average {min(load_avgs):.1f}–{max(load_avgs):.1f}"


def _source(metas: list[dict], files) -> str:
    commands = [m["command"] for m in metas]
    dates = sorted({m["date"][:10] for m in metas})
    return source(commands, _machine(metas), ", ".join(dates), [f for f in files])


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def hf_table(results_dir: Path) -> str:
    sizes, metas = _sizes(results_dir, HF_FILES)
    if not sizes:
        return not_measured(HF_COMMAND)
    rows = []
    for s in sizes:
        jb, hf = _row(s, "jaxbert"), _row(s, "hf-flax")
        ratio = s.get("ratio_vs_hf", {}).get("jaxbert")
        rows.append([
            f"{s['size']} ({s['batch']})", f"{jb['step_ms']:,.0f}", thousands(jb["tokens_per_s"]),
            f"{hf['step_ms']:,.0f}", thousands(hf["tokens_per_s"]), f"**{ratio:.2f}×**",
            f"{_pct(jb['mfu_standard'])} / {_pct(jb['mfu_computed'])}",
        ])  # fmt: skip
    header = ["size (batch)", "jaxbert step (ms)", "jaxbert tok/s", "HF Flax step (ms)",
              "HF Flax tok/s", "jaxbert / HF Flax", "jaxbert MFU (std / computed)"]  # fmt: skip
    return table(header, rows) + "\n" + _source(metas, HF_FILES)


def keras_table(results_dir: Path) -> str:
    sizes, metas = _sizes(results_dir, KERAS_FILES)
    if not sizes:
        return not_measured(KERAS_COMMAND)
    rows = []
    for s in sizes:
        mlm, jb, kh = _row(s, "jaxbert-mlm"), _row(s, "jaxbert"), _row(s, "keras-hub")
        vs_keras = s["ratio_vs_keras_hub"]
        vs_hf = (s.get("ratio_vs_hf") or {}).get("jaxbert")
        rows.append([
            f"{s['size']} ({s['batch']})", thousands(mlm["tokens_per_s"]),
            thousands(kh["tokens_per_s"]), f"**{vs_keras['jaxbert-mlm']:.2f}×**",
            f"{vs_keras['jaxbert']:.2f}×",
            f"{100 * mlm['mfu_computed']:.1f}% / {100 * kh['mfu_computed']:.1f}%",
            "–" if vs_hf is None else f"{vs_hf:.2f}×", thousands(jb["tokens_per_s"]),
        ])  # fmt: skip
    header = ["size (batch)", "jaxbert-mlm tok/s", "keras-hub tok/s", "jaxbert-mlm / keras-hub",
              "jaxbert (MLM+NSP) / keras-hub", "MFU computed, jaxbert-mlm / keras-hub",
              "jaxbert / HF Flax", "jaxbert (MLM+NSP) tok/s"]  # fmt: skip
    return table(header, rows) + "\n" + _source(metas, KERAS_FILES)


AB_FILES = {
    "ab_xent.json": "one custom-VJP cross-entropy (after) vs the previous loss (before)",
    "ab_unroll.json": "nn.scan fully unrolled (after) vs rolled (before)",
    "ab_no_scan.json": "python-unrolled layers (after) vs nn.scan (before)",
    "ab_remat_none.json": "remat none (after) vs remat dots (before)",
}
AB_COMMAND = (
    ".venv/bin/python benchmarks/ab_step.py --ab NAME --sizes tiny,mini --rounds 5 --steps 4"
)


def ab_table(results_dir: Path) -> str:
    """Every interleaved A/B of a step change: speed ratio and the loss check."""
    rows, files = [], []
    for file, label in AB_FILES.items():
        for r in load(results_dir, file) or []:
            rows.append([
                label, f"{r['size']} ({r['batch']})", f"{r['step_ms']['before']:,.0f}",
                f"{r['step_ms']['after']:,.0f}", f"**{r['speedup']:.2f}×**",
                f"{abs(r['loss']['after'] - r['loss']['before']):.1e}",
                f"{r['loadavg'][0]:.1f}",
            ])  # fmt: skip
            files += [] if file in files else [file]
    if not rows:
        return not_measured(AB_COMMAND)
    header = ["change", "size (batch)", "before ms", "after ms", "speed-up (median of rounds)",
              "|Δ loss|", "load"]  # fmt: skip
    return (
        table(header, rows) + "\n" + source(AB_COMMAND, "AMD EPYC, 2 CPUs, CPU, fp32", None, files)
    )


def headline(results_dir: Path) -> str | None:
    """The front page's speed cell: jaxbert-mlm / keras-hub over the sizes measured."""
    sizes, _ = _sizes(results_dir, KERAS_FILES)
    if not sizes:
        return None
    ratios = [s["ratio_vs_keras_hub"]["jaxbert-mlm"] for s in sizes]
    names = "/".join(s["size"] for s in sizes)
    return f"{min(ratios):.2f}–{max(ratios):.2f}× keras-hub's training step ({names}, CPU fp32)"


def tables(results_dir: Path) -> dict[str, str]:
    return {
        "throughput_hf": hf_table(results_dir),
        "throughput_keras": keras_table(results_dir),
        "ab_step": ab_table(results_dir),
    }
