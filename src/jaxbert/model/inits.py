"""The start-only initialisers of the research recipes (model.position_init=sinusoidal |
sinusoidal_linear, model.attention_init=mimetic | local): they change where training
starts, never the parameter tree, so checkpoints and HF conversion are unaffected.
`encoder.py` calls them when it builds the embeddings and the attention kernels."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn


def sinusoidal_frequencies(width: int, spacing: str, block: int) -> np.ndarray:
    """The angular frequency of each (sin, cos) pair of a sinusoidal position table.

    geometric: Vaswani et al.'s 1/10000^(2f/width), mostly low frequencies, so p_i·p_j
    falls off over tens of positions. linear: each run of `block` dimensions (a head's
    width) spreads its pairs over (0, π), one per equal cell at a fixed jittered point:
    over such a run Σ cos(ω·d) is ≈ 0 at d = ±1 and at most ~40% of its d = 0 value at
    any offset up to 512 (an unjittered grid would alias at multiples of the block), so a
    head reading it can single out one relative offset (local_qk_init).
    """
    pairs = np.arange((width + 1) // 2)  # an odd width's last sine has no cosine
    if spacing == "geometric":
        return 1.0 / 10000.0 ** (2 * pairs / width)
    per_block = max(block // 2, 1)
    jitter = np.random.default_rng(0).uniform(size=len(pairs))  # fixed: one table for all
    return np.pi * (pairs % per_block + jitter) / per_block


def sinusoidal_init(scale: float, omega: np.ndarray):
    """A sin/cos position table at frequencies `omega`, rescaled to RMS `scale` (the
    normal init's std).

    Why: with a random table, attending to a neighbour needs the table, W_q and W_k to
    line up at once, a saddle the tiny CPU recipes sat on for thousands of steps. Sines
    and cosines make p_i·p_j a smooth function of i − j from the first step.
    """

    def init(key, shape, dtype=jnp.float32):
        del key  # deterministic
        positions, width = shape
        angles = np.arange(positions)[:, None] * omega[None, :]
        table = np.zeros(shape, np.float32)
        table[:, 0::2] = np.sin(angles)
        table[:, 1::2] = np.cos(angles[:, : width // 2])
        return jnp.asarray(table * (scale / math.sqrt(0.5)), dtype)

    return init


def position_frequencies(cfg: Any) -> np.ndarray:
    spacing = {"sinusoidal": "geometric", "sinusoidal_linear": "linear"}[cfg.position_init]
    return sinusoidal_frequencies(cfg.hidden_size, spacing, cfg.hidden_size // cfg.num_heads)


def mimetic_qk_init(self, head_dim: int):
    """W_q = W_k at init (Trockman & Kolter 2023, "Mimetic initialization"), so each
    head's scores start as q_i·k_j ∝ x_i·x_j: tokens attend to similar tokens and,
    with a sinusoidal position table, to their neighbours, instead of uniformly.

    Why: a random W_q·W_kᵀ is a product of two small matrices, a saddle the tiny CPU
    recipes sat on for thousands of steps. σ puts a LayerNorm'd token's score with
    itself near 4 (σ² · hidden · √head_dim = 4): peaked, not one-hot. Only during
    init does this draw a key, shared by both kernels.
    """
    if not self.is_initializing():
        return None
    shared = self.make_rng("params")
    sigma = math.sqrt(4.0 / (self.cfg.hidden_size * math.sqrt(head_dim)))

    def init(key, shape, dtype=jnp.float32):
        del key  # both kernels draw from the one shared key
        return sigma * jax.random.normal(shared, shape, dtype)

    return init


# A `local` head's logit margin of its target key over the others at init: it puts 0.79 of
# its attention within ±2 positions (tiny, seq 128, the smoke's eval set; heads that turned
# local by themselves: 0.78–0.86), sharp enough to use, soft enough to keep gradients.
LOCAL_GAP = 8.0


def local_qk_init(cfg: Any, name: str):
    """attention_init=local: heads 0 and 1 of every layer start as previous- and
    next-token heads; the other heads, and V and O, start as `normal`.

    Why: the tiny recipes sit on the unigram plateau until some head, by chance, turns
    local (benchmarks/attention_probe.py: layer 0's ±2 share 0.07 → 0.78 at each jump), and
    when that happens varies with the seed by thousands of steps. With the
    sinusoidal_linear table a fixed rotation maps position i's first head_dim dimensions
    to those of i + δ, so W_k reading them and W_q reading them rotated by δ make q_i·k_j
    peak at j = i + δ. Over those evenly spaced frequencies the rotation has trace ≈ 0,
    so a token's own word embedding adds no bias towards itself.
    """
    head_dim = cfg.hidden_size // cfg.num_heads
    omega = position_frequencies(cfg)[: head_dim // 2]
    # LayerNorm'd words, positions and segments of equal RMS leave each table dimension an
    # amplitude of √(2/3): the target's score is scale² · (2/3) · head_dim / 2.
    scale = math.sqrt(LOCAL_GAP * math.sqrt(head_dim) / (len(omega) * 2.0 / 3.0))

    def rotation(delta: float) -> np.ndarray:
        """q's pair (sin ωi, cos ωi) becomes (sin ω(i + δ), cos ω(i + δ))."""
        c, s = np.cos(omega * delta), np.sin(omega * delta)
        even = 2 * np.arange(len(omega))
        block = np.zeros((head_dim, head_dim), np.float32)
        block[even, even], block[even + 1, even], block[even, even + 1] = c, s, -s
        block[even + 1, even + 1] = c
        return block

    def init(key, shape, dtype=jnp.float32):
        kernel = nn.initializers.truncated_normal(cfg.initializer_range)(key, shape, dtype)
        for head, delta in enumerate((-1.0, 1.0)[: shape[1]]):
            block = rotation(delta) if name == "query" else np.eye(head_dim, dtype=np.float32)
            kernel = kernel.at[:, head, :].set(0.0).at[:head_dim, head, :].set(scale * block)
        return kernel

    return init
