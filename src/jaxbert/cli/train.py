"""`jaxbert pretrain`, `jaxbert plan` and `jaxbert params`."""

from __future__ import annotations

from jaxbert.cli.common import config_command
from jaxbert.errors import UserError
from jaxbert.model.config import SIZES


def add_parsers(subparsers) -> None:
    _add_pretrain(subparsers)
    _add_plan(subparsers)
    p = subparsers.add_parser("params", help="parameter counts of the model sizes")
    p.add_argument("sizes", nargs="*", default=list(SIZES), help=f"any of {list(SIZES)}")
    p.add_argument("--vocab-size", type=int, default=30522)
    p.set_defaults(func=run_params)


def _add_pretrain(subparsers) -> None:
    config_command(
        subparsers, "pretrain",
        summary="pretrain BERT (MLM + NSP) from a config file",
        description="Pretrain from a config file; override any key with --config.KEY=VALUE "
        "(e.g. --config.train.num_steps=100). Resumes from the newest checkpoint in "
        "OUTPUT_DIR/checkpoints if there is one; Ctrl-C or SIGTERM saves a checkpoint first.",
        example="configs/pretrain/cpu_smoke.py", func=run_pretrain,
    )  # fmt: skip


def _add_plan(subparsers) -> None:
    from jaxbert.plan import ACCELERATORS as accelerators
    from jaxbert.plan import DEFAULT_MFU

    p = config_command(
        subparsers, "plan",
        summary="memory per device and estimated step time for a config on a mesh",
        description="Parameters, gradients, optimizer state and activations per device "
        "(with and without remat), FLOPs per step and an estimated step time, for a run "
        "config on a (data, fsdp, tensor) mesh. Nothing is allocated or compiled; the config "
        "passes the same checks as `jaxbert pretrain`.",
        example="configs/pretrain/phase1_seq128.py:base", func=run_plan,
    )  # fmt: skip
    p.add_argument(
        "--mesh",
        help="data,fsdp,tensor; one may be -1 (write --mesh=-1,1,1) or fill; "
        "default: the config's mesh",
    )
    p.add_argument("--devices", type=int, help="number of devices (needed when a mesh axis is -1)")
    p.add_argument("--accelerator", choices=sorted(accelerators), help="peak FLOP/s and memory")
    p.add_argument("--device-memory-gib", type=float, help="memory per device (GiB)")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help="assumed model FLOPs utilisation")
    p.add_argument(
        "--target",
        help="a Cloud TPU slice (v4-8 … v4-4096, v5e-1 … v5e-256, v5p-8 …, v6e-1 … v6e-256), or "
        "'current' (this TPU VM's, from TPU_ACCELERATOR_TYPE): compile the real train step "
        "with the TPU compiler on this host (needs libtpu: make install-tpu-compile) and "
        "report its memory per device, collectives and compile time; exit 1 if it does not fit",
    )
    p.add_argument("--slices", type=int, default=1, help="with --target: number of slices (DCN)")


def run_pretrain(args, overrides) -> int:
    from jaxbert import distributed
    from jaxbert.config import load_config
    from jaxbert.train.loop import pretrain

    cfg = load_config(args.config, overrides)
    distributed.maybe_initialize(cfg.distributed)
    result = pretrain(cfg)
    if result.preempted:  # SIGTERM: checkpointed (Ctrl-C raised KeyboardInterrupt: exit 130)
        return 0
    print("\n".join(_summary(result)))
    return 0


def _summary(result) -> list[str]:
    m, e = result.train_metrics, result.eval_metrics
    lines = [
        "",
        f"done: {result.step} steps",
        f"  checkpoint: {result.checkpoint_dir}",
        f"  logs:       {result.output_dir / 'metrics.jsonl'} (TensorBoard: {result.output_dir / 'tensorboard'})",
    ]
    if result.plot:
        lines.append(f"  plot:       {result.plot}")
    for name, metrics in (("train", m), ("eval", e)):
        if metrics:
            accs = f"MLM accuracy {metrics['mlm_accuracy']:.3f}"
            if "nsp_accuracy" in metrics:
                accs += f", NSP accuracy {metrics['nsp_accuracy']:.3f}"
            lines.append(f"  final {name}:{' ' * (6 - len(name))}{accs}")
    return lines


def run_plan(args, overrides) -> int:
    from jaxbert.config import load_config
    from jaxbert.plan import format_plan, make_plan, parse_mesh

    cfg = load_config(args.config, overrides)
    mesh = parse_mesh(args.mesh) if args.mesh else dict(cfg.mesh)
    if args.devices is not None and args.devices <= 0:
        raise UserError(f"--devices must be positive, got {args.devices}")
    if not 0 < args.mfu <= 1:
        raise UserError(f"--mfu must be in (0, 1], got {args.mfu}")
    if args.device_memory_gib is not None and args.device_memory_gib <= 0:
        raise UserError(f"--device-memory-gib must be positive, got {args.device_memory_gib}")
    if args.target:
        return run_target(args, cfg, mesh)
    plan = make_plan(
        cfg, mesh, args.devices, accelerator=args.accelerator,
        device_memory_gib=args.device_memory_gib, mfu=args.mfu,
    )  # fmt: skip
    print(format_plan(plan, cfg))
    return 0


def run_target(args, cfg, mesh: dict) -> int:
    """The estimate, then the TPU compiler's figures for the slice; exit 1 (one line)
    when the compiler says the config does not fit."""
    from jaxbert import tpu_compile
    from jaxbert.plan import format_plan, make_plan
    from jaxbert.tpu_slices import parse_slice

    tpu_compile.require_libtpu()
    name = tpu_compile.current_slice_name() if args.target == "current" else args.target
    s = parse_slice(name, args.slices)
    gen = s.generation.prefix if s.generation.prefix != "v5" else "v5p"
    plan = make_plan(
        cfg, mesh, s.devices, accelerator=gen, device_memory_gib=s.generation.hbm_gib,
        mfu=args.mfu,
    )  # fmt: skip
    print(format_plan(plan, cfg), end="\n\n", flush=True)
    out = tpu_compile.compile_train_step(cfg, tpu_compile.slice_mesh(s, plan.mesh))
    recipe = args.config.rpartition("/")[2]
    if isinstance(out, tpu_compile.Compiled):
        print(tpu_compile.format_compiled(out, s))
        if out.peak_bytes <= s.hbm_bytes:
            print(f"fits: {recipe} on {s.label}, peak {out.peak_bytes / s.hbm_bytes:.0%} of HBM")
            return 0
    raise UserError(tpu_compile.refusal(recipe, s, plan.mesh, out))


def run_params(args) -> int:
    from jaxbert.model.config import model_config
    from jaxbert.model.params import count_params

    if args.vocab_size <= 0:
        raise UserError(f"--vocab-size must be positive, got {args.vocab_size}")
    print(
        f"{'size':<8} {'layers':>6} {'hidden':>6} {'heads':>5} {'BertModel':>14} {'+MLM/NSP heads':>15}"
    )
    for size in args.sizes:
        if size not in SIZES:
            raise UserError(f"unknown size {size!r}; choose from {list(SIZES)}")
        cfg = model_config(size, vocab_size=args.vocab_size)
        n = count_params(cfg)
        print(
            f"{size:<8} {cfg.num_layers:>6} {cfg.hidden_size:>6} {cfg.num_heads:>5} "
            f"{n['encoder']:>14,} {n['pretraining']:>15,}"
        )
    return 0
