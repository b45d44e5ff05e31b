"""`jaxbert pretrain` — the CLI edge of the pretraining loop."""

from __future__ import annotations

import argparse


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain BERT (MLM + NSP) from a config file",
        description="Pretrain from a config file; override any key with --config.KEY=VALUE "
        "(e.g. --config.train.num_steps=100). Resumes from the newest checkpoint in "
        "OUTPUT_DIR/checkpoints if there is one.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--config", required=True, help="config file, e.g. configs/pretrain/cpu_smoke.py"
    )
    p.set_defaults(func=run_pretrain, accepts_overrides=True)


def run_pretrain(args, overrides) -> int:
    from jaxbert.config import load_config
    from jaxbert.train.loop import pretrain

    cfg = load_config(args.config, overrides)
    result = pretrain(cfg)
    if result.preempted:
        return 0
    m, e = result.train_metrics, result.eval_metrics
    lines = [
        "",
        f"done: {result.step} steps",
        f"  checkpoint: {result.checkpoint_dir}",
        f"  logs:       {result.output_dir / 'metrics.jsonl'} (TensorBoard: {result.output_dir / 'tensorboard'})",
    ]
    if result.plot:
        lines.append(f"  plot:       {result.plot}")
    if m:
        lines.append(
            f"  final train: MLM accuracy {m['mlm_accuracy']:.3f}, NSP accuracy {m['nsp_accuracy']:.3f}"
        )
    if e:
        lines.append(
            f"  final eval:  MLM accuracy {e['mlm_accuracy']:.3f}, NSP accuracy {e['nsp_accuracy']:.3f}"
        )
    print("\n".join(lines))
    return 0
