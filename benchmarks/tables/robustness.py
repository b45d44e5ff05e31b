"""A full disk as a new user meets it (benchmarks/faults.py): what each command printed,
what it left, and whether the rerun after freeing space resumed."""

from __future__ import annotations

from pathlib import Path

from benchmarks.tables._format import load, not_measured, source, table

FILE = "faults.json"
COMMAND = "sudo .venv/bin/python benchmarks/faults.py"


def _row(r: dict) -> tuple:
    error = r["error"].split(": error: ", 1)[-1] if r["error"] else "–"
    rerun = "exit 0" if r["rerun_exit"] == 0 else f"exit {r['rerun_exit']}"
    if r.get("rerun_resumed"):
        rerun += ", resumed"
    if r["exit"] == 0:  # it fit: the rerun is refused as a finished run (no overwrite)
        error, rerun = "none: the run fit and finished", "not needed"
    return (f"`{r['scenario']}`", r["tmpfs"], r["exit"], r["lines"], r["tracebacks"],
            f"`{error}`", ", ".join(r["temporary_left"]) or "none", rerun)  # fmt: skip


def tables(results_dir: Path) -> dict[str, str]:
    data = load(results_dir, FILE)
    if data is None:
        return {"faults_disk_full": not_measured(COMMAND)}
    header = ("command", "tmpfs", "exit", "lines printed", "tracebacks", "the error line",
              "temporary files left", "rerun on a freed disk")  # fmt: skip
    text = table(header, [_row(r) for r in data["rows"]])
    return {"faults_disk_full": text + source(data["command"], data["machine"], data["date"],
                                              [FILE])}  # fmt: skip


def headline(results_dir: Path) -> str | None:
    """The front page's row: how a full disk mid-run ends, and whether the rerun resumes."""
    data = load(results_dir, FILE)
    rows = [r for r in (data or {}).get("rows", []) if r["exit"] != 0]
    if not rows:
        return None
    resumed = [r for r in rows if r.get("rerun_resumed")]
    return (
        f"full disk in {len(rows)} runs (pretrain, finetune, tokenizer, prepare): exit 1, "
        f"{max(r['error_lines'] for r in rows)} error line naming the path, "
        f"{max(r['tracebacks'] for r in rows)} tracebacks, at most {max(r['lines'] for r in rows)} "
        f"lines; {len(resumed)} of {len(resumed)} interrupted trainings resumed after space was freed"
    )
