"""`jaxbert embed stats`: how anisotropic a checkpoint's vectors are, layer by layer.

Ethayarajh (2019) measures two things on word instances from a corpus: the mean cosine
between instances of *different* random words (the baseline: near 0 for isotropic
vectors, high for BERT's upper layers), and the self-similarity of a word, the mean
cosine between its own instances in different contexts. Self-similarity minus the
baseline says how much of a word's similarity to itself is its identity rather than the
shared cone. Both are reported raw and after mean-centering, which removes most of the
baseline. numpy only.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def random_pair_cosine(vectors: np.ndarray, words: list[str], pairs: int, seed: int) -> float:
    """Mean cosine of `pairs` random instance pairs whose words differ."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(words), (2, pairs * 2))
    keep = np.array([words[i] != words[j] for i, j in zip(a, b)])
    a, b = a[keep][:pairs], b[keep][:pairs]
    v = unit(vectors)
    return float((v[a] * v[b]).sum(-1).mean()) if len(a) else float("nan")


def self_similarity(vectors: np.ndarray, words: list[str], max_instances: int = 20) -> float:
    """Mean over words with ≥ 2 instances of the mean pairwise cosine of their instances."""
    by_word = defaultdict(list)
    for i, w in enumerate(words):
        if len(by_word[w]) < max_instances:
            by_word[w].append(i)
    v, sims = unit(vectors), []
    for idx in by_word.values():
        if len(idx) >= 2:
            m = v[idx] @ v[idx].T
            n = len(idx)
            sims.append((m.sum() - n) / (n * (n - 1)))
    return float(np.mean(sims)) if sims else float("nan")


def layer_stats(stacked: np.ndarray, words: list[str], pairs: int = 5000, seed: int = 0):
    """Per layer of `stacked` [N, L+1, D]: baseline, self-similarity, their difference,
    raw and mean-centred."""
    rows = []
    for layer in range(stacked.shape[1]):
        row = {"layer": layer}
        for name, x in (("raw", stacked[:, layer]), ("centered", None)):
            if x is None:
                x = stacked[:, layer] - stacked[:, layer].mean(0)
            base = random_pair_cosine(x, words, pairs, seed)
            selfsim = self_similarity(x, words)
            row[name] = {"random_cosine": base, "self_similarity": selfsim,
                         "self_minus_random": selfsim - base}  # fmt: skip
        rows.append(row)
    return rows


def format_stats(rows) -> str:
    lines = ["layer | random-pair cosine | self-similarity | self − random   (raw → centered)"]
    for r in rows:
        raw, cen = r["raw"], r["centered"]
        lines.append(
            f"{r['layer']:>5} | {raw['random_cosine']:6.3f} → {cen['random_cosine']:6.3f}"
            f" | {raw['self_similarity']:6.3f} → {cen['self_similarity']:6.3f}"
            f" | {raw['self_minus_random']:6.3f} → {cen['self_minus_random']:6.3f}"
        )
    return "\n".join(lines)
