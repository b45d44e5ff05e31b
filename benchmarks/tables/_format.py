"""Shared helpers of the table modules: read a results file, write a Markdown table.

Every module in benchmarks/tables/ may import these (`from benchmarks.tables._format
import ...`); `benchmarks/report.py` puts the repository root on sys.path first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path


def load(results_dir: Path, name: str) -> dict | list | None:
    """The parsed `results_dir/name` (name with or without .json), or None if absent."""
    path = results_dir / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def not_measured(command: str) -> str:
    """The one line a table renders as while its results file does not exist."""
    return f"Not measured yet: run `{command}`"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table; cells are str()-ed, `|` escaped."""
    cell = lambda v: str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def source(command: str | Sequence[str], machine: str, date: str | None = None, files=()) -> str:
    """The line under a table: what produced it, where, when, from which files."""
    commands = [command] if isinstance(command, str) else list(command)
    parts = ["Command: " + "; ".join(f"`{c}`" for c in commands), f"Machine: {machine}"]
    if date:
        parts.append(f"Date: {date}")
    if files:
        parts.append("Results: " + ", ".join(f"`benchmarks/results/{f}`" for f in files))
    return "\n" + ". ".join(parts) + "."


def num(value: float | None, digits: int = 1, missing: str = "–") -> str:
    """A float at fixed precision (the same bytes on every run), or `missing`."""
    return missing if value is None else f"{value:.{digits}f}"


def fixed(value: float, digits: int = 2) -> str:
    """`value` at `digits` decimals, never "-0.00" for a value that rounds to zero."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


def thousands(value: float | None, missing: str = "–") -> str:
    return missing if value is None else f"{round(value):,}"
