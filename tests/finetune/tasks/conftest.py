"""Shared fixtures for the task-data tests: a fake WordPiece-like tokenizer and the data dir.

The real tokenizer (jaxbert.data.tokenizer) is deliberately not imported: these tests pin
the task code to the tokenizer *interface* only.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

# tests/finetune/tasks/ -> parents[3] is the project root; the data sits beside it.
SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


class FakeTokenizer:
    """Lower-cases, splits punctuation, and cuts words into WordPiece-like `##` pieces.

    Digits and letters go to separate pieces and long letter runs are cut every 5 chars,
    so words really do span several sub-tokens. The vocabulary grows on demand.
    """

    SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

    def __init__(self):
        self._tokens = list(self.SPECIALS)
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = range(5)

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def _id(self, token: str) -> int:
        if token not in self._ids:
            self._ids[token] = len(self._tokens)
            self._tokens.append(token)
        return self._ids[token]

    @staticmethod
    def _pieces(word: str) -> list[str]:
        pieces: list[str] = []
        for c in word:
            kind = c.isdigit()
            if pieces and pieces[-1][-1].isdigit() == kind and len(pieces[-1]) < 5:
                pieces[-1] += c
            else:
                pieces.append(c)
        return [p if i == 0 else "##" + p for i, p in enumerate(pieces)]

    def encode(self, text: str) -> list[int]:
        words = "".join(
            f" {c} " if unicodedata.category(c).startswith("P") or c in "$+<=>^`|~" else c
            for c in text.lower()
            if unicodedata.category(c) not in ("Cc", "Cf") or c.isspace()
        ).split()
        return [self._id(p) for w in words for p in self._pieces(w)]

    def decode(self, ids) -> str:
        return " ".join(self._tokens[i] for i in ids).replace(" ##", "")

    def id_to_token(self, i: int) -> str:
        return self._tokens[i]


@pytest.fixture
def tokenizer() -> FakeTokenizer:
    return FakeTokenizer()


@pytest.fixture
def shared_data() -> Path:
    """../shared/data from the project root; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
