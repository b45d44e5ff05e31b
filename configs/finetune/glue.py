"""GLUE fine-tuning: `--config configs/finetune/glue.py:sst2` (any GLUE task name).

Defaults: the `make pretrain` checkpoint (runs/cpu_smoke), batch 32, 3 epochs, warmup 10%,
the task's learning rate from `jaxbert.finetune.config.TASK_RECIPES`.
"""

from jaxbert.finetune.config import GLUE_TASK_NAMES, finetune_defaults


def get_config(task: str = "sst2"):
    task = task.lower().replace("-", "")
    if task not in GLUE_TASK_NAMES:
        raise KeyError(f"unknown GLUE task {task!r}; choose one of {list(GLUE_TASK_NAMES)}")
    cfg = finetune_defaults(task)
    cfg.lock()
    return cfg
