"""`make pretrain`: the tiny model on the shipped Wikipedia sample, a few minutes on a CPU.

The tokenizer (8k sentencepiece) and prepared shards are built by the Makefile first, in
its run directory: `make pretrain RUN=runs/x` builds them in runs/x and overrides the three
runs/cpu_smoke paths below with runs/x's (relative paths are from the working directory).
The recipe is the best of the smoke sweep (benchmarks/README.md, "Shipped sample"): MLM
only on packed text (full_sentences), 40% masking, batch 16 × 1,600 steps at lr 2e-3 —
held-out MLM accuracy 0.134 where google-bert pairs + NSP at the same 3.3M tokens reach
0.084 — and, since 2026-12-07, two attention heads per layer that start local
(model.attention_init=local): 0.247, past the unigram plateau the rest sat on.
"""

from jaxbert.model.config import model_config
from jaxbert.train.config import pretrain_defaults


def get_config():
    cfg = pretrain_defaults()
    # No dropout: a tiny model trained for minutes underfits; dropout would only slow it.
    cfg.model = model_config("tiny", vocab_size=8000, hidden_dropout=0.0, attention_dropout=0.0)
    # Two heads per layer start as previous / next-token heads: without them the model sits
    # on the ~0.13 unigram plateau for the whole run, until some head turns local by chance
    # (benchmarks/README.md, "What keeps the smoke on the plateau").
    cfg.model.position_init = "sinusoidal_linear"
    cfg.model.attention_init = "local"
    cfg.data.prepared_dir = "runs/cpu_smoke/prepared"
    cfg.data.objective = "mlm"
    cfg.data.packing = "full_sentences"
    cfg.data.mask_prob = 0.4
    cfg.data.max_seq_length = 128
    cfg.data.max_predictions_per_seq = 0  # derived: round(0.4 × 126) = 50
    cfg.tokenizer = "runs/cpu_smoke/tokenizer"
    cfg.train.batch_size = 16
    cfg.train.num_steps = 1600  # 3.3M tokens, ≈ 5 minutes on 2 quiet cores
    cfg.train.log_every = 100
    cfg.train.eval_every = 800
    cfg.train.eval_batches = 40
    cfg.optimizer.learning_rate = 2e-3  # 3e-3 at batch 32 is close; 6e-3 stalls
    cfg.optimizer.warmup_steps = 200
    cfg.checkpoint.every_steps = 800
    cfg.output_dir = "runs/cpu_smoke"
    return cfg
