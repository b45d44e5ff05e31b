"""Training FLOPs per step and the peak they are divided by for MFU.

Two counts, as PEERS.md asks: the standard 6·N·T + 12·L·H·S·T (N = all parameters), and
the one that counts the work this model actually does (the MLM head runs only at the
`max_predictions_per_seq` gathered positions, embeddings are lookups, not matmuls).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp

# Dense peak FLOP/s per device for bf16 matmuls (vendor figures); fp32 CPUs are measured.
PEAK_FLOPS = {
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v6 lite": 918e12,
    "NVIDIA H100 80GB HBM3": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
}


def parameter_count(model_cfg: Any) -> int:
    """BertForPreTraining parameters (equal to transformers' count for the same config)."""
    h, f, v = model_cfg.hidden_size, model_cfg.intermediate_size, model_cfg.vocab_size
    layer = 4 * (h * h + h) + 2 * h * f + f + h + 4 * h
    embed = (v + model_cfg.max_position_embeddings + model_cfg.type_vocab_size) * h + 2 * h
    heads = (h * h + h) * 2 + 2 * h + v + (2 * h + 2)  # pooler, MLM transform + LN + bias, NSP
    return model_cfg.num_layers * layer + embed + heads


def standard_flops_per_step(model_cfg: Any, batch: int, seq: int) -> float:
    tokens = batch * seq
    return (
        6.0 * parameter_count(model_cfg) * tokens
        + 12.0 * model_cfg.num_layers * model_cfg.hidden_size * seq * tokens
    )


def computed_flops_per_step(model_cfg: Any, batch: int, seq: int, predictions: int) -> float:
    """Forward+backward matmul FLOPs of what jaxbert computes (×3 of the forward)."""
    h, f, v, n = (
        model_cfg.hidden_size,
        model_cfg.intermediate_size,
        model_cfg.vocab_size,
        model_cfg.num_layers,
    )
    tokens = batch * seq
    per_token = n * (2 * 4 * h * h + 2 * 2 * h * f)  # QKV/out projections, MLP
    attention = n * 2 * 2 * seq * h  # scores + weighted sum
    head = batch * predictions * 2 * (h * h + h * v) + batch * 2 * (h * h + 2 * h)
    return 3.0 * (tokens * (per_token + attention) + head)


def measure_matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best-of-N fp32 matmul FLOP/s on the default device (the MFU denominator on CPU)."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def peak_flops_per_device(override: float = 0.0) -> tuple[float, str]:
    """(peak FLOP/s, where it came from)."""
    if override > 0:
        return override, "config"
    kind = jax.devices()[0].device_kind
    for name, peak in PEAK_FLOPS.items():
        if kind.startswith(name):
            return peak, f"{kind} datasheet (bf16)"
    return measure_matmul_peak(), f"measured fp32 matmul on {kind}"


class Throughput:
    """Tokens/s and MFU over the interval since the last report."""

    def __init__(self, cfg, num_devices: int):
        b, s, p = cfg.train.batch_size, cfg.data.max_seq_length, cfg.data.max_predictions_per_seq
        self.tokens_per_step = b * s
        self.flops_per_step = computed_flops_per_step(cfg.model, b, s, p)
        self.standard_flops_per_step = standard_flops_per_step(cfg.model, b, s)
        peak, self.peak_source = peak_flops_per_device(cfg.train.peak_flops_per_device)
        self.peak = peak * num_devices
        self.mark(0)

    def mark(self, step: int) -> None:
        self.t, self.step = time.perf_counter(), step

    def report(self, step: int) -> dict:
        dt = max(time.perf_counter() - self.t, 1e-9)
        steps_per_s = (step - self.step) / dt
        self.mark(step)
        return {
            "steps_per_s": steps_per_s,
            "tokens_per_s": steps_per_s * self.tokens_per_step,
            "mfu": steps_per_s * self.flops_per_step / self.peak,
            "mfu_standard": steps_per_s * self.standard_flops_per_step / self.peak,
        }
