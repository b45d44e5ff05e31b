"""benchmarks/report.py: the text between table markers is the table module's render."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("report", REPO / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(_spec)
sys.modules["report"] = report  # dataclasses look their module up
_spec.loader.exec_module(report)

PAGE = """# Page
<!-- table:t -->
old text
<!-- /table:t -->
```
<!-- table:not_a_marker -->
```
end
"""


def test_rewrite_replaces_only_the_marked_block_and_is_idempotent():
    """The block takes the render; code fences, other text and a second run are untouched."""
    new = report.rewrite(PAGE, {"t": "| a |\n|---|\n| 1 |\n"}, "page.md")
    assert new == PAGE.replace("old text", "| a |\n|---|\n| 1 |")
    assert report.rewrite(new, {"t": "| a |\n|---|\n| 1 |"}, "page.md") == new


@pytest.mark.parametrize(
    "text, message",
    [
        ("x\n<!-- table:nope -->\n<!-- /table:nope -->\n", "page.md:2: unknown table 'nope'"),
        ("<!-- table:t -->\nno end\n", "page.md:1: table:t is never closed"),
        ("<!-- /table:t -->\n", "page.md:1: /table:t closes no open table:t"),
        ("<!-- table:t -->\n<!-- table:t -->\n", "page.md:2: table:t starts before"),
    ],
)
def test_bad_markers_are_errors_naming_page_and_line(text, message):
    """An unknown name or unbalanced markers stop the report with page:line, no traceback."""
    with pytest.raises(report.ReportError, match=message):
        report.rewrite(text, {"t": "x"}, "page.md")


def test_every_table_module_renders_without_results(tmp_path):
    """With no results files every table renders (as 'Not measured yet'), never crashes."""
    rendered = report.render_all(tmp_path)
    assert rendered and all(isinstance(v, str) and v for v in rendered.values())


def test_check_lists_a_page_that_differs_and_writes_nothing(tmp_path, monkeypatch):
    """--check reports the drifted page and leaves it as it was; a run rewrites it."""
    monkeypatch.setattr(report, "render_all", lambda results_dir: {"t": "new"})
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "p.md"
    page.write_text("<!-- table:t -->\nold\n<!-- /table:t -->\n")
    assert report.run(check=True, root=tmp_path) == [page]
    assert "old" in page.read_text()
    assert report.run(check=False, root=tmp_path) == [page]
    assert report.run(check=True, root=tmp_path) == []


def test_a_page_list_renders_only_those_pages(tmp_path, monkeypatch):
    """`report.py PAGE` rewrites the pages named and leaves the others as they are."""
    monkeypatch.setattr(report, "render_all", lambda results_dir: {"t": "new"})
    (tmp_path / "docs").mkdir()
    mine, other = tmp_path / "docs" / "mine.md", tmp_path / "docs" / "other.md"
    for page in (mine, other):
        page.write_text("<!-- table:t -->\nold\n<!-- /table:t -->\n")
    assert report.run(check=False, root=tmp_path, only=[mine]) == [mine]
    assert "old" in other.read_text() and "new" in mine.read_text()
