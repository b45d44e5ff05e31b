"""Contextual embeddings: word instances and sentences from any layer of a checkpoint.

`jaxbert embed` (vectors and a cosine table), `jaxbert embed stats` (anisotropy per
layer, corrections) and `jaxbert eval-embeddings` (WiC, WSD, word similarity: see
`jaxbert.evals`) all build an `Embedder` with `load_embedder`. Modules:

- `states`: per-layer hidden states and layer selection (the BERT paper's feature choices);
- `encoding`: words → model rows with each word's token span, length-bucketed batches;
- `embedder`: `Embedder`, word/sentence pooling;
- `sentence_config`: a sentence-transformers model's own recipe (pooling, layer, length);
- `corrections`: mean-centering, whitening, all-but-the-top;
- `anisotropy`: per-layer random-pair cosine and self-similarity;
- `files`: reading texts, writing vectors atomically.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxbert.embed.embedder import SENTENCE_POOLS, WORD_POOLS, Embedder
from jaxbert.embed.encoding import encode_words, split_words
from jaxbert.embed.files import output_path, read_texts, save_vectors
from jaxbert.embed.sentence_config import EmbeddingDefaults, read_defaults
from jaxbert.embed.states import COMBINES, hidden_states, parse_layer, select_layers

__all__ = [
    "COMBINES", "SENTENCE_POOLS", "WORD_POOLS", "Embedder", "EmbeddingDefaults", "cosine_matrix",
    "encode_words", "read_defaults",
    "format_table", "hidden_states", "load_embedder", "output_path", "parse_layer",
    "random_bert_params", "read_texts", "save_vectors", "select_layers", "split_words",
]  # fmt: skip

DEMO_WORD = "bank"
DEMO_SENTENCES = (
    "He sat on the bank of the river.",
    "She deposited cash at the bank.",
    "The river bank was muddy.",
    "The bank approved the loan.",
)


def random_bert_params(model_cfg, seed: int = 0):
    """Freshly initialised `bert` params of `model_cfg`: the random-init floor that every
    embedding score is compared with (same architecture and tokenizer, no training)."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    from jaxbert.model.heads import BertEmbedder

    z = jnp.zeros((1, 8), jnp.int32)
    init = jax.jit(lambda k: nn.unbox(BertEmbedder(model_cfg).init(k, z, z, z)))
    return jax.tree.map(np.asarray, init(jax.random.key(seed))["params"]["bert"])


def load_embedder(init: str, tokenizer: str = "", *, random_init: bool = False, seed: int = 0,
                  **kwargs) -> tuple[Embedder, str]:  # fmt: skip
    """An `Embedder` of a jaxbert run/params dir or Hugging Face dir, and a description of
    where its weights came from; `random_init` keeps the architecture and tokenizer but
    draws new weights. Settings left out of `kwargs` (or None) come from the model's own
    sentence-transformers recipe when it has one (`sentence_config.read_defaults`: e.g.
    last layer, mean over all tokens, normalised), else the generic defaults."""
    from jaxbert.data.tokenizer import load_tokenizer
    from jaxbert.pretrained import check_vocab, load_pretrained

    pre = load_pretrained(init, tokenizer, key="--tokenizer")
    tok = load_tokenizer(pre.tokenizer_path)
    check_vocab(pre.model_cfg, tok, "--tokenizer")
    params, source = pre.bert_params, pre.source
    if random_init:
        params, source = (
            random_bert_params(pre.model_cfg, seed),
            f"random init (seed {seed}) of {source}'s architecture",
        )
    defaults = read_defaults(pre.path)
    settings = {
        "layer": defaults.layer,
        "sentence_pool": defaults.sentence_pool,
        "max_seq_length": defaults.max_seq_length,
        "normalize": defaults.normalize,
    }
    settings |= {k: v for k, v in kwargs.items() if v is not None}
    if defaults.source:
        source += f" (embedding recipe from {defaults.source})"
    return Embedder(pre.model_cfg, params, tok, **settings), source


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return v @ v.T


def format_table(labels: Sequence[str], sims: np.ndarray, title: str) -> str:
    width = min(max(len(s) for s in labels), 48) + 5
    head = " " * width + "".join(f"{f'[{j + 1}]':>7}" for j in range(len(labels)))
    lines = [title, "", head]
    for i, label in enumerate(labels):
        name = f"[{i + 1}] " + (label if len(label) <= 48 else label[:45] + "...")
        lines.append(f"{name:<{width}}" + "".join(f"{sims[i, j]:7.3f}" for j in range(len(labels))))
    return "\n".join(lines)
