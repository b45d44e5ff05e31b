"""`jaxbert finetune` — the CLI edge of the fine-tuning loop."""

from __future__ import annotations

from jaxbert.cli.common import config_command
from jaxbert.errors import UserError


def add_parsers(subparsers) -> None:
    config_command(
        subparsers, "finetune",
        summary="fine-tune on GLUE, CoNLL-2003 NER or SQuAD v1.1",
        description="Fine-tune from a config file; override any key with --config.KEY=VALUE, "
        "e.g. `jaxbert finetune --config configs/finetune/glue.py:sst2 "
        "--config.init=runs/cpu_smoke`. config.init is a jaxbert run dir, a Hugging Face "
        "safetensors dir or 'scratch'. Writes metrics.json, predictions/ and best_params/ "
        "to config.output_dir. Checkpoints every config.checkpoint_every_steps, at epoch ends "
        "and on SIGTERM/Ctrl-C; rerunning the same command resumes an unfinished run.",
        example="configs/finetune/glue.py:sst2, configs/finetune/ner.py, "
        "configs/finetune/squad.py",
        func=run_finetune,
        config_required=False,
    ).add_argument("--task", help="instead of --config: a task from the registry "
                   "(jaxbert.finetune.tasks: sst2, mrpc, …, conll2003, squad) with its "
                   "shipped recipe, e.g. `jaxbert finetune --task rte --config.init=RUN`")  # fmt: skip


def _task_config(name: str, overrides: list[str]):
    """The registry's task with its recipe (what configs/finetune/<family>.py returns)."""
    from jaxbert.config import apply_override, parse_overrides
    from jaxbert.finetune import tasks
    from jaxbert.finetune.config import finetune_defaults

    try:
        task = tasks.get(name)
    except ValueError as e:
        raise UserError(f"--task: {e}") from None
    cfg = finetune_defaults(task.name)
    for key, value in parse_overrides(list(overrides)):
        apply_override(cfg, key, value)
    cfg.lock()
    return cfg


def run_finetune(args, overrides) -> int:
    from jaxbert import distributed
    from jaxbert.config import load_config
    from jaxbert.finetune.run import finetune

    cfg = _task_config(args.task, overrides) if args.task else None
    if (cfg is None) == (not args.config):
        raise UserError("give --config FILE[:ARG] or --task NAME (one of them)")
    cfg = cfg or load_config(args.config, overrides)
    distributed.maybe_initialize(cfg.get("distributed"))  # environment (SLURM, TPU pod, JAXBERT_*)
    result = finetune(cfg)
    if result.preempted:  # SIGTERM: checkpointed; the loop printed where and how to resume
        return 0
    m = result.metrics

    def scores(metrics: dict, std: dict) -> str:
        return ", ".join(
            f"{k} {v:.4f}" + (f" ± {std[k]:.4f}" if k in std else "")
            for k, v in metrics.items()
            if k != "loss"
        )

    if "seeds" in m:
        head = f"done: {cfg.task}, {len(m['seeds'])} seeds {m['seeds']} (mean ± std)"
    else:
        head = f"done: {cfg.task}, best epoch {m['best_epoch']}"
    lines = ["", head, f"  dev: {scores(m['dev'], m.get('dev_std', {}))}"]
    for split, metrics in m.get("test", {}).items():
        lines.append(f"  {split}: {scores(metrics, m.get('test_std', {}).get(split, {}))}")
    lines.append(f"  metrics:     {result.output_dir / 'metrics.json'}")
    lines += [f"  predictions: {p}" for p in result.files]
    print("\n".join(lines))
    return 0
