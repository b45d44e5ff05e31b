"""TPU tables of docs/tpu.md, from benchmarks/tpu_plan.py's results file: the HBM limit per
generation, every recipe's compiler-measured memory, plan vs compiler, and the FLOPs check."""

from __future__ import annotations

from pathlib import Path

from benchmarks.tables._format import load, not_measured, source, table

FILES = ("tpu_plan.json", "tpu_plan_b.json")  # the second: a parallel worker's rows
COMMAND = ".venv/bin/python benchmarks/tpu_plan.py"
GIB = 1024**3


def _gib(n: float | None) -> str:
    return "–" if n is None else f"{n / GIB:.2f}"


def _source(data: dict) -> str:
    machine = f"CPU host, TPU compiler of libtpu {data['libtpu']} (compile only, no TPU)"
    return source(data["command"], machine, data["date"], data["files"])


def _recipe(r: dict) -> str:
    return r["config"].rpartition("/")[2]


def _knobs(r: dict) -> str:
    ga = f", grad_accum {r['grad_accum']}" if r["grad_accum"] > 1 else ""
    return f"batch {r['batch']}{ga} ({r['micro_batch_per_device']}/device)"


def _peak(r: dict) -> str:
    if "peak_bytes" in r:
        return f"{_gib(r['peak_bytes'])} of {_gib(r['hbm_bytes'])}"
    return f"does not compile: needs {_gib(r.get('required_bytes'))} of {_gib(r['hbm_bytes'])}"


def hbm(data: dict) -> str:
    rows = [
        (gen, _gib(v.get("available_bytes")), v["message"].split(":")[0])
        for gen, v in data["hbm"].items()
    ]
    return table(("generation", "HBM per chip the compiler allows (GiB)", "read from"), rows)


def recipes(data: dict) -> str:
    rows = [
        (_recipe(r), r["target"], r["mesh"], _knobs(r), _peak(r), _gib(r.get("argument_bytes")),
         _gib(r.get("temp_bytes")), f"{r['seconds']:.0f}")
        for r in data["rows"].values() if r["kind"] == "recipe"
    ]  # fmt: skip
    header = ("recipe", "slice", "mesh (data,fsdp,tensor)", "batch", "peak / HBM (GiB/device)",
              "arguments", "temporaries", "compile s")  # fmt: skip
    return table(header, rows) + _source(data)


def compare(data: dict) -> str:
    rows = []
    for name, r in data["rows"].items():
        if r["kind"] not in ("compare", "recipe") or "peak_bytes" not in r:
            continue
        ratio = r["plan_bytes"] / r["peak_bytes"]
        colls = r.get("collectives", {})
        gathered = colls.get("all-gather", {}).get("bytes", 0.0)
        rows.append(
            (name, r["target"], r["mesh"], r["micro_batch_per_device"], _gib(r["peak_bytes"]),
             _gib(r["plan_bytes"]), f"{ratio:.2f}", _gib(gathered))
        )  # fmt: skip
    header = ("row", "slice", "mesh", "batch/device", "compiler peak (GiB)", "plan (GiB)",
              "plan / compiler", "all-gathered per step (GiB)")  # fmt: skip
    return table(header, rows) + _source(data)


def flops(data: dict) -> str:
    rows = []
    for name, r in data["rows"].items():
        if r["kind"] != "flops" or "flops_per_device" not in r:
            continue
        total = r["flops_per_device"] * r["devices"]
        rows.append(
            (name, r["target"], f"{total:.4e}", f"{r['model_flops']:.4e}",
             f"{total / r['model_flops']:.3f}")
        )  # fmt: skip
    header = ("row", "slice", "cost_analysis × devices", "train/flops.py", "ratio")
    return table(header, rows) + _source(data)


def merged(results_dir: Path) -> dict | None:
    """The results files' rows in ROWS order of appearance (first file first)."""
    parts = [(f, d) for f in FILES if (d := load(results_dir, f)) is not None]
    if not parts:
        return None
    data = dict(parts[0][1], rows={}, files=[f for f, _ in parts])
    for _, d in parts:
        data["rows"].update(d["rows"])
    return data


def tables(results_dir: Path) -> dict[str, str]:
    data = merged(results_dir)
    names = ("tpu_hbm", "tpu_recipes", "tpu_plan_vs_compiler", "tpu_flops")
    if data is None:
        return {n: not_measured(COMMAND) for n in names}
    return dict(zip(names, (hbm(data), recipes(data), compare(data), flops(data))))
