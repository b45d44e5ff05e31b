"""Everything a fine-tuning run builds before its first step: the encoder to start from,
the task data, the model (full or, with mode=feature, a head on cached encoder
features), the optimizer and the sharded initial state. Reads but never writes, so a bad
input found here leaves output_dir as it was."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import ml_collections

from jaxbert import sharding
from jaxbert.errors import UserError
from jaxbert.finetune import buckets as buckets_lib
from jaxbert.finetune import features as features_lib
from jaxbert.finetune.batches import num_rows
from jaxbert.finetune.config import check_config
from jaxbert.finetune.data import TaskData, load_task_data
from jaxbert.finetune.step import SEQUENCE_KINDS, FinetuneSteps, build_model, make_optimizer
from jaxbert.model.config import validate
from jaxbert.pretrained import Pretrained, check_vocab, load_pretrained, resolve_path
from jaxbert.train import optim


def resolve_model(cfg) -> tuple[Pretrained, object]:
    """The encoder to fine-tune (config, weights or None, tokenizer) and the tokenizer."""
    from jaxbert.data.tokenizer import load_tokenizer

    if cfg.init == "scratch":
        if not cfg.tokenizer:
            raise UserError("config.init=scratch needs --config.tokenizer (a .model or vocab.txt)")
        tokenizer = load_tokenizer(resolve_path(cfg.tokenizer))
        model_cfg = ml_collections.ConfigDict(cfg.model.to_dict())
        model_cfg.vocab_size = tokenizer.vocab_size
        pre = Pretrained(model_cfg, None, tokenizer.path, f"scratch ({model_cfg.size} size)")
    else:
        pre = load_pretrained(cfg.init, cfg.tokenizer)
        tokenizer = load_tokenizer(pre.tokenizer_path)
    if cfg.dtype:
        pre.model_cfg.dtype = cfg.dtype
    _layer_layout(cfg, pre)
    validate(pre.model_cfg, "model")
    check_vocab(pre.model_cfg, tokenizer, "config.tokenizer")
    if cfg.max_seq_length > pre.model_cfg.max_position_embeddings:
        raise UserError(
            f"config.max_seq_length={cfg.max_seq_length} exceeds the model's "
            f"max_position_embeddings={pre.model_cfg.max_position_embeddings}"
        )
    return pre, tokenizer


def _layer_layout(cfg, pre: Pretrained) -> None:
    """Scanned (stacked) or unrolled layers, per config.scan_layers, whatever layout the
    checkpoint stores (`pre.stored_scan`, the layout best_params/ is written back in)."""
    from jaxbert.convert import stack_layers, unstack_layers

    scan = bool(cfg.get("scan_layers", False))
    pre.stored_scan = bool(pre.model_cfg.scan_layers)
    pre.model_cfg.scan_layers = scan
    if pre.bert_params is not None:
        relayout = stack_layers if scan else unstack_layers
        pre.bert_params = relayout({"bert": pre.bert_params})["bert"]


def warmup_steps(cfg, num_steps: int) -> int:
    """optimizer.warmup_steps, or (when it is -1) warmup_fraction of the run's steps."""
    if cfg.optimizer.warmup_steps >= 0:
        return int(cfg.optimizer.warmup_steps)
    return int(round(cfg.warmup_fraction * num_steps))


def _optimizer_config(cfg, num_steps: int) -> ml_collections.ConfigDict:
    opt = ml_collections.ConfigDict(cfg.optimizer.to_dict())
    opt.warmup_steps = warmup_steps(cfg, num_steps)
    return opt


def _example(batch_size: int, seq_len: int) -> dict:
    z = jnp.zeros((batch_size, seq_len), jnp.int32)
    return {"input_ids": z, "input_mask": z, "segment_ids": z}


def setup(cfg, log=print):
    """Everything before the first step: mesh, model, data, optimizer, sharded state.

    Reads but never writes, so a bad input found here leaves output_dir as it was.
    """
    check_config(cfg)
    mesh = sharding.create_mesh(cfg.mesh)
    divisor = sharding.batch_divisor(mesh) * jax.process_count()
    eval_bs = cfg.eval_batch_size or cfg.batch_size
    for key, bs in (("batch_size", cfg.batch_size), ("eval_batch_size", eval_bs)):
        if bs % divisor:
            raise UserError(f"config.{key}={bs} must be divisible by {divisor} (data×fsdp shards)")
    pre, tokenizer = resolve_model(cfg)
    t0 = time.perf_counter()
    data = load_task_data(cfg, tokenizer)
    if cfg.get("length_buckets", True) and data.kind != "span":  # SQuAD windows stay full
        data.buckets = buckets_lib.bucket_lengths(cfg.max_seq_length)
    log(
        f"{cfg.task}: {num_rows(data.train)} train features, "
        + ", ".join(f"{s.name} {num_rows(s.features)}" for s in data.dev + data.test)
        + f" ({time.perf_counter() - t0:.1f}s to read and tokenize)"
        + (f"; length buckets {list(data.buckets)}" if data.buckets else "")
    )
    steps_per_epoch = math.ceil(num_rows(data.train) / cfg.batch_size)
    num_steps = steps_per_epoch * cfg.num_epochs
    opt = _optimizer_config(cfg, num_steps)
    tx = make_optimizer(opt, num_steps, cfg.mode)
    schedule = optim.learning_rate_schedule(opt, num_steps)
    if cfg.mode == "feature":  # the encoder runs once here; only the head trains
        model = _feature_head(cfg, pre, data, eval_bs, log)
        example = {k: jnp.zeros((cfg.batch_size, *v.shape[1:]), v.dtype)
                   for k, v in data.train.items() if k in ("features", "input_mask")}  # fmt: skip
        pretrained = None
    else:
        _pooling_hint(cfg, pre, data.kind, log)
        model = build_model(data.kind, pre.model_cfg, data.num_labels, pooling=cfg.pooling)
        example = _example(cfg.batch_size, cfg.max_seq_length)
        pretrained = None if pre.bert_params is None else {"bert": pre.bert_params}
    steps = FinetuneSteps(model, tx, schedule, data.kind, mesh, example)
    state = steps.init_state(jax.random.key(cfg.seed), pretrained)
    return pre, data, steps, state, steps_per_epoch


def _pooling_hint(cfg, pre: Pretrained, kind: str, log) -> None:
    """An MLM-only checkpoint never trained its [CLS] pooler: say so where it matters."""
    if pre.objective == "mlm" and cfg.pooling == "cls" and kind in SEQUENCE_KINDS:
        log(
            "note: this checkpoint was pretrained without NSP (data.objective=mlm), so its "
            "[CLS] pooler is untrained; --config.pooling=mean reads the tokens' states "
            "instead (SST-2 from cpu_wiki, dev accuracy: 79.9 vs 78.9 at lr 3e-4, "
            "a tie at 1e-3, 79.9 vs 80.0; README)"
        )


def _feature_head(cfg, pre: Pretrained, data: TaskData, batch_size: int, log):
    """mode=feature: every split gains its cached encoder features (a scratch init's are
    those of a random encoder, kept as pre.bert_params so best_params holds them)."""
    from jaxbert.embed import random_bert_params

    if pre.bert_params is None:
        pre.bert_params = random_bert_params(pre.model_cfg, cfg.seed)
    t0 = time.perf_counter()
    splits = [data.train] + [s.features for s in data.dev + data.test]
    for arrays in splits:
        arrays["features"] = features_lib.compute(
            cfg, pre.model_cfg, pre.bert_params, arrays, data.kind, batch_size, pre.source
        )
    f = cfg.features
    layers = features_lib.feature_layers(cfg, pre.model_cfg.num_layers)
    log(
        f"features: layer(s) {layers} ({f.combine}), {data.train['features'].shape[-1]}-dim, "
        f"{sum(num_rows(a) for a in splits)} rows encoded once in "
        f"{time.perf_counter() - t0:.1f}s; head {f.head}"
    )
    return build_model(data.kind, pre.model_cfg, data.num_labels, cfg.features)
