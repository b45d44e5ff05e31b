"""STS-B zero-shot: does the cosine of two sentence vectors rank pairs as people do?

The GLUE STS-B dev set (1,500 pairs scored 0–5) is embedded without any training; the
score is Spearman's ρ between the pairs' cosines and the human scores, the number
sentence-transformers reports for its models (all-MiniLM-L6-v2: 0.867 with its own mean
pooling). Corrections are fitted on the vectors of the first `FIT_PAIRS` train pairs'
sentences, never on the scored ones.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from jaxbert.errors import UserError

DIR = Path("glue/STS-B")
SPLIT = "dev.tsv"
FIT_SPLIT = "train.tsv"
FIT_PAIRS = 1000
_COLUMNS = ("sentence1", "sentence2", "score")


def read_pairs(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(first sentences, second sentences, scores) of a GLUE STS-B TSV file."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or any(c not in rows[0] for c in _COLUMNS):
        raise UserError(f"{path}:1: expected a header with columns {', '.join(_COLUMNS)}")
    col = {c: rows[0].index(c) for c in _COLUMNS}
    a, b, scores = [], [], []
    for n, row in enumerate(rows[1:], 2):
        try:
            a.append(row[col["sentence1"]])
            b.append(row[col["sentence2"]])
            scores.append(float(row[col["score"]]))
        except (IndexError, ValueError):
            raise UserError(f"{path}:{n}: expected {len(rows[0])} tab-separated fields "
                            "with a numeric score") from None  # fmt: skip
    if not a:
        raise UserError(f"{path}: no sentence pairs")
    return a, b, np.asarray(scores)


def cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    y = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)
    return (x * y).sum(-1)


def evaluate(sentence_vectors, data: Path, corrections) -> dict:
    """`sentence_vectors(texts)` embeds; Spearman ρ per correction."""
    from scipy.stats import spearmanr

    a, b, scores = read_pairs(data / DIR / SPLIT)
    vectors = sentence_vectors(a + b)
    va, vb = vectors[: len(a)], vectors[len(a) :]
    ta, tb, _ = read_pairs(data / DIR / FIT_SPLIT)
    sample = sentence_vectors(ta[:FIT_PAIRS] + tb[:FIT_PAIRS])
    out = {}
    for name, fix in corrections(sample, f"{FIT_PAIRS} STS-B train pairs").items():
        rho = spearmanr(cosines(fix(va), fix(vb)), scores).statistic
        out[name] = {"spearman": float(rho)}
    return {"pairs": len(a), "split": str(DIR / SPLIT), "results": out}
