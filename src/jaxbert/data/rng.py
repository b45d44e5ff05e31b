"""Counter-based random numbers: pure, vectorised functions of integer keys.

Instance creation and masking must be deterministic given (seed, epoch, example index),
independently of batch composition, worker count or resume point. Hashing the key with
splitmix64 gives exactly that, for a whole batch at once, with no generator state to carry.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective avalanche of a uint64 array."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def derive(key, *parts) -> np.ndarray:
    """Folds integers (scalars or broadcastable arrays) into a uint64 key array."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(key, dtype=np.uint64) + _GOLDEN)
        for part in parts:
            h = _mix(h ^ (np.asarray(part, dtype=np.uint64) * _GOLDEN + _GOLDEN))
    return h


def derive_int(key, *parts) -> int:
    """`derive` as a Python int (to seed `random.Random`)."""
    return int(derive(key, *parts))


def bits(keys: np.ndarray, stream: int, n: int) -> np.ndarray:
    """[len(keys), n] uint64 random words; row i depends only on (keys[i], stream)."""
    with np.errstate(over="ignore"):
        base = derive(keys, stream)
        counters = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        return _mix(base[:, None] + counters[None, :])


def uniform(keys: np.ndarray, stream: int, n: int) -> np.ndarray:
    """[len(keys), n] float64 uniforms in [0, 1)."""
    return (bits(keys, stream, n) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def binomial_half(keys: np.ndarray, stream: int, n: np.ndarray) -> np.ndarray:
    """Binomial(n[i], 1/2) per row: the number of heads in n[i] fair coin flips."""
    n = np.asarray(n, dtype=np.int64)
    words = int(-(-max(int(n.max(initial=0)), 1) // 64))
    b = bits(keys, stream, words)
    remaining = np.clip(n[:, None] - 64 * np.arange(words)[None, :], 0, 64).astype(np.uint64)
    with np.errstate(over="ignore"):
        low_mask = np.where(
            remaining >= 64, ~np.uint64(0), (np.uint64(1) << remaining) - np.uint64(1)
        )
    return np.bitwise_count(b & low_mask).sum(axis=1).astype(np.int64)
