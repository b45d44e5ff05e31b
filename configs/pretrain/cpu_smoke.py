"""`make pretrain`: the tiny model on the shipped Wikipedia sample, a few minutes on a CPU.

The tokenizer (8k sentencepiece) and prepared shards are built by the Makefile first.
"""

from jaxbert.model.config import model_config
from jaxbert.train.config import pretrain_defaults


def get_config():
    cfg = pretrain_defaults()
    # No dropout: a tiny model trained for minutes underfits; dropout would only slow it.
    cfg.model = model_config("tiny", vocab_size=8000, hidden_dropout=0.0, attention_dropout=0.0)
    cfg.data.prepared_dir = "runs/cpu_smoke/prepared"
    cfg.data.max_seq_length = 128
    cfg.data.max_predictions_per_seq = 20
    cfg.tokenizer = "runs/cpu_smoke/tokenizer"
    cfg.train.batch_size = 32
    cfg.train.num_steps = 800  # ≈ 5 minutes on 2 cores: `make pretrain` stays under 10
    cfg.train.log_every = 50
    cfg.train.eval_every = 400
    cfg.train.eval_batches = 20
    cfg.optimizer.learning_rate = 1e-3  # a tiny model trained briefly wants a higher peak
    cfg.optimizer.warmup_steps = 100
    cfg.checkpoint.every_steps = 400
    cfg.output_dir = "runs/cpu_smoke"
    return cfg
