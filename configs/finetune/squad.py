"""SQuAD v1.1: `--config configs/finetune/squad.py`.

Only dev-v1.1.json exists offline, so by default 80% of its articles train and the other
20% evaluate (`squad.eval_fraction`, split by article). With the real training file, set
`--config.squad.train_file=train-v1.1.json` to train on it and evaluate on all of dev.
"""

from jaxbert.finetune.config import finetune_defaults


def get_config(task: str = "squad"):
    cfg = finetune_defaults(task)
    cfg.lock()
    return cfg
