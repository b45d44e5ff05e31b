"""Shared test helpers: tiny configs and random pretraining batches."""

from __future__ import annotations

import numpy as np

from tests.conftest import micro_model_config  # noqa: F401  (re-exported)


def random_batch(batch=8, seq=16, preds=4, vocab=128, seed=0) -> dict[str, np.ndarray]:
    """A right-padded pretraining batch with some unused prediction slots."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(seq // 2, seq + 1, size=batch)
    input_mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    return {
        "input_ids": (rng.integers(5, vocab, (batch, seq)) * input_mask).astype(np.int32),
        "input_mask": input_mask,
        "segment_ids": (np.arange(seq)[None] >= lengths[:, None] // 2).astype(np.int32)
        * input_mask,
        "masked_positions": rng.integers(1, seq // 2, (batch, preds)).astype(np.int32),
        "masked_ids": rng.integers(5, vocab, (batch, preds)).astype(np.int32),
        "masked_weights": (np.arange(preds)[None] < preds - 1).astype(np.float32).repeat(batch, 0),
        "next_sentence_label": rng.integers(0, 2, batch).astype(np.int32),
    }
