"""Several fine-tuning seeds in one command, and their mean ± std.

Small-data GLUE tasks swing by points between seeds (Devlin et al. report best-of-N on
dev; Turc et al. and most later work the mean): one seed cannot say whether a
pretrained encoder beats scratch. `config.seeds` is a count (seeds `seed, seed+1, …`) or
an explicit list ("0,1,2"); each seed is an ordinary, resumable run in
`output_dir/seed-K/`, and `output_dir/metrics.json` aggregates them. Seeds run one after
another: vmapping N parameter copies through one program was measured no faster on CPU
(tiny and mini, 0.94–1.03×; benchmarks/vmap_seeds.py).
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

from jaxbert import fs
from jaxbert.errors import UserError


def parse_seeds(value, base_seed: int) -> list[int]:
    """`config.seeds` → the seed list: a count N ≥ 1, or a comma-separated/list of seeds."""
    text = str(value).strip().strip("[]()")
    try:
        parts = [int(p) for p in text.replace(" ", "").split(",") if p != ""]
    except ValueError:
        parts = []
    if isinstance(value, (list, tuple)) or "," in text:
        if not parts or min(parts) < 0 or len(set(parts)) != len(parts):
            raise UserError(f"config.seeds={value!r} must be distinct integer seeds >= 0")
        return parts
    if len(parts) != 1 or parts[0] < 1:
        raise UserError(
            f"config.seeds={value!r} must be a seed count >= 1 or a list of seeds (e.g. 0,1,2)"
        )
    return [base_seed + i for i in range(parts[0])]


def seed_config(cfg, seed: int):
    """One seed's run config: its own output_dir, a single seed."""
    sub = copy.deepcopy(cfg)
    sub.seed, sub.seeds = seed, "1"
    sub.output_dir = str(Path(cfg.output_dir) / f"seed-{seed}")
    return sub


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _stats(dicts: list[dict]) -> tuple[dict, dict]:
    """Per-key mean and std of same-keyed metric dicts."""
    pairs = {k: _mean_std([d[k] for d in dicts]) for k in dicts[0]}
    return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}


def aggregate(per_seed: list[dict], seeds: list[int]) -> dict:
    """Mean and sample std (n − 1) of every dev/test metric over seeds, plus each seed's."""
    first = per_seed[0]
    out = {k: first[k] for k in ("task", "mode", "init", "metric") if k in first}
    out["seeds"] = seeds
    if "dev" in first:
        out["dev"], out["dev_std"] = _stats([m["dev"] for m in per_seed])
    if "test" in first:  # {test split name: metrics}
        out["test"], out["test_std"] = {}, {}
        for name in first["test"]:
            out["test"][name], out["test_std"][name] = _stats([m["test"][name] for m in per_seed])
    out["per_seed"] = [
        {"seed": s, **{k: m[k] for k in ("dev", "test", "best_epoch", "train_time_s") if k in m}}
        for s, m in zip(seeds, per_seed, strict=True)
    ]
    out["train_time_s"] = sum(m.get("train_time_s", 0.0) for m in per_seed)
    return out


def write_summary(out_dir: Path, summary: dict) -> None:
    import json

    fs.atomic_write_text(Path(out_dir) / "metrics.json", json.dumps(summary, indent=2) + "\n")
