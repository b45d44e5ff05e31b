"""The MLM head's vocabulary matmul on XLA:CPU: is splitting the vocabulary worth it?

At tiny the head's two matmuls are the largest ops of the step (`profile_step.py`), and
the forward one, logits = h · Wᵀ with h [640, 128] and W [30,522, 128], runs at about
half the in-run matmul peak while the same matmul over ≤ 8,192 vocabulary rows runs near
it. This measures (1) the forward matmul by vocabulary size, whole and as separate chunk
matmuls (concatenated or not), and (2) the whole head loss — logits, bias, cross-entropy
and its gradient with respect to h, W and the bias — as it is today against a custom VJP
that keeps the logits in vocabulary chunks from the matmul through the softmax's
backward. Each timing is the median of `--repeats` calls of a jitted function.

    .venv/bin/python benchmarks/head_matmul.py --out benchmarks/results/head_matmul.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxbert.model.heads import add_bias
from jaxbert.train import losses

ROWS, HIDDEN, VOCAB = 640, 128, 30522  # tiny: batch 32 × 20 predictions


def median_ms(f, *args, repeats: int) -> float:
    f = jax.jit(f)
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def spans(n: int, chunks: int) -> list[tuple[int, int]]:
    """`chunks` consecutive [start, stop) row ranges covering n rows."""
    edges = [round(i * n / chunks) for i in range(chunks + 1)]
    return list(zip(edges, edges[1:]))


def head_loss(h, w, b, labels):
    """Today's path: one logits matmul, the bias, `losses._xent`."""
    nll, _ = losses._xent(add_bias(h @ w.T, b), labels)
    return jnp.sum(nll)


def chunked_head_loss(chunks: int):
    """The same loss with the logits kept as `chunks` separate [640, V/chunks] arrays."""
    cut = spans(VOCAB, chunks)

    def forward(h, w, b, labels):
        zs = tuple(h @ w[i:j].T + b[i:j] for i, j in cut)
        top = jnp.max(jnp.stack([jnp.max(z, axis=1) for z in zs]), axis=0)
        lse = top + jnp.log(sum(jnp.sum(jnp.exp(z - top[:, None]), axis=1) for z in zs))
        label_logit = jnp.sum(h * w[labels], axis=1) + b[labels]
        return jnp.sum(lse - label_logit), (h, w, zs, lse, labels)

    def backward(res, g):
        h, w, zs, lse, labels = res
        dh, dws, dbs = 0.0, [], []
        for (i, j), z in zip(cut, zs):
            gz = (jnp.exp(z - lse[:, None]) - (jnp.arange(i, j) == labels[:, None])) * g
            dh = dh + gz @ w[i:j]
            dws.append(gz.T @ h)
            dbs.append(jnp.ones((gz.shape[0],)) @ gz)
        return dh, jnp.concatenate(dws), jnp.concatenate(dbs), None

    @jax.custom_vjp
    def loss(h, w, b, labels):
        return forward(h, w, b, labels)[0]

    loss.defvjp(lambda *a: forward(*a), backward)
    return loss


def matmul_rows(h, repeats: int) -> list[dict]:
    rows = []
    for n in (4096, 8192, 16384, VOCAB):
        w = jax.random.normal(jax.random.key(1), (n, HIDDEN))
        ms = median_ms(lambda h, w: h @ w.T, h, w, repeats=repeats)
        rows.append(
            {"what": f"h @ W.T, vocab {n}", "ms": ms, "gflops": 2e-6 * ROWS * HIDDEN * n / ms}
        )
    w = jax.random.normal(jax.random.key(1), (VOCAB, HIDDEN))
    for chunks in (2, 4, 8):
        cut = spans(VOCAB, chunks)
        for how, join in (("separate", tuple), ("concatenated", lambda zs: jnp.concatenate(zs, 1))):
            f = lambda h, w, cut=cut, join=join: join([h @ w[i:j].T for i, j in cut])  # noqa: E731
            ms = median_ms(f, h, w, repeats=repeats)
            rows.append({"what": f"{chunks} chunks, {how}", "ms": ms,
                         "gflops": 2e-6 * ROWS * HIDDEN * VOCAB / ms})  # fmt: skip
    return rows


def loss_rows(h, repeats: int) -> list[dict]:
    w = 0.02 * jax.random.normal(jax.random.key(1), (VOCAB, HIDDEN))
    b = jnp.zeros((VOCAB,))
    labels = jax.random.randint(jax.random.key(2), (ROWS,), 0, VOCAB)
    rows = []
    for name, loss in (("today", head_loss), ("6 chunks", chunked_head_loss(6))):
        grad = jax.grad(loss, argnums=(0, 1, 2))
        rows.append({"what": f"head loss, {name}", "value": float(loss(h, w, b, labels)),
                     "forward_ms": median_ms(loss, h, w, b, labels, repeats=repeats),
                     "grad_ms": median_ms(grad, h, w, b, labels, repeats=repeats)})  # fmt: skip
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--out", default="")
    args = p.parse_args()
    h = 0.1 * jax.random.normal(jax.random.key(0), (ROWS, HIDDEN))
    rows = matmul_rows(h, args.repeats) + loss_rows(h, args.repeats)
    for r in rows:
        print(json.dumps(r), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
