"""Anisotropy corrections for contextual vectors, fitted on a sample and saved with them.

BERT's vectors occupy a narrow cone: two random words' vectors have a high cosine in every
layer (Ethayarajh 2019), which compresses every cosine-based score. Each correction is one
affine map x → (x − mean) · M fitted on a sample of vectors:

- `center`: subtract the sample mean (M = I);
- `whiten`: mean-centre, then M = U Λ^-1/2 from the sample covariance's eigenvectors, so
  the sample's covariance becomes the identity (Su et al. 2021, "BERT-whitening");
  directions without variance are dropped (M is D × rank);
- `abtt`: "all-but-the-top" (Mu & Viswanath 2018): mean-centre, then remove the top-k
  principal directions (M = I − U_k U_kᵀ; k = D/100 by default, at least 1).

Saved as `correction_kind`, `correction_mean`, `correction_matrix` arrays in an .npz, so the
same map can be applied to new vectors later.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxbert.errors import UserError

KINDS = ("none", "center", "whiten", "abtt")


@dataclasses.dataclass
class Correction:
    kind: str
    mean: np.ndarray  # [D]
    matrix: np.ndarray  # [D, D'] (D' < D only for whitening a rank-deficient sample)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return x
        return ((x - self.mean) @ self.matrix).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"correction_kind": np.asarray(self.kind), "correction_mean": self.mean,
                "correction_matrix": self.matrix}  # fmt: skip


def fit(kind: str, sample: np.ndarray, top_k: int = 0, what: str = "the sample") -> Correction:
    """The correction `kind` fitted on `sample` [N, D]; `what` names the sample in errors."""
    if kind not in KINDS:
        raise UserError(f"--corrections: unknown correction {kind!r}; choose from {KINDS}")
    x = np.asarray(sample, np.float64)
    n, d = x.shape
    if kind == "none":
        return Correction(kind, np.zeros(d, np.float32), np.eye(d, dtype=np.float32))
    if n < 2:
        raise UserError(f"{what}: {n} vector(s) cannot fit a {kind} correction")
    mean = x.mean(0)
    if kind == "center":
        return Correction(kind, mean.astype(np.float32), np.eye(d, dtype=np.float32))
    xc = x - mean
    eigval, eigvec = np.linalg.eigh(xc.T @ xc / n)
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]  # largest first
    if kind == "whiten":
        if n <= d:
            raise UserError(
                f"{what} is too small to fit whitening: {n} vectors of dimension {d} (use a "
                f"larger sample, more than {d} vectors)"
            )
        # A post-LayerNorm state lies in a (D−1)-dimensional affine subspace (its
        # normalised part sums to zero), so directions without variance are dropped: the
        # whitened vectors have the sample's rank as their dimension.
        keep = eigval > 1e-6 * eigval[0]
        matrix = eigvec[:, keep] / np.sqrt(eigval[keep])
    else:
        k = top_k or max(1, round(d / 100))
        if not 0 < k < d:
            raise UserError(f"--abtt-k {k} must be between 1 and {d - 1}")
        top = eigvec[:, :k]
        matrix = np.eye(d) - top @ top.T
    return Correction(kind, mean.astype(np.float32), matrix.astype(np.float32))


def load(path: str | Path) -> Correction:
    """A correction saved by `jaxbert embed stats --save-corrections` (or with vectors)."""
    p = Path(path)
    try:
        with np.load(p) as z:
            return Correction(str(z["correction_kind"]), z["correction_mean"],
                              z["correction_matrix"])  # fmt: skip
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{p}: not a saved correction ({e})") from None
