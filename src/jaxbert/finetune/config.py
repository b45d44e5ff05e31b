"""The fine-tuning run config: every key a run can set, with the BERT paper's recipe.

`configs/finetune/{glue,ner,squad}.py` start from `finetune_defaults(task)` and change
what they need; the result is locked, so a misspelt key is an error naming it.
`check_config` gives every key its valid range, checked before a run reads or writes
anything.
"""

from __future__ import annotations

import ml_collections

from jaxbert.errors import UserError
from jaxbert.finetune import tasks
from jaxbert.model.config import model_config
from jaxbert.train.optim import optimizer_defaults

GLUE_TASK_NAMES = tasks.names("glue")
NER_TASK_NAMES = tasks.names("ner")
SQUAD_TASK_NAMES = tasks.names("squad")
TASK_NAMES = tasks.names()
# Per-task recipe: (learning rate, max_seq_length, epochs), from the one task registry.
TASK_RECIPES: dict[str, tuple[float, int, int]] = {n: t.recipe for n, t in tasks.TASKS.items()}


def task_family(task: str) -> str:
    """glue | ner | squad (the registry's; ValueError for an unknown task)."""
    if task not in tasks.TASKS:
        raise ValueError(f"unknown fine-tuning task {task!r}; choose one of {list(TASK_NAMES)}")
    return tasks.TASKS[task].family


def squad_defaults() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
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
            # Zero-shot evaluation in other languages (XQuAD): SQuAD-format files (.json or
            # .json.gz, under data_dir or absolute), comma-separated, each scored with the
            # best-on-dev params as a test split; and a file whose paragraphs never train.
            "eval_files": "",
            "exclude_paragraphs_from": "",
        }
    )


def finetune_defaults(task: str = "sst2") -> ml_collections.ConfigDict:
    lr, seq_len, epochs = TASK_RECIPES[task]
    cfg = ml_collections.ConfigDict()
    cfg.task = task
    # "scratch" (random init, size from `model`), a jaxbert pretraining run dir / its
    # checkpoints/ dir / a `save_params` dir, or a Hugging Face safetensors directory.
    cfg.init = "runs/cpu_smoke"
    cfg.tokenizer = ""  # "": the init's own (run config / vocab.txt beside HF weights)
    # Offline data root: glue/<TASK>/*.tsv, conll2003/eng.*, squad/dev-v1.1.json; a
    # relative path is from the working directory (the repository root in the docs).
    cfg.data_dir = "../shared/data"
    cfg.source = "tsv"  # GLUE only: tsv | tfds (then data_dir is the TFDS data_dir)
    cfg.mode = "full"  # full fine-tuning | feature (encoder frozen, only the head trains)
    # mode=feature (the BERT paper's feature-based approach): the encoder runs once and
    # the head trains on cached states of `layer` (last | last4 | N), several layers
    # combined by sum | mean | concat; token tasks may put a BiLSTM (`head=bilstm`,
    # lstm_size 0 = hidden_size) before their classifier.
    cfg.features = ml_collections.ConfigDict(
        {"layer": "last", "combine": "sum", "head": "linear", "lstm_size": 0, "lstm_layers": 2}
    )
    # Sentence-level tasks (GLUE): the classifier reads the pooled [CLS] state (cls, the
    # BERT paper's) or the mean of the real tokens' final states (mean: a checkpoint
    # pretrained without NSP has an untrained pooler).
    cfg.pooling = "cls"
    cfg.max_seq_length = seq_len
    cfg.batch_size = 32  # global, over all devices and processes
    cfg.eval_batch_size = 0  # 0: same as batch_size
    cfg.num_epochs = epochs
    # The same optimizer block as pretraining's (train/optim.py); warmup_steps=-1 (the
    # default here) means warmup_fraction × the run's steps, which depend on the data.
    cfg.optimizer = optimizer_defaults()
    cfg.optimizer.learning_rate = lr
    cfg.optimizer.warmup_steps = -1
    cfg.warmup_fraction = 0.1  # used only while optimizer.warmup_steps is -1
    cfg.seed = 0
    # Seeds to run: a count ("3": seed, seed+1, seed+2) or a list ("0,1,2"); with more
    # than one, each runs in output_dir/seed-K and metrics.json holds their mean ± std.
    cfg.seeds = "1"
    # Pad each batch to the smallest of a few lengths (16/32/48/64/96/128/192/256/384/512,
    # capped by max_seq_length) that fits it, training and evaluation alike; SQuAD windows
    # stay full.
    cfg.length_buckets = True
    # The encoder's layers unrolled while fine-tuning (one compiled body per layer) rather
    # than scanned as in pretraining: no stacked residual buffers to fill and slice in the
    # backward pass (A/B: docs/finetuning.md); compile time grows with depth.
    # best_params/ keeps the layout of the checkpoint it came from.
    cfg.scan_layers = False
    cfg.output_dir = f"runs/finetune/{task}"
    # A finished run (metrics.json) is refused unless overwrite=true; an unfinished one
    # (its checkpoints/ remain) resumes when its training config is the same.
    cfg.overwrite = False
    cfg.checkpoint_every_steps = 500  # 0: checkpoint only at epoch ends and on SIGTERM/SIGINT
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
    cfg.squad = squad_defaults()
    return cfg


# --- validation -------------------------------------------------------------------------
# Every check runs before anything is read or written, so a typo costs no data loading
# and leaves output_dir untouched. Each rule: (key, test, what a valid value is).

_AT_LEAST_1 = ("batch_size", "num_epochs", "max_seq_length", "log_every")
_AT_LEAST_0 = (
    "eval_batch_size",
    "checkpoint_every_steps",
    "max_train_examples",
    "max_eval_examples",
    "seed",  # numpy seeds the epoch order and must not be negative
)
_OPTIMIZER_RULES = (
    ("learning_rate", lambda v: v > 0, "> 0"),
    ("b1", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("b2", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("eps", lambda v: v > 0, "> 0"),
    ("weight_decay", lambda v: v >= 0, ">= 0"),
    ("warmup_steps", lambda v: v >= -1, ">= 0, or -1 for warmup_fraction × the run's steps"),
    ("decay_power", lambda v: v > 0, "> 0"),
    ("decay_fraction", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("end_learning_rate", lambda v: v >= 0, ">= 0"),
    ("clip_norm", lambda v: v >= 0, ">= 0 (0 disables clipping)"),
)
_SQUAD_RULES = (
    ("doc_stride", lambda v: v >= 1, ">= 1"),
    ("max_query_length", lambda v: v >= 1, ">= 1"),
    ("n_best_size", lambda v: v >= 1, ">= 1"),
    ("max_answer_length", lambda v: v >= 1, ">= 1"),
    ("split_seed", lambda v: v >= 0, ">= 0"),
)
_CHOICES = (
    ("mode", ("full", "feature")),
    ("pooling", ("cls", "mean")),
    ("features.combine", ("sum", "mean", "concat")),
    ("features.head", ("linear", "bilstm")),
    ("source", ("tsv", "tfds")),
    ("optimizer.name", ("adamw", "lamb")),
    ("optimizer.decay", ("linear", "polynomial", "constant", "wsd")),
)


def _value(cfg, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _check(cfg, key: str, ok, what: str) -> None:
    value = _value(cfg, key)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or value != value or not ok(value):  # value != value: NaN
        raise UserError(f"config.{key} must be {what}, got {value!r}")


def check_config(cfg) -> None:
    """Every fine-tuning key with a valid range or set of values; one UserError naming it."""
    try:
        family = task_family(cfg.task)
    except ValueError as e:
        raise UserError(f"config.task: {e}") from None
    for key, allowed in _CHOICES:
        if _value(cfg, key) not in allowed:
            raise UserError(f"config.{key} must be one of {allowed}, got {_value(cfg, key)!r}")
    if cfg.source == "tfds" and family != "glue":
        raise UserError("config.source=tfds is only available for GLUE tasks")
    for key in ("init", "output_dir", "data_dir"):
        if not cfg[key]:
            raise UserError(f"config.{key} must not be empty")
    for key in _AT_LEAST_1:
        _check(cfg, key, lambda v: v >= 1, "an integer >= 1")
    for key in _AT_LEAST_0:
        _check(cfg, key, lambda v: v >= 0, "an integer >= 0")
    for key, ok, what in _OPTIMIZER_RULES:
        _check(cfg, f"optimizer.{key}", ok, what)
    _check(cfg, "warmup_fraction", lambda v: 0 <= v <= 1, "in [0, 1]")
    from jaxbert.finetune.seeds import parse_seeds

    parse_seeds(cfg.get("seeds", "1"), cfg.seed)
    _check(cfg, "features.lstm_size", lambda v: v >= 0, "an integer >= 0 (0: hidden_size)")
    _check(cfg, "features.lstm_layers", lambda v: v >= 1, "an integer >= 1")
    if cfg.features.head == "bilstm" and family != "ner":
        raise UserError("config.features.head=bilstm is a token-tagging head: use it with "
                        "conll2003, or head=linear")  # fmt: skip
    if cfg.pooling != "cls" and (family != "glue" or cfg.mode == "feature"):
        raise UserError("config.pooling=mean pools a sentence for a GLUE task's classifier "
                        "in mode=full: leave it at cls here")  # fmt: skip
    if family == "squad":
        _check_squad(cfg)
    if family == "ner":
        for key in ("train_file", "dev_file"):
            if not cfg.ner[key]:
                raise UserError(f"config.ner.{key} must name a file under data_dir/conll2003")


def _check_squad(cfg) -> None:
    s = cfg.squad
    for key, ok, what in _SQUAD_RULES:
        _check(cfg, f"squad.{key}", ok, what)
    if not s.train_file:
        _check(cfg, "squad.eval_fraction", lambda v: 0 < v < 1, "in (0, 1) (no squad.train_file)")
    if s.max_query_length > cfg.max_seq_length - 4:
        raise UserError(
            f"config.squad.max_query_length={s.max_query_length} leaves no room for the "
            f"document in max_seq_length={cfg.max_seq_length} ([CLS] question [SEP] doc [SEP]); "
            f"set it to at most {max(cfg.max_seq_length - 4, 1)}"
        )
