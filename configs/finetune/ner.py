"""CoNLL-2003 English NER: `--config configs/finetune/ner.py`.

Trains on eng.train, picks the best epoch on eng.testa (dev) and reports eng.testb (test).
"""

from jaxbert.finetune.config import finetune_defaults


def get_config(task: str = "conll2003"):
    cfg = finetune_defaults(task)
    cfg.lock()
    return cfg
