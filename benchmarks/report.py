"""Render the results tables of README.md and docs/ from benchmarks/results/*.json.

A number on a page must come from the file it cites, so tables are never typed: every
module `benchmarks/tables/<topic>.py` defines `tables(results_dir) -> {name: markdown}`,
and a page asks for one with two marker lines,

    <!-- table:NAME -->
    (rendered text, rewritten by this script)
    <!-- /table:NAME -->

`make report` rewrites the text between every pair; `--check` only compares and lists
the pages that differ (a test runs it, so a committed page cannot drift from its
results file). Markers inside fenced code blocks are text, not markers. The output is a
pure function of the results files and the modules: same inputs, same bytes.

    .venv/bin/python benchmarks/report.py [--check] [--list] [PAGE ...]
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES_DIR = ROOT / "benchmarks" / "tables"
RESULTS_DIR = ROOT / "benchmarks" / "results"
START = re.compile(r"^<!-- table:([A-Za-z0-9_.-]+) -->$")
END = re.compile(r"^<!-- /table:([A-Za-z0-9_.-]+) -->$")
FENCE = re.compile(r"^\s*(```|~~~)")


class ReportError(Exception):
    """A page or a table module is wrong; the message names the file (and line)."""


@dataclass(frozen=True)
class Block:
    name: str
    start: int  # index of the start marker line
    end: int  # index of the end marker line


def pages(root: Path = ROOT) -> list[Path]:
    """Every page that may hold markers: README.md, CONTRIBUTING.md, benchmarks/README.md
    (the A/B log), docs/**/*.md."""
    names = ("README.md", "CONTRIBUTING.md", "benchmarks/README.md")
    found = [root / name for name in names if (root / name).is_file()]
    found += sorted((root / "docs").rglob("*.md"))
    return found


def table_modules(tables_dir: Path = TABLES_DIR) -> list[str]:
    """Module names under benchmarks/tables/, sorted (files starting with _ are helpers)."""
    return sorted(p.stem for p in tables_dir.glob("*.py") if not p.stem.startswith("_"))


def render_all(results_dir: Path = RESULTS_DIR, tables_dir: Path = TABLES_DIR) -> dict[str, str]:
    """{table name: markdown} over every module; a name defined twice is an error."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    rendered: dict[str, str] = {}
    owner: dict[str, str] = {}
    for stem in table_modules(tables_dir):
        where = f"benchmarks/tables/{stem}.py"
        module = importlib.import_module(f"benchmarks.tables.{stem}")
        if not callable(getattr(module, "tables", None)):
            raise ReportError(f"{where}: defines no tables(results_dir) function")
        try:
            produced = module.tables(results_dir)
        except Exception as e:  # a broken module must name itself, not crash the report
            raise ReportError(f"{where}: tables() failed: {type(e).__name__}: {e}") from e
        for name, text in produced.items():
            if name in owner:
                raise ReportError(f"{where}: table {name!r} is also defined by {owner[name]}")
            if not isinstance(text, str):
                raise ReportError(f"{where}: table {name!r} is not a string")
            owner[name] = where
            rendered[name] = text
    return rendered


def find_blocks(lines: list[str], where: str) -> list[Block]:
    """The marker pairs of one page, outside fenced code; errors name `page:line`."""
    blocks: list[Block] = []
    open_name, open_at, fence = None, -1, None
    for i, line in enumerate(lines):
        stripped = line.strip()
        fenced = FENCE.match(line)
        if fenced and open_name is None:
            mark = fenced.group(1)
            fence = None if fence == mark else (fence or mark)
            continue
        if fence:
            continue
        if start := START.match(stripped):
            if open_name is not None:
                raise ReportError(
                    f"{where}:{i + 1}: table:{start.group(1)} starts before "
                    f"table:{open_name} (line {open_at + 1}) is closed"
                )
            open_name, open_at = start.group(1), i
        elif end := END.match(stripped):
            if end.group(1) != open_name:
                raise ReportError(
                    f"{where}:{i + 1}: /table:{end.group(1)} closes no open table:{end.group(1)}"
                )
            blocks.append(Block(open_name, open_at, i))
            open_name = None
    if open_name is not None:
        raise ReportError(f"{where}:{open_at + 1}: table:{open_name} is never closed")
    return blocks


def rewrite(text: str, rendered: dict[str, str], where: str) -> str:
    """The page with every marked block replaced by its render."""
    lines = text.split("\n")
    blocks = find_blocks(lines, where)
    for block in reversed(blocks):
        if block.name not in rendered:
            known = ", ".join(sorted(rendered)) or "none"
            raise ReportError(
                f"{where}:{block.start + 1}: unknown table {block.name!r} (known: {known})"
            )
        body = rendered[block.name].strip("\n").split("\n")
        lines[block.start + 1 : block.end] = body
    return "\n".join(lines)


def run(
    check: bool, root: Path = ROOT, results_dir: Path = RESULTS_DIR, only: list[Path] = ()
) -> list[Path]:
    """The pages (all, or `only` these) whose text differs from the render (rewritten
    unless `check`)."""
    rendered = render_all(results_dir)
    changed = []
    wanted = {p.resolve() for p in only}
    for page in pages(root):
        if wanted and page.resolve() not in wanted:
            continue
        old = page.read_text(encoding="utf-8")
        new = rewrite(old, rendered, str(page.relative_to(root)))
        if new == old:
            continue
        changed.append(page)
        if not check:
            tmp = page.with_name(f".{page.name}.report-tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, page)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the pages that differ")
    parser.add_argument("--list", action="store_true", help="print every table name and exit")
    parser.add_argument("pages", nargs="*", type=Path, help="only these pages (default: all)")
    args = parser.parse_args(argv)
    try:
        if args.list:
            print("\n".join(sorted(render_all())))
            return 0
        missing = [p for p in args.pages if p.resolve() not in {q.resolve() for q in pages()}]
        if missing:
            raise ReportError(
                f"{missing[0]}: not a page report.py renders (README.md, benchmarks/README.md, docs/)"
            )
        changed = run(args.check, only=args.pages)
    except ReportError as e:
        print(f"report.py: error: {e}", file=sys.stderr)
        return 2
    for page in changed:
        verb = "differs from its results files" if args.check else "rewritten"
        print(f"{page.relative_to(ROOT)}: {verb}")
    if args.check and changed:
        print("report.py: run `make report` and commit the pages", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
