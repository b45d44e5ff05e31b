"""Tests for jaxbert.data.rng: counter-based random numbers."""

from __future__ import annotations

import numpy as np

from jaxbert.data import rng


def test_uniform_is_in_unit_interval_with_uniform_moments():
    """uniform() lies in [0, 1) with mean 1/2 ± 0.005 and variance 1/12 ± 0.002."""
    u = rng.uniform(np.arange(1000, dtype=np.uint64), 1, 128)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002


def test_rows_depend_only_on_their_key_and_stream():
    """A row is a pure function of (key, stream): subsets agree, streams differ."""
    keys = rng.derive(7, 1, np.arange(50))
    full = rng.uniform(keys, 3, 16)
    assert np.array_equal(full[10:20], rng.uniform(keys[10:20], 3, 16))
    assert not np.array_equal(full, rng.uniform(keys, 4, 16))
    assert len(np.unique(keys)) == 50 and rng.derive_int(7, 1, 3) == int(keys[3])


def test_binomial_half_matches_binomial_moments():
    """binomial_half(n) has mean n/2 and variance n/4 (±5%), also for n > 64, and 0 for n=0."""
    keys = np.arange(20000, dtype=np.uint64)
    for n in (0, 5, 64, 150):
        draws = rng.binomial_half(keys, 9, np.full(len(keys), n))
        assert draws.min() >= 0 and draws.max() <= n
        if n:
            assert abs(draws.mean() - n / 2) < 0.05 * n / 2
            assert abs(draws.var() - n / 4) < 0.05 * n / 4
