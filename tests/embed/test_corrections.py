"""Anisotropy corrections: what each map does to its fitting sample, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbert.embed import anisotropy, corrections
from jaxbert.errors import UserError


def cone(n=400, d=8, seed=0):
    """Anisotropic vectors: a large shared offset plus one dominant direction."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.linspace(3, 0.5, d) + 5.0
    return x.astype(np.float32)


def test_whitened_sample_has_identity_covariance():
    x = cone()
    w = corrections.fit("whiten", x)(x).astype(np.float64)
    np.testing.assert_allclose(w.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(w.T @ w / len(w), np.eye(8), atol=1e-3)


def test_center_and_all_but_the_top():
    """center: zero mean, same differences; abtt: zero mean and no variance left along the
    top principal direction (k = 1 for D < 150)."""
    x = cone()
    c = corrections.fit("center", x)(x)
    np.testing.assert_allclose(c.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(c[0] - c[1], x[0] - x[1], atol=1e-5)
    a = corrections.fit("abtt", x)(x).astype(np.float64)
    top = np.linalg.eigh(np.cov((x - x.mean(0)).T))[1][:, -1]
    assert np.abs(a @ top).max() < 1e-3
    assert np.var(c @ top) > 1.0
    np.testing.assert_array_equal(corrections.fit("none", x)(x), x)


def test_corrections_lower_the_random_pair_cosine():
    """On the cone, random pairs have cosine > 0.8 raw and ≈ 0 after centering."""
    x = cone()
    words = [f"w{i}" for i in range(len(x))]
    raw = anisotropy.random_pair_cosine(x, words, 500, 0)
    fixed = anisotropy.random_pair_cosine(corrections.fit("center", x)(x), words, 500, 0)
    assert raw > 0.8 and abs(fixed) < 0.1


def test_self_similarity_by_hand():
    """Two instances of 'a' at 90°, two of 'b' identical: self-similarity (0 + 1) / 2."""
    v = np.array([[1, 0], [0, 1], [1, 1], [1, 1], [5, 5]], np.float32)
    assert anisotropy.self_similarity(v, ["a", "a", "b", "b", "c"]) == pytest.approx(0.5)


def test_whitening_drops_directions_without_variance():
    """Post-LayerNorm-like vectors (each row sums to zero: rank D − 1) whiten to D − 1
    dimensions with identity covariance."""
    x = cone()
    x = x - x.mean(1, keepdims=True)
    w = corrections.fit("whiten", x)(x).astype(np.float64)
    assert w.shape == (400, 7)
    np.testing.assert_allclose(w.T @ w / len(w), np.eye(7), atol=1e-3)


def test_too_small_samples_are_refused(tmp_path):
    with pytest.raises(UserError, match="too small to fit whitening: 5 vectors of dimension 8"):
        corrections.fit("whiten", cone(n=5))
    with pytest.raises(UserError, match="unknown correction"):
        corrections.fit("pca", cone())
    bad = tmp_path / "x.npz"
    np.savez(bad, vectors=np.zeros(3))
    with pytest.raises(UserError, match="not a saved correction"):
        corrections.load(bad)
