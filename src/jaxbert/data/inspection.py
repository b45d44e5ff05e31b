"""`jaxbert data inspect`: dump pipeline examples as JSON lines and summarise their statistics.

Each line holds tokens (strings of the masked input), input_ids, original_ids (before
masking), segment_ids, input_mask, masked_positions, masked_ids, masked_weights,
next_sentence_label (0 = IsNext, 1 = random), doc_a/doc_b (document indices) and
sent_a/sent_b (document-local sentence ranges [start, end)). The summary checks the rules
a user would want to verify: ~15% of non-special tokens selected, the 80/10/10 split,
unigram-shaped random replacements, 50/50 NSP, IsNext pairs truly adjacent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxbert.data import mixture
from jaxbert.data.pipeline import default_data_config, make_pretrain_iterator
from jaxbert.data.store import PreparedCorpus
from jaxbert.data.tokenizer import Tokenizer, load_tokenizer

_SEQUENCE_FIELDS = ("input_ids", "original_ids", "segment_ids", "input_mask")
_PREDICTION_FIELDS = ("masked_positions", "masked_ids", "masked_weights")


def collect(prepared_dir: str, n: int, *, seed: int = 0, split: str = "train", **overrides):
    """The first `n` examples of the pipeline (debug fields included), as one batch dict."""
    cfg = default_data_config()
    cfg.prepared_dir = str(prepared_dir)
    cfg.update(overrides)
    batch_size = max(1, min(n, 256))
    it = make_pretrain_iterator(cfg, batch_size=batch_size, seed=seed, split=split, debug=True)
    batches = [next(it) for _ in range(-(-n // batch_size))]
    it.close()
    return {k: np.concatenate([b[k] for b in batches])[:n] for k in batches[0]}


def records(batch: dict[str, np.ndarray], tok: Tokenizer) -> list[dict[str, Any]]:
    """One JSON-ready dict per example."""
    out = []
    for i in range(len(batch["input_ids"])):
        rec: dict[str, Any] = {"tokens": [tok.id_to_token(t) for t in batch["input_ids"][i]]}
        for key in _SEQUENCE_FIELDS + _PREDICTION_FIELDS:
            rec[key] = batch[key][i].tolist()
        rec["next_sentence_label"] = int(batch["next_sentence_label"][i])
        for key in ("doc_a", "doc_b", "window"):  # pairs have doc_b, packed windows window
            if key in batch:
                rec[key] = int(batch[key][i])
        for key in ("sent_a", "sent_b"):
            if key in batch:
                rec[key] = batch[key][i].tolist()
        out.append(rec)
    return out


def summarize(batch: dict[str, np.ndarray], tok: Tokenizer, unigram_counts: np.ndarray) -> dict:
    """Masking and NSP statistics over the examples of `batch`."""
    weights = batch["masked_weights"].astype(bool)
    original = batch["original_ids"]
    real = batch["input_mask"].astype(bool) & ~tok.special_table[original]
    pos = batch["masked_positions"]
    now = np.take_along_axis(batch["input_ids"], pos, axis=1)[weights]
    was = np.take_along_axis(original, pos, axis=1)[weights]
    is_mask, kept = now == tok.mask_id, now == was
    replaced = now[~is_mask & ~kept]
    freq = np.where(tok.special_table, 0, unigram_counts).astype(np.float64)
    top100 = np.argsort(-freq)[:100]
    n_selected = max(int(weights.sum()), 1)
    stats = {
        "examples": int(len(original)),
        "selected_fraction_of_non_special": float(weights.sum() / max(real.sum(), 1)),
        "mask_fraction": float(is_mask.sum() / n_selected),
        "random_fraction": float(len(replaced) / n_selected),
        "kept_fraction": float(kept.sum() / n_selected),
        "special_tokens_selected": int(tok.special_table[was].sum()),
        "special_tokens_substituted": int(tok.special_table[replaced].sum()),
        "random_replacements_in_top100_tokens": float(np.isin(replaced, top100).mean())
        if len(replaced)
        else 0.0,
        "unigram_mass_of_top100_tokens": float(freq[top100].sum() / max(freq.sum(), 1)),
        "uniform_mass_of_top100_tokens": float(100 / max((~tok.special_table).sum(), 1)),
        "mean_real_tokens": float(batch["input_mask"].sum(axis=1).mean()),
        "real_token_share": float(batch["input_mask"].mean()),
    }
    return stats | _pair_stats(batch)


def _pair_stats(batch: dict[str, np.ndarray]) -> dict:
    """NSP statistics, for sentence pairs only (packed windows have no pairs)."""
    if "sent_a" not in batch:
        return {}
    is_next = batch["next_sentence_label"] == 0
    adjacent = (batch["doc_a"] == batch["doc_b"]) & (batch["sent_a"][:, 1] == batch["sent_b"][:, 0])
    return {
        "random_next_fraction": float(1 - is_next.mean()),
        "is_next_adjacent_fraction": float(adjacent[is_next].mean()) if is_next.any() else 1.0,
    }


def inspect_prepared(
    prepared_dir: str, n: int, out: str | Path, *, seed: int = 0, split: str = "train", **overrides
) -> dict:
    """Writes `n` examples to `out` (JSON lines); returns the summary statistics."""
    batch = collect(prepared_dir, n, seed=seed, split=split, **overrides)
    corpora = overrides.get("corpora", "")
    corpus = PreparedCorpus(prepared_dir or mixture.parse_corpora(corpora)[0].directory)
    tok = load_tokenizer(corpus.tokenizer_path)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        for rec in records(batch, tok):
            f.write(json.dumps(rec) + "\n")
    stats = summarize(batch, tok, corpus.unigram_counts)
    if corpora:
        stats["corpora"] = corpus_shares(batch, corpora, overrides.get("sampling_alpha", 1.0))
    return stats


def corpus_shares(batch: dict[str, np.ndarray], corpora: str, alpha: float) -> dict:
    """Per corpus of a mixture: its token count, target share q and the realized shares of
    examples and of real tokens in `batch`."""
    specs = mixture.parse_corpora(corpora)
    tokens, q = mixture.corpus_shares(specs, alpha)
    ids, real = batch["corpus_id"], batch["input_mask"].sum(axis=1)
    out = {}
    for k, spec in enumerate(specs):
        out[spec.name] = {
            "tokens": tokens[k], "target_share": float(q[k]),
            "example_share": float((ids == k).mean()),
            "token_share": float(real[ids == k].sum() / max(real.sum(), 1)),
        }  # fmt: skip
    return out
