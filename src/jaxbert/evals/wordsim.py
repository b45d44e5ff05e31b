"""Word similarity: Spearman ρ between cosines of static word vectors and human scores.

Two kinds of static vector per word (Bommasani et al. 2020 compare the same ones):
`context` averages the word's contextual instances in a corpus sample (up to
`per_word` sentences that contain it, lower-cased match); a word the sample lacks is
embedded alone (`[CLS] word [SEP]`), and the share of words that had contexts is
reported. `table` averages the input embedding rows of the word's pieces. Every pair is
scored (no OOV dropping: sub-word pieces cover every word), so ρ is over all pairs.
Files: `word1<TAB>word2<TAB>score`, CRLF or LF.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from jaxbert.errors import UserError

DIR = Path("wordsim")


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    if not path.is_file():
        raise UserError(f"wordsim: {path} not found")
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            if len(fields) != 3:
                raise ValueError
            pairs.append((fields[0].strip(), fields[1].strip(), float(fields[2])))
        except ValueError:
            raise UserError(
                f"{path}:{n}: expected 'word1<TAB>word2<TAB>score', got {line!r}"
            ) from None
    if len(pairs) < 3:
        raise UserError(f"{path}: {len(pairs)} pairs; a rank correlation needs at least 3")
    return pairs


def find_contexts(sentences, vocab: set[str], per_word: int):
    """(sentence words, target indices) for up to `per_word` instances of each word."""
    seen: dict[str, int] = defaultdict(int)
    words_out, targets_out, owners = [], [], []
    for words in sentences:
        hits = []
        for i, w in enumerate(words):
            lw = w.lower()
            if lw in vocab and seen[lw] < per_word:
                seen[lw] += 1
                hits.append(i)
                owners.append(lw)
        if hits:
            words_out.append(words)
            targets_out.append(hits)
    return words_out, targets_out, owners


def spearman(pairs, vectors: dict[str, np.ndarray]) -> float:
    def cos(a, b):
        return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))

    sims = [cos(vectors[a.lower()], vectors[b.lower()]) for a, b, _ in pairs]
    return float(spearmanr(sims, [s for *_, s in pairs]).statistic)


def context_vectors(embedder, sentences, vocab: list[str], per_word: int):
    """word → mean of its instances (alone if the sample lacks it), the instance sample,
    and the words that had contexts."""
    words, targets, owners = find_contexts(sentences, set(vocab), per_word)
    inst = embedder.word_vectors(words, targets) if owners else np.zeros((0, embedder.dim))
    sums: dict[str, list] = defaultdict(list)
    for w, v in zip(owners, inst):
        sums[w].append(v)
    missing = [w for w in vocab if w not in sums]
    alone = embedder.word_vectors([[w] for w in missing], [[0]] * len(missing)) if missing else []
    vectors = {w: np.mean(v, 0) for w, v in sums.items()}
    vectors.update(zip(missing, alone))
    return vectors, inst, len(sums)


def table_vectors(embedder, vocab: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """word → mean input-embedding row of its pieces, and the whole table."""
    table = np.asarray(embedder.params["embeddings"]["word_embeddings"]["embedding"], np.float32)
    pieces = embedder.tokenizer.encode_batch(vocab)
    return {
        w: table[p or [embedder.tokenizer.unk_id]].mean(0) for w, p in zip(vocab, pieces)
    }, table


def evaluate(embedder, data: Path, sentences, corrections, per_word: int = 8) -> dict:
    files = sorted((data / DIR).glob("*.txt"))
    files = [f for f in files if not f.name.startswith("LICENSE")]
    if not files:
        raise UserError(f"wordsim: no word-similarity files (*.txt) in {data / DIR}")
    sets = {f.stem: read_pairs(f) for f in files}
    vocab = sorted({w.lower() for pairs in sets.values() for a, b, _ in pairs for w in (a, b)})
    ctx, inst, covered = context_vectors(embedder, sentences, vocab, per_word)
    tab, table = table_vectors(embedder, vocab)
    results = {}
    for kind, vecs, sample in (("context", ctx, inst), ("table", tab, table)):
        if len(sample) <= sample.shape[-1]:  # a tiny sample: corrections from the vectors
            sample = np.stack(list(vecs.values()))
        for name, fix in corrections(sample).items():
            fixed = dict(zip(vecs, fix(np.stack(list(vecs.values())))))
            results.setdefault(kind, {})[name] = {s: spearman(p, fixed) for s, p in sets.items()}
    return {"pairs": {s: len(p) for s, p in sets.items()}, "words": len(vocab),
            "words_with_context": covered, "instances": len(inst), "results": results}  # fmt: skip
