"""Random batches with the exact shapes and dtypes of the real pipeline.

For throughput benchmarks and loop tests that should not depend on a prepared corpus.
Deterministic in (seed, batch index) and checkpointable like the real iterator.
"""

from __future__ import annotations

import numpy as np


class SyntheticIterator:
    def __init__(
        self,
        *,
        batch_size: int,
        seq_len: int,
        max_predictions: int,
        vocab_size: int,
        seed: int = 0,
        process_index: int = 0,
        process_count: int = 1,
    ):
        self.batch_size, self.seq_len, self.max_predictions = batch_size, seq_len, max_predictions
        self.vocab_size, self.seed, self.process_index = vocab_size, seed, process_index
        self.process_count = process_count
        self.index = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        # The *global* batch is drawn from (seed, index) and each process keeps its rows, so
        # the data a step sees does not depend on how many processes share it.
        rng = np.random.default_rng((self.seed, self.index))
        self.index += 1
        local, s, p = self.batch_size, self.seq_len, self.max_predictions
        b = local * self.process_count
        lengths = rng.integers(s // 2, s + 1, size=b)
        input_mask = (np.arange(s)[None, :] < lengths[:, None]).astype(np.int32)
        input_ids = rng.integers(5, self.vocab_size, size=(b, s)).astype(np.int32) * input_mask
        segment_ids = (np.arange(s)[None, :] >= (lengths[:, None] // 2)).astype(
            np.int32
        ) * input_mask
        positions = np.sort(rng.integers(1, s // 2, size=(b, p)), axis=1).astype(np.int32)
        batch = {
            "input_ids": input_ids,
            "input_mask": input_mask,
            "segment_ids": segment_ids,
            "masked_positions": positions,
            "masked_ids": np.take_along_axis(input_ids, positions, axis=1),
            "masked_weights": np.ones((b, p), np.float32),
            "next_sentence_label": rng.integers(0, 2, size=b).astype(np.int32),
        }
        rows = slice(self.process_index * local, (self.process_index + 1) * local)
        return {k: v[rows] for k, v in batch.items()}

    def get_state(self) -> dict:
        return {"index": self.index}

    def set_state(self, state: dict) -> None:
        self.index = int(state["index"])
