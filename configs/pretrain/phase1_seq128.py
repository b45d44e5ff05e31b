"""Phase 1 of BERT pretraining: sequence length 128 for 90% of the steps.

Load as `configs/pretrain/phase1_seq128.py:SIZE,OPTIMIZER`, e.g. `:base,adamw` (the
original recipe: batch 256, lr 1e-4, 1M steps in total over both phases) or `:large,lamb`
(You et al. 2019: batch 64k in phase 1, lr 6e-3 with LAMB, 7,038 steps).
"""

from jaxbert.model.config import model_config
from jaxbert.train.config import pretrain_defaults

# (global batch, peak lr, total steps of both phases, warmup, decay, power)
RECIPES = {
    "adamw": (256, 1e-4, 1_000_000, 10_000, "linear", 1.0),
    "lamb": (65_536, 6e-3, 7_038, 2_000, "polynomial", 0.5),
}
PHASE1_FRACTION = 0.9


def recipe(arg: str, phase: int):
    size, _, opt = (arg or "base,adamw").partition(",")
    opt = opt or "adamw"
    if opt not in RECIPES:
        raise ValueError(f"optimizer recipe must be one of {sorted(RECIPES)}, got {opt!r}")
    batch, lr, total, warmup, decay, power = RECIPES[opt]
    cfg = pretrain_defaults()
    cfg.model = model_config(size, dtype="bfloat16", remat_policy="dots_no_batch")
    cfg.optimizer.name = opt
    cfg.optimizer.learning_rate = lr
    cfg.optimizer.warmup_steps = warmup
    cfg.optimizer.decay = decay
    cfg.optimizer.decay_power = power
    phase1 = int(total * PHASE1_FRACTION)
    if phase == 1:
        cfg.train.batch_size = batch
        cfg.train.num_steps = phase1
        cfg.data.max_seq_length, cfg.data.max_predictions_per_seq = 128, 20
    else:
        cfg.train.batch_size = batch if opt == "adamw" else 32_768
        cfg.train.num_steps = total if opt == "adamw" else phase1 + 1_563
        cfg.data.max_seq_length, cfg.data.max_predictions_per_seq = 512, 80
    cfg.train.log_every = 100
    cfg.train.eval_every = 10_000
    cfg.checkpoint.every_steps = 5_000
    cfg.data.prepared_dir = "runs/wiki/prepared"
    cfg.tokenizer = "runs/wiki/tokenizer"
    cfg.output_dir = f"runs/{size}_{opt}"
    return cfg


def get_config(arg: str = "base,adamw"):
    return recipe(arg, phase=1)
