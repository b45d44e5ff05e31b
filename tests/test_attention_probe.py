"""benchmarks/attention_probe.py: its head statistics read what they claim to read."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "attention_probe", REPO / "benchmarks" / "attention_probe.py"
)
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def test_uniform_attention_reads_as_uniform_over_the_real_keys_only():
    """q = 0: each head attends uniformly over the n real keys: entropy log n, ±2 share and
    masked share the uniform ones; padding keys get nothing."""
    batch, seq, n = 2, 16, 12
    q = np.zeros((batch, seq, 2, 4))
    k = np.random.default_rng(0).normal(size=(batch, seq, 2, 4))
    masked = np.zeros((batch, seq), bool)
    masked[:, :3] = True
    stats = probe.attention_stats(q, k, np.array([n, n]), masked)
    assert stats["entropy"] == pytest.approx([math.log(n)] * 2, abs=1e-3)
    within_two = np.mean([min(i + 2, n - 1) - max(i - 2, 0) + 1 for i in range(n)]) / n
    assert stats["local"] == pytest.approx([within_two] * 2, abs=1e-3)
    assert stats["masked"] == pytest.approx([3 / n] * 2, abs=1e-3)


def test_a_head_attending_to_its_left_neighbour_reads_as_local():
    """Scores peaked at j = i − 1: distance ≈ 1, ±2 share ≈ 1, entropy ≈ 0; a second,
    uniform head keeps its own numbers (statistics are per head)."""
    seq = 8
    onehot = np.eye(seq) * 50.0
    q = np.zeros((1, seq, 2, seq))
    k = np.zeros((1, seq, 2, seq))
    q[0, 1:, 0] = onehot[:-1] * math.sqrt(seq)  # query i matches key i − 1
    q[0, 0, 0] = onehot[0] * math.sqrt(seq)  # the first token matches itself
    k[0, :, 0] = onehot / 50.0
    stats = probe.attention_stats(q, k, np.array([seq]), np.zeros((1, seq), bool))
    assert stats["distance"][0] == pytest.approx((seq - 1) / seq, abs=1e-2)
    assert stats["local"][0] == pytest.approx(1.0, abs=1e-3)
    assert stats["entropy"][0] < 0.01
    assert stats["entropy"][1] == pytest.approx(math.log(seq), abs=1e-3)


def test_collapse_is_one_for_parallel_states_and_zero_for_orthogonal_ones():
    """Mean pairwise cosine over real tokens: 1 when all states point the same way, 0 when
    they are orthogonal; padding rows are ignored."""
    parallel = np.tile(np.arange(1.0, 5.0), (1, 6, 1))
    orthogonal = np.eye(6)[None]
    assert probe.collapse(parallel, np.array([4])) == pytest.approx(1.0)
    assert probe.collapse(orthogonal, np.array([5])) == pytest.approx(0.0)
