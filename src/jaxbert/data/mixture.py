"""Corpus mixtures: several prepared corpora, sampled with temperature-smoothed shares.

`data.corpora = "en=runs/en/prepared,ko=runs/ko/prepared"` (names optional, a `:WEIGHT`
suffix optional). With p_i = n_i / Σ n_j from each corpus's token count, corpus i is
drawn with q_i = p_i^α / Σ p_j^α (`data.sampling_alpha`; 1.0 = proportional, mBERT uses
0.7, XLM-R 0.3); explicit weights (all or none) give q_i = w_i / Σ w_j instead.

Every example is one corpus's (an instance never spans two), and it carries that
corpus's id (`corpus_id`). The draw is counter-based: global example e = g·B + row goes
to the corpus u(seed, e) falls in, and takes that corpus's example e (its own shuffled
epochs, its position e modulo its epoch length). Nothing depends on earlier batches, so
batch g is a pure function of (config, seed, g) — exactly resumable and
worker-count-independent like a single corpus — and a corpus drawn with share q_i uses a
random q_i of its stream. numpy only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxbert.data import rng as rng_lib
from jaxbert.errors import UserError

_DRAW_STREAM = 23


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    name: str
    directory: str
    weight: float | None


def parse_corpora(spec: str) -> list[CorpusSpec]:
    """`NAME=DIR[:WEIGHT],…` (NAME defaults to the directory's name)."""
    out = []
    for n, item in enumerate(p.strip() for p in str(spec).split(",")):
        if not item:
            raise UserError(f"config.data.corpora: entry {n + 1} of {spec!r} is empty")
        name, eq, rest = item.partition("=")
        directory, weight = (rest if eq else item), None
        head, colon, tail = directory.rpartition(":")
        if colon and head and "/" not in tail:  # not the "://" of a gs:// directory
            try:
                directory, weight = head, float(tail)
            except ValueError:
                raise UserError(
                    f"config.data.corpora: weight {tail!r} of {item!r} is not a number"
                ) from None
            if not weight > 0:
                raise UserError(f"config.data.corpora: weight {tail} of {item!r} must be > 0")
        out.append(CorpusSpec(name.strip() if eq else directory.rstrip("/").split("/")[-1] or directory,
                              directory.strip(), weight))  # fmt: skip
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise UserError(f"config.data.corpora: names must differ, got {names}")
    given = [c.weight is not None for c in out]
    if any(given) and not all(given):
        raise UserError("config.data.corpora: give a :WEIGHT for every corpus or for none")
    return out


def sampling_probabilities(tokens, alpha: float, weights=None) -> np.ndarray:
    """q_i ∝ p_i^α with p_i = tokens_i / Σ tokens (or ∝ weights when given)."""
    if weights is not None and all(w is not None for w in weights):
        w = np.asarray(weights, np.float64)
        return w / w.sum()
    return smoothed(
        tokens, alpha, "config.data.sampling_alpha", "config.data.corpora: a corpus has no tokens"
    )


def smoothed(sizes, alpha: float, alpha_key: str, empty_error: str) -> np.ndarray:
    """p_i = size_i / Σ size, q_i = p_i^α / Σ p_j^α; errors name the caller's key."""
    if not alpha > 0:
        raise UserError(f"{alpha_key}={alpha!r} must be > 0")
    size = np.asarray(sizes, np.float64)
    if (size <= 0).any():
        raise UserError(empty_error)
    q = (size / size.sum()) ** alpha
    return q / q.sum()


def corpus_shares(specs: list[CorpusSpec], alpha: float) -> tuple[list[int], np.ndarray]:
    """Each corpus's token count (from its manifest: no shard is opened) and its share q;
    refuses corpora prepared with different tokenizers, naming both."""
    from jaxbert.data.store import read_manifest

    tokens, first = [], None
    for spec in specs:
        manifest = read_manifest(spec.directory)
        tok = manifest["tokenizer"]
        if first is None:
            first = (spec, tok)
        elif tok.get("sha256") != first[1].get("sha256"):
            raise UserError(
                f"config.data.corpora: {spec.directory} was prepared with another tokenizer "
                f"than {first[0].directory} ({Path(spec.directory) / tok['file']} vs "
                f"{Path(first[0].directory) / first[1]['file']}); prepare every corpus with "
                "one shared tokenizer"
            )
        tokens.append(int(manifest["tokens"]))
    return tokens, sampling_probabilities(tokens, alpha, [s.weight for s in specs])


def draw_corpora(seed: int, examples: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The corpus of each global example index: a pure function of (seed, index)."""
    u = rng_lib.uniform(rng_lib.derive(seed, examples), _DRAW_STREAM, 1)[:, 0]
    return np.minimum(np.searchsorted(np.cumsum(q), u, side="right"), len(q) - 1)


class MixtureSource:
    """Callable g → batch g drawn from several `BatchSource`s (picklable like them)."""

    def __init__(self, sources, names: list[str], q: np.ndarray, batch_size: int, seed: int):
        self.sources, self.names, self.q = sources, names, np.asarray(q, np.float64)
        self.batch_size, self.seed = batch_size, seed
        self.epoch_examples = [s.batches_per_epoch * s.batch_size for s in sources]
        # An "epoch" of the mixture, for logging: as many examples as all corpora hold.
        self.batches_per_epoch = max(1, sum(self.epoch_examples) // batch_size)

    def __call__(self, g: int) -> dict[str, np.ndarray]:
        examples = int(g) * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        which = draw_corpora(self.seed, examples, self.q)
        out: dict[str, np.ndarray] = {}
        for k in np.unique(which):
            rows = np.flatnonzero(which == k)
            epoch, pos = np.divmod(examples[rows], self.epoch_examples[k])
            for e in np.unique(epoch):
                sel = rows[epoch == e]
                part = self.sources[k].examples(int(e), pos[epoch == e])
                for key, v in part.items():
                    if key not in out:
                        out[key] = np.zeros((self.batch_size, *v.shape[1:]), v.dtype)
                    out[key][sel] = v
        out["corpus_id"] = which.astype(np.int32)
        return out
