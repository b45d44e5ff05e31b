"""The documentation works as written: links resolve, quoted `jaxbert` commands parse, the
front page stays a front page, and every rendered table matches its results file.

Commands are read from fenced code blocks of README.md, CONTRIBUTING.md and docs/*.md:
a line whose first word (after `VAR=value` prefixes) is `jaxbert` or `.venv/bin/jaxbert`,
joined with its `\\` continuation lines, cut at a comment (` #`) or a shell operator
(`|`, `&&`, `;`, `>`). A line whose sub-command ends in `:` is the CLI's output
(`jaxbert embed: error: …`), not a command. The rule for placeholders: a command containing `…` (elided
arguments) or `[` (optional-argument notation) is skipped; any other word, `$VARS` and
upper-case placeholders included, is passed to the parser as a literal string, which is
all argparse needs to check the command's shape.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

from jaxbert.cli import build_parser
from tests.conftest import REPO

PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
OPERATORS = {"|", "||", "&&", ";", ">", ">>", "2>&1", "&"}


def _rel(page: Path) -> str:
    return str(page.relative_to(REPO))


def fenced_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        if m := FENCE.match(line):
            fence = None if fence == m.group(1) else (fence or m.group(1))
            continue
        if fence:
            out.append((number, line))
    return out


def prose(text: str) -> str:
    """The page without its fenced code blocks (links in code are not links)."""
    code = {n for n, _ in fenced_lines(text)}
    return "\n".join(
        line
        for n, line in enumerate(text.splitlines(), 1)
        if n not in code and not FENCE.match(line)
    )


def commands(text: str) -> list[tuple[int, list[str]]]:
    """(line, argv after `jaxbert`) of every jaxbert command in the page's code blocks."""
    found, lines = [], fenced_lines(text)
    i = 0
    while i < len(lines):
        number, line = lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i][1].strip()
        i += 1
        line = re.split(r"\s#", line, maxsplit=1)[0]
        if "…" in line or "[" in line:
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]
        if not words or words[0] not in ("jaxbert", ".venv/bin/jaxbert"):
            continue
        if len(words) > 1 and words[1].endswith(":"):
            continue  # an error line the CLI printed, quoted as output
        argv = []
        for w in words[1:]:
            if w in OPERATORS or w.startswith(">"):
                break
            argv.append(w)
        found.append((number, argv))
    return found


def parse_error(argv: list[str]) -> str | None:
    """argparse's complaint about argv, as `jaxbert.cli.main` would judge it, or None."""
    parser = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args, rest = parser.parse_known_args(argv)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1] if err.getvalue() else "exit"
    if rest and not getattr(args, "accepts_overrides", False):
        return f"unrecognized arguments: {' '.join(rest)}"
    bad = [r for r in rest if r.startswith("-") and not r.startswith("--config.")]
    return f"not config overrides: {' '.join(bad)}" if bad else None


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page: lower case, punctuation dropped,
    spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    for line in prose(page.read_text(encoding="utf-8")).splitlines():
        if m := re.match(r"^#{1,6}\s+(.*?)\s*#*$", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            yield slug if n == 0 else f"{slug}-{n}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_resolves(page):
    """Each relative link or image in a page names a file or directory of the repository,
    and a `#anchor` into a Markdown page names one of its headings."""
    broken = []
    for m in LINK.finditer(prose(page.read_text(encoding="utf-8"))):
        target, _, anchor = (m.group(1) or m.group(2)).partition("#")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # an absolute URL
        path = (page.parent / target).resolve() if target else page
        if not path.exists() or not path.is_relative_to(REPO):
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in set(anchors(path)):
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{_rel(page)}: broken links {broken}"


def test_every_docs_page_is_linked_from_the_front_page():
    """A page nobody can reach from README.md does not exist for a new user."""
    readme = prose((REPO / "README.md").read_text(encoding="utf-8"))
    linked = {(m.group(1) or m.group(2)).partition("#")[0] for m in LINK.finditer(readme)}
    missing = [_rel(p) for p in (REPO / "docs").glob("*.md") if _rel(p) not in linked]
    assert not missing, f"README.md links none of {sorted(missing)}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_quoted_jaxbert_command_parses(page):
    """Every `jaxbert …` command in a code block is accepted by the real argument parser."""
    bad = []
    for number, argv in commands(page.read_text(encoding="utf-8")):
        if problem := parse_error(argv):
            bad.append(f"{_rel(page)}:{number}: jaxbert {' '.join(argv)}: {problem}")
    assert not bad, "\n".join(bad)


def test_the_command_reader_follows_its_rules():
    """Continuations join, comments and redirections are cut, elisions are skipped."""
    text = "```bash\nX=1 jaxbert params   # counts\n.venv/bin/jaxbert data prepare \\\n  --out d > log\njaxbert plan --config …\njaxbert embed: error: x\n```\n"
    assert commands(text) == [(2, ["params"]), (3, ["data", "prepare", "--out", "d"])]
    assert parse_error(["params"]) is None
    assert parse_error(["no-such-command"])


def test_the_front_page_is_short_and_undated():
    """README.md: at most 200 lines, no year (a dataset name such as CoNLL-2003 is not a
    date), no mention of an issue, no link outside the repository."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert not re.findall(r"(?<![-\w])20\d\d\b", text)
    assert not re.findall(r"\bissues?\b", text, re.IGNORECASE)
    assert "../" not in prose(text), "the front page links outside the repository"


def test_the_committed_pages_match_their_results_files():
    """`benchmarks/report.py --check`: no rendered table differs from its render."""
    spec = importlib.util.spec_from_file_location("report", REPO / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    sys.modules["report"] = report
    spec.loader.exec_module(report)
    stale = report.run(check=True)
    assert not stale, f"run `make report`: {[_rel(p) for p in stale]} differ"


def test_heading_anchors_follow_github(tmp_path):
    """Anchors as GitHub makes them: punctuation dropped, spaces to hyphens, code kept,
    a repeated heading numbered; headings inside code blocks are not headings."""
    page = tmp_path / "p.md"
    page.write_text(
        "# Pretrained vs scratch\n## `make pretrain`: the α run\n```\n# no\n```\n# Pretrained vs scratch\n"
    )
    assert list(anchors(page)) == [
        "pretrained-vs-scratch",
        "make-pretrain-the-α-run",
        "pretrained-vs-scratch-1",
    ]
