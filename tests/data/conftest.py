"""Shared fixtures for the data tests: a tiny tokenizer and prepared corpus, built once."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
WIKI_TINY = FIXTURES / "wiki_tiny.txt"
SHARED_DATA = Path(__file__).parents[2] / "../shared/data"
