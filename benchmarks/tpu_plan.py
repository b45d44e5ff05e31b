"""The TPU compiler's memory figures for every shipped recipe, plan vs compiler, FLOPs.

    .venv/bin/python benchmarks/tpu_plan.py [--only NAME,...] [--replan]
        (needs libtpu: make install-tpu-compile; CPU host, no TPU)

Each row compiles `jaxbert pretrain`'s real train step for a Cloud TPU slice on this host
(`jaxbert.tpu_compile`) and records the compiler's per-device peak, arguments,
temporaries, collectives, FLOPs and compile seconds, or its RESOURCE_EXHAUSTED verdict,
beside the analytic `jaxbert plan` of the same config. Rows are written one by one to
benchmarks/results/tpu_plan.json (resumable: a row already there is skipped unless named
in --only). --replan recomputes only the analytic plan columns (fast, no compiles).

Row kinds: `hbm` (each generation's usable HBM, as the compiler quotes it), `recipe`
(every shipped recipe on a recommended slice and mesh), `compare` (the same config on
data, fsdp and tensor meshes: plan vs compiler), `flops` (layers unrolled, remat none:
cost_analysis × devices vs train/flops.py; a scanned body is counted once).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "tpu_plan.json"
P1, P2 = "configs/pretrain/phase1_seq128.py", "configs/pretrain/phase2_seq512.py"


def row(name, kind, config, target, mesh, *overrides, note=""):
    return dict(name=name, kind=kind, config=config, target=target, mesh=mesh,
                overrides=list(overrides), note=note)  # fmt: skip


GA = "--config.train.grad_accum_steps="
BS = "--config.train.batch_size="
VOCAB = "--config.model.vocab_size=30592"  # a multiple of 128: splits over tensor 4
FLOPS = ("--config.model.scan_layers=false", "--config.model.remat_policy=none")


def compare(size: str, seq: int) -> list[dict]:
    """Plan vs compiler on v4-32 (16 chips): data, fsdp and tensor meshes, equal batch."""
    cfg, bs = (P1, "256") if seq == 128 else (P2, "64")
    return [
        row(f"{size}-s{seq}-{label}", "compare", f"{cfg}:{size},adamw", "v4-32", mesh,
            BS + bs, VOCAB)
        for label, mesh in (("data", "16,1,1"), ("fsdp", "1,16,1"), ("tensor", "4,1,4"))
    ]  # fmt: skip


ROWS = [
    *compare("base", 128),
    # The rows (before the fix: FSDP 2.4-5x the plan; the last did not compile).
    row("issue-v5e16-fsdp", "compare", f"{P1}:large,lamb", "v5e-16", "1,16,1", BS + "512"),
    row("issue-v5e16-data", "compare", f"{P1}:large,lamb", "v5e-16", "16,1,1", BS + "512"),
    # Each recipe on a slice where it fits, with the recommended mesh.
    row("base-adamw-p1", "recipe", f"{P1}:base,adamw", "v5e-8", "8,1,1"),
    row("base-adamw-p2", "recipe", f"{P2}:base,adamw", "v5e-8", "8,1,1"),
    row("large-adamw-p1", "recipe", f"{P1}:large,adamw", "v5e-16", "16,1,1"),
    row("large-lamb-p1", "recipe", f"{P1}:large,lamb", "v5e-64", "64,1,1", GA + "16"),
    row("base-lamb-p1", "recipe", f"{P1}:base,lamb", "v5e-64", "64,1,1", GA + "8"),
    row("large-adamw-p2", "recipe", f"{P2}:large,adamw", "v4-32", "16,1,1"),
    row("base-lamb-p2", "recipe", f"{P2}:base,lamb", "v5e-64", "64,1,1", GA + "16"),
    row("large-lamb-p2", "recipe", f"{P2}:large,lamb", "v4-512", "1,256,1", GA + "4"),
    *[r for r in compare("base", 512) if "data" not in r["name"]],
    row("flops-mini", "flops", f"{P1}:mini,adamw", "v4-8", "4,1,1", BS + "32", *FLOPS),
    row("flops-base", "flops", f"{P1}:base,adamw", "v4-8", "4,1,1", BS + "32", *FLOPS),
    *[r for r in compare("large", 512) if "data" not in r["name"]],
    row("issue-v5e16-fsdp-ga32", "compare", f"{P1}:large,lamb", "v5e-16", "1,16,1", GA + "32"),
    *compare("large", 128),
    row("flops-large", "flops", f"{P1}:large,adamw", "v4-8", "4,1,1", BS + "32", *FLOPS),
]


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"rows": {}}


def done_elsewhere(path: Path) -> set[str]:
    """Rows measured by another worker (tpu_plan*.json beside `path`)."""
    others = [p for p in path.parent.glob("tpu_plan*.json") if p != path]
    return {name for p in others for name in load(p)["rows"]}


def save(results: dict, path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, path)


def mesh_dict(text: str) -> dict[str, int]:
    return dict(zip(("data", "fsdp", "tensor"), map(int, text.split(","))))


def plan_columns(r: dict) -> dict:
    from jaxbert import plan
    from jaxbert.config import load_config
    from jaxbert.train import flops

    cfg = load_config(r["config"], r["overrides"])
    p = plan.make_plan(cfg, mesh_dict(r["mesh"]))
    t = cfg.train
    return dict(
        plan_bytes=p.total_bytes,
        plan_state_bytes=p.param_bytes + p.opt_bytes,
        plan_activation_bytes=p.activation_bytes[p.remat_policy],
        model_flops=flops.computed_flops_per_step(
            cfg.model, t.batch_size, cfg.data.max_seq_length, cfg.data.max_predictions_per_seq
        ),
        batch=t.batch_size,
        grad_accum=t.grad_accum_steps,
        micro_batch_per_device=p.micro_batch_per_device,
    )


def compile_row(r: dict) -> dict:
    from jaxbert import tpu_compile, tpu_slices
    from jaxbert.config import load_config

    cfg = load_config(r["config"], r["overrides"])
    s = tpu_slices.parse_slice(r["target"])
    t0 = time.perf_counter()
    mesh = tpu_compile.slice_mesh(s, mesh_dict(r["mesh"]))
    out = tpu_compile.compile_train_step(cfg, mesh)
    seconds = time.perf_counter() - t0
    base = dict(devices=s.devices, hbm_bytes=s.hbm_bytes, seconds=round(seconds, 1))
    if isinstance(out, tpu_compile.Verdict):
        return base | dict(fits=False, required_bytes=out.required, message=out.message)
    return base | dict(
        fits=out.peak_bytes <= s.hbm_bytes,
        peak_bytes=out.peak_bytes,
        argument_bytes=out.argument_bytes,
        temp_bytes=out.temp_bytes,
        alias_bytes=out.alias_bytes,
        code_bytes=out.code_bytes,
        flops_per_device=out.flops,
        compile_s=round(out.compile_s, 1),
        collectives=out.collectives,
    )


def hbm_rows() -> dict:
    """Each generation's HBM limit, from the compiler's own refusal of a 200 GiB buffer."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from jaxbert import tpu_compile, tpu_slices

    out = {}
    for gen, name in (("v4", "v4-8"), ("v5e", "v5e-8"), ("v5p", "v5p-8"), ("v6e", "v6e-8")):
        devices = tpu_compile.slice_devices(tpu_slices.parse_slice(name))
        mesh = Mesh(np.array(devices), ("x",))
        too_big = jax.jit(
            functools.partial(jnp.ones, (len(devices), 2**28, 200), jnp.float32),
            out_shardings=NamedSharding(mesh, PartitionSpec("x")),
        )
        try:
            too_big.lower().compile()
            out[gen] = dict(message="compiled (no limit found)")
        except Exception as e:  # noqa: BLE001 — the verdict is the measurement
            v = tpu_compile.parse_resource_exhausted(str(e))
            out[gen] = dict(available_bytes=v.available if v else None, message=str(e)[:200])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated row names, in this order")
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="results file (a 2nd worker: "
        "benchmarks/results/tpu_plan_b.json; rows done in either are skipped)",
    )
    parser.add_argument("--replan", action="store_true", help="recompute the plan columns only")
    args = parser.parse_args()
    from jaxbert import tpu_compile

    tpu_compile.require_libtpu()
    results = load(args.out)
    results.update(
        command="python benchmarks/tpu_plan.py", libtpu=tpu_compile.libtpu_version(),
        date=datetime.date.today().isoformat(), hbm=results.get("hbm") or hbm_rows(),
    )  # fmt: skip
    only = list(filter(None, args.only.split(",")))
    by_name = {r["name"]: r for r in ROWS}
    for r in [by_name[n] for n in only] if only else ROWS:
        name = r["name"]
        done = results["rows"].get(name)
        if args.replan != bool(done) or (not done and name in done_elsewhere(args.out)):
            continue  # --replan: only this file's measured rows; else: only unmeasured ones
        entry = dict(r) | plan_columns(r)
        if args.replan:
            entry = done | entry
        else:
            print(f"{name}: compiling {r['config']} {' '.join(r['overrides'])} for "
                  f"{r['target']} mesh {r['mesh']}", flush=True)  # fmt: skip
            entry |= compile_row(r) | dict(
                measured=datetime.datetime.now().isoformat("T", "seconds")
            )
            print(f"  -> {json.dumps({k: v for k, v in entry.items() if k.endswith('bytes') or k in ('fits', 'seconds')})}", flush=True)  # fmt: skip
        results["rows"][name] = entry
        save(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
