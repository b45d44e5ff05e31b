"""WiC: is the target word used in the same sense in two sentences?

The feature is the cosine of the target's two instance vectors; a threshold chosen on
train (the midpoint between the two cosines that maximise train accuracy) labels dev and
test. Chance is 50%. The data is CC BY-NC 4.0: it is read from `../shared/data`, never
copied. Format: `SPLIT/SPLIT.data.txt` = `target<TAB>POS<TAB>i-j<TAB>sent1<TAB>sent2`
(tokenized; i, j are whitespace-token indices), `SPLIT/SPLIT.gold.txt` = T/F per line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxbert.errors import UserError

SPLITS = ("train", "dev", "test")


@dataclasses.dataclass
class WicSplit:
    words: list[list[str]]  # 2 sentences per pair, flattened: pair k → rows 2k, 2k+1
    targets: list[list[int]]
    labels: np.ndarray  # bool [pairs]


def read_split(root: Path, split: str) -> WicSplit:
    data, gold = root / split / f"{split}.data.txt", root / split / f"{split}.gold.txt"
    for p in (data, gold):
        if not p.is_file():
            raise UserError(f"WiC: {p} not found (expected WiC_dataset/{split}/)")
    words, targets = [], []
    lines = data.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != 5:
            raise UserError(f"{data}:{n}: expected 5 tab-separated fields, got {len(fields)}")
        idx = fields[2].split("-")
        if len(idx) != 2 or not all(i.isdigit() for i in idx):
            raise UserError(f"{data}:{n}: the index field must be I-J, got {fields[2]!r}")
        for sentence, i in zip(fields[3:], map(int, idx)):
            toks = sentence.split(" ")
            if i >= len(toks):
                raise UserError(f"{data}:{n}: index {i} is past the sentence's {len(toks)} words")
            words.append(toks)
            targets.append([i])
    labels = gold.read_text(encoding="utf-8").split()
    if len(labels) != len(lines):
        raise UserError(f"{gold}: {len(labels)} labels for {len(lines)} pairs in {data}")
    for n, label in enumerate(labels, 1):
        if label not in ("T", "F"):
            raise UserError(f"{gold}:{n}: a label must be T or F, got {label!r}")
    return WicSplit(words, targets, np.array([x == "T" for x in labels]))


def pair_cosines(vectors: np.ndarray) -> np.ndarray:
    """Rows 2k and 2k+1 are pair k's two instances."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return (v[0::2] * v[1::2]).sum(-1)


def best_threshold(cosines: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (label T when cosine ≥ it) with the highest accuracy on these pairs:
    candidates are the midpoints between consecutive sorted cosines, and both ends."""
    c = np.sort(cosines)
    candidates = np.concatenate([[c[0] - 1e-6], (c[1:] + c[:-1]) / 2, [c[-1] + 1e-6]])
    acc = [accuracy(cosines, labels, t) for t in candidates]
    return float(candidates[int(np.argmax(acc))])


def accuracy(cosines: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(((cosines >= threshold) == labels).mean())


def evaluate(vectors_of, root: Path, corrections, write_answers=None) -> dict:
    """`vectors_of(words, targets)` embeds; `corrections(train_vectors)` gives a dict of
    name → fitted map. Per correction: threshold and train/dev/test accuracy; with
    `write_answers(relative_path, lines)`, each split's answers as WiC's own T/F lines
    (`CORRECTION/SPLIT.txt`), so anyone can re-score them."""
    splits = {s: read_split(root, s) for s in SPLITS if (root / s).is_dir()}
    if "train" not in splits:
        raise UserError(f"WiC: {root}/train not found: the threshold is chosen on train")
    vectors = {s: vectors_of(d.words, d.targets) for s, d in splits.items()}
    out = {}
    for name, fix in corrections(vectors["train"]).items():
        cos = {s: pair_cosines(fix(v)) for s, v in vectors.items()}
        t = best_threshold(cos["train"], splits["train"].labels)
        out[name] = {"threshold": t, **{f"{s}_accuracy": accuracy(cos[s], d.labels, t)
                                        for s, d in splits.items()}}  # fmt: skip
        for s in splits if write_answers else ():
            write_answers(f"{name}/{s}.txt", ["T" if c >= t else "F" for c in cos[s]])
    return {"pairs": {s: len(d.labels) for s, d in splits.items()}, "results": out}
