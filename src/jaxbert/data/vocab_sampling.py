"""A shared vocabulary over several corpora: smoothed sentence sampling and fertility.

mBERT trains its WordPiece vocabulary on data re-weighted by exponentially smoothed
language shares, so that a small language gets more than its share of the vocabulary:
with corpus i holding c_i characters, p_i = c_i / Σ c_j (characters, not bytes: CJK
takes 3 bytes a character) and q_i = p_i^α / Σ p_j^α, corpus i contributes round(q_i·M)
of the M training sentences — a random subset of its sentences, or all of them and
repeats drawn with replacement when q_i·M exceeds them. Seeded, so a tokenizer rebuild
sees the same sample.

Fertility, reported per corpus after training: pieces per whitespace word (for
space-separated scripts) and per character, and the byte-fallback rate (the share of
pieces that are `<0xNN>` bytes: characters the vocabulary does not cover). numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxbert.data.mixture import smoothed


def smoothed_shares(chars: Sequence[int], alpha: float) -> np.ndarray:
    return smoothed(chars, alpha, "--sampling-alpha", "tokenizer train: a --corpus has no text")


def sample_sentences(corpora: Sequence[Sequence[str]], alpha: float, budget: int,
                     seed: int = 0) -> tuple[list[str], np.ndarray, list[int]]:  # fmt: skip
    """(the shuffled sample, the shares q, sentences taken per corpus)."""
    q = smoothed_shares([sum(len(s) for s in c) for c in corpora], alpha)
    budget = budget or sum(len(c) for c in corpora)
    rng = np.random.default_rng(seed)
    out, taken = [], []
    for sentences, share in zip(corpora, q):
        k = max(1, round(share * budget))
        n = len(sentences)
        if k <= n:
            idx = rng.choice(n, k, replace=False)
        else:  # oversampled: every sentence, then repeats
            idx = np.concatenate([np.arange(n), rng.integers(0, n, k - n)])
        out += [sentences[i] for i in np.sort(idx)]
        taken.append(int(k))
    order = rng.permutation(len(out))
    return [out[i] for i in order], q, taken


def fertility(tokenizer, sentences: Sequence[str]) -> dict:
    """Pieces per word and per character, and the byte-fallback share, on `sentences`."""
    pieces = tokenizer.encode_batch(list(sentences))
    n_pieces = sum(len(p) for p in pieces)
    words = sum(len(s.split()) for s in sentences)
    chars = sum(len(s.replace(" ", "")) for s in sentences)
    byte_ids = {i for i in range(tokenizer.vocab_size) if _is_byte(tokenizer.id_to_token(i))}
    n_bytes = sum(1 for p in pieces for t in p if t in byte_ids)
    return {"sentences": len(sentences), "pieces_per_word": n_pieces / max(words, 1),
            "pieces_per_char": n_pieces / max(chars, 1),
            "byte_fallback_rate": n_bytes / max(n_pieces, 1)}  # fmt: skip


def _is_byte(piece: str) -> bool:
    return len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">")
