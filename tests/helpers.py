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


def micro_embedder(tmp_path=None, **kwargs):
    """An `Embedder` over a random 4-layer micro encoder and the WordPiece fixture vocab;
    with `tmp_path`, also a params dir (tokenizer beside it) that `--init` can load."""
    import functools

    import jax

    from jaxbert.checkpoint import save_params
    from jaxbert.data.tokenizer import load_tokenizer
    from jaxbert.embed import Embedder, random_bert_params
    from tests.conftest import REPO

    vocab = REPO / "tests" / "fixtures" / "finetune" / "vocab.txt"
    cfg = micro_model_config(vocab_size=472, num_layers=4)
    bert = _micro_bert(functools.partial(random_bert_params, cfg))
    embedder = Embedder(cfg, bert, load_tokenizer(vocab), **kwargs)
    if tmp_path is None:
        return embedder
    import shutil

    ckpt = tmp_path / "ckpt"
    if not ckpt.exists():
        save_params(ckpt, {"bert": jax.tree.map(np.asarray, bert)}, cfg)
        (ckpt / "tokenizer").mkdir()
        shutil.copy(vocab, ckpt / "tokenizer" / "vocab.txt")
    return embedder, ckpt


_MICRO_BERT = {}


def _micro_bert(make):
    """Initialising costs a compilation: one random micro encoder per test session."""
    if "bert" not in _MICRO_BERT:
        _MICRO_BERT["bert"] = make()
    return _MICRO_BERT["bert"]
