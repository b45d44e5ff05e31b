"""Phase 2 of BERT pretraining: sequence length 512 (max_predictions 80), the last 10%.

Same arguments as phase1_seq128.py. It starts from phase 1's final checkpoint (train
state and step, via config.train.init_from) with a fresh seq-512 data pipeline, and runs
to the recipe's total step count.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "phase1", Path(__file__).with_name("phase1_seq128.py")
)
_phase1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_phase1)


def get_config(arg: str = "base,adamw"):
    cfg = _phase1.recipe(arg, phase=2)
    cfg.train.init_from = f"{cfg.output_dir}/checkpoints"
    cfg.output_dir = f"{cfg.output_dir}_phase2"
    return cfg
