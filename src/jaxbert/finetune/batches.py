"""Fine-tuning's host batches and predictions: every process builds the same global
batches from numpy features (seeded epoch order, optional length buckets, the last batch
topped up with weight-0 rows) and feeds its own slice; `predict` runs the eval step over
them and puts the rows back in file order."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import numpy as np

from jaxbert import sharding
from jaxbert.finetune import buckets as buckets_lib
from jaxbert.finetune.data import EvalSplit
from jaxbert.finetune.step import FinetuneSteps


def padded_batches(
    features: dict[str, np.ndarray], order: np.ndarray, batch_size: int, first: int = 0,
    batches: list[np.ndarray] | None = None, buckets: tuple[int, ...] | None = None,
) -> Iterator[dict[str, np.ndarray]]:  # fmt: skip
    """Global batches of `order`'s rows (or of the given `batches` of row indices) from
    batch `first` on, the last one topped up with weight-0 copies; with `buckets`, each
    trimmed to the smallest bucket length that holds its rows.

    Padding repeats real rows (not zeros): an all-padding row would attend over no keys,
    and a NaN there would survive multiplication by weight 0.
    """
    if batches is None:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    seq_len = features["input_ids"].shape[1]
    for idx in batches[first:]:
        real = len(idx)
        if real < batch_size:
            idx = np.concatenate([idx, np.resize(order[:batch_size], batch_size - real)])
        batch = {k: v[idx] for k, v in features.items()}
        batch["weight"] = (np.arange(batch_size) < real).astype(np.float32)
        if buckets:
            length = buckets_lib.trim_length(buckets_lib.row_lengths(batch), buckets)
            batch = buckets_lib.trim(batch, length, seq_len)
        yield batch


def local_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """This process's slice of a global batch (every process builds the same batches)."""
    if jax.process_count() == 1:
        return batch
    n = len(batch["weight"]) // jax.process_count()
    lo = jax.process_index() * n
    return {k: v[lo : lo + n] for k, v in batch.items()}


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def num_rows(features: dict[str, np.ndarray]) -> int:
    return len(features["input_ids"])


# --- evaluation -------------------------------------------------------------------------


def predict(
    steps: FinetuneSteps, params, features, batch_size: int, buckets=None
) -> tuple[dict, float]:
    """Predictions for every row of `features` (padding stripped, file order) and the mean
    loss; with `buckets`, rows go through in length order in trimmed batches."""
    n, seq_len = num_rows(features), features["input_ids"].shape[1]
    order = np.arange(n)
    if buckets:
        order = np.argsort(buckets_lib.row_lengths(features), kind="stable")
    outs, total, count = [], 0.0, 0.0
    for batch in padded_batches(features, order, batch_size, buckets=buckets):
        preds, t, c = steps.eval(params, sharding.global_batch(local_rows(batch), steps.mesh))
        length = batch["input_ids"].shape[1]
        outs.append(buckets_lib.pad_back(jax.device_get(preds), length, seq_len))
        total, count = total + float(t), count + float(c)
    if not outs:
        return {}, 0.0
    merged = {k: np.concatenate([o[k] for o in outs])[:n] for k in outs[0]}
    in_file_order = {}
    for k, v in merged.items():
        in_file_order[k] = np.empty_like(v)
        in_file_order[k][order] = v
    return in_file_order, total / max(count, 1.0)


def evaluate(steps, params, split: EvalSplit, batch_size: int, buckets=None) -> tuple[dict, object]:
    """The split's metrics and its decoded answers (for `split.write`)."""
    preds, loss = predict(steps, params, split.features, batch_size, buckets)
    answers = split.decode(preds)
    metrics = {"loss": loss}
    if split.score is not None:
        metrics.update(split.score(answers))
    return metrics, answers


def fmt(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
