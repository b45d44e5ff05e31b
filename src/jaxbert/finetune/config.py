"""The fine-tuning run config: every key a run can set, with the BERT paper's recipe.

`configs/finetune/{glue,ner,squad}.py` start from `finetune_defaults(task)` and change
what they need; the result is locked, so a misspelt key is an error naming it.
"""

from __future__ import annotations

import ml_collections

from jaxbert.model.config import model_config

GLUE_TASK_NAMES = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
NER_TASK_NAMES = ("conll2003",)
SQUAD_TASK_NAMES = ("squad",)
TASK_NAMES = GLUE_TASK_NAMES + NER_TASK_NAMES + SQUAD_TASK_NAMES

# Per-task recipe: (learning rate, max_seq_length, epochs). The BERT paper searches
# lr ∈ {5e-5, 4e-5, 3e-5, 2e-5} with batch 32 and 3 epochs (2 for SQuAD); these are the
# usual picks: small, noisy tasks (CoLA, MRPC, STS-B, RTE) like the higher rates.
TASK_RECIPES: dict[str, tuple[float, int, int]] = {
    "cola": (5e-5, 128, 3),
    "sst2": (2e-5, 128, 3),
    "mrpc": (5e-5, 128, 3),
    "stsb": (5e-5, 128, 3),
    "qqp": (2e-5, 128, 3),
    "mnli": (2e-5, 128, 3),
    "qnli": (2e-5, 128, 3),
    "rte": (5e-5, 128, 3),
    "wnli": (2e-5, 128, 3),
    "conll2003": (5e-5, 128, 3),
    "squad": (3e-5, 384, 2),
}


def task_family(task: str) -> str:
    """glue | ner | squad."""
    if task in GLUE_TASK_NAMES:
        return "glue"
    if task in NER_TASK_NAMES:
        return "ner"
    if task in SQUAD_TASK_NAMES:
        return "squad"
    raise ValueError(f"unknown fine-tuning task {task!r}; choose one of {list(TASK_NAMES)}")


def finetune_defaults(task: str = "sst2") -> ml_collections.ConfigDict:
    lr, seq_len, epochs = TASK_RECIPES[task]
    cfg = ml_collections.ConfigDict()
    cfg.task = task
    # "scratch" (random init, size from `model`), a jaxbert pretraining run dir / its
    # checkpoints/ dir / a `save_params` dir, or a Hugging Face safetensors directory.
    cfg.init = "runs/cpu_smoke"
    cfg.tokenizer = ""  # "": the init's own (run config / vocab.txt beside HF weights)
    # Offline data root: glue/<TASK>/*.tsv, conll2003/eng.*, squad/dev-v1.1.json. Relative
    # paths are tried from the working directory, then from the repository root.
    cfg.data_dir = "../shared/data"
    cfg.source = "tsv"  # GLUE only: tsv | tfds (then data_dir is the TFDS data_dir)
    cfg.mode = "full"  # full fine-tuning | feature (encoder frozen, only the head trains)
    cfg.max_seq_length = seq_len
    cfg.batch_size = 32  # global, over all devices and processes
    cfg.eval_batch_size = 0  # 0: same as batch_size
    cfg.num_epochs = epochs
    cfg.learning_rate = lr
    cfg.warmup_fraction = 0.1
    cfg.weight_decay = 0.01
    cfg.clip_norm = 1.0
    cfg.seed = 0
    cfg.output_dir = f"runs/finetune/{task}"
    cfg.overwrite = False  # allow a run into an output_dir that already holds results
    cfg.max_train_examples = 0  # 0: all; else a seeded random subset (quick runs)
    cfg.max_eval_examples = 0  # 0: all; else the first N dev examples (quick runs)
    cfg.eval_every_epoch = True  # False: evaluate once, after the last epoch
    cfg.save_best = True  # write the best-on-dev params to output_dir/best_params
    cfg.log_every = 50  # steps between progress lines
    cfg.dtype = ""  # compute dtype override (float32 | bfloat16); "": the init's
    # Used only when init="scratch"; vocab_size is then taken from the tokenizer.
    cfg.model = model_config("tiny")
    cfg.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})
    cfg.ner = ml_collections.ConfigDict(
        {"train_file": "eng.train", "dev_file": "eng.testa", "test_file": "eng.testb"}
    )
    cfg.squad = ml_collections.ConfigDict(
        {
            # Only the dev file exists offline: train on (1 - eval_fraction) of its
            # articles and evaluate on the rest, split by article (no shared paragraphs).
            "file": "dev-v1.1.json",
            "train_file": "",  # e.g. train-v1.1.json: then train on it, evaluate on `file`
            "eval_fraction": 0.2,
            "split_seed": 0,
            "doc_stride": 128,
            "max_query_length": 64,
            "n_best_size": 20,
            "max_answer_length": 30,
        }
    )
    return cfg
