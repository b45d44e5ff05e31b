"""Heads: MLM at gathered positions, tied decoder, task-head shapes."""

import flax.linen as nn
import jax
import numpy as np

from jaxbert.model.heads import (
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from tests.helpers import micro_model_config, random_batch

INPUTS = ("input_ids", "input_mask", "segment_ids")


def test_mlm_logits_at_masked_positions_equal_full_logits_gathered():
    """Evaluating the MLM head only at masked positions gives the same logits there."""
    batch = random_batch()
    model = BertForPreTraining(micro_model_config())
    args = [batch[k] for k in INPUTS]
    variables = nn.unbox(model.init(jax.random.key(0), *args, batch["masked_positions"]))
    gathered = model.apply(variables, *args, batch["masked_positions"])["mlm_logits"]
    full = model.apply(variables, *args, None)["mlm_logits"]
    expected = np.take_along_axis(np.asarray(full), batch["masked_positions"][..., None], axis=1)
    np.testing.assert_allclose(gathered, expected, atol=1e-5)
    assert gathered.shape == (8, 4, 128)


def test_mlm_decoder_is_tied_to_word_embeddings():
    """There is no separate decoder matrix: only an output bias of vocabulary size."""
    batch = random_batch()
    model = BertForPreTraining(micro_model_config())
    params = nn.unbox(model.init(jax.random.key(0), *(batch[k] for k in INPUTS)))["params"]
    assert set(params["mlm"]) == {"transform", "layer_norm", "output_bias"}
    assert params["mlm"]["output_bias"].shape == (128,)


def test_task_heads_have_the_expected_shapes_and_share_the_encoder_name():
    """Every task model names its encoder `bert`, so pretrained weights drop in."""
    batch = random_batch()
    args = [batch[k] for k in INPUTS]
    cfg = micro_model_config()
    for model, check in [
        (BertForSequenceClassification(cfg, 3), lambda o: o.shape == (8, 3)),
        (BertForTokenClassification(cfg, 9), lambda o: o.shape == (8, 16, 9)),
        (BertForQuestionAnswering(cfg), lambda o: o["start_logits"].shape == (8, 16)),
    ]:
        variables = nn.unbox(model.init(jax.random.key(0), *args))
        assert "bert" in variables["params"]
        assert check(model.apply(variables, *args))


def test_mean_pooling_reads_every_real_token_and_no_padding():
    """pooling=mean: changing a real token changes the logits, changing a padded one does
    not; the params are the [CLS] model's, so a checkpoint loads into either."""
    batch = random_batch()
    args = [batch[k] for k in INPUTS]
    cfg = micro_model_config()
    model = BertForSequenceClassification(cfg, 2, pooling="mean")
    variables = nn.unbox(model.init(jax.random.key(0), *args))
    cls_vars = nn.unbox(BertForSequenceClassification(cfg, 2).init(jax.random.key(0), *args))
    assert jax.tree.structure(variables) == jax.tree.structure(cls_vars)
    mask = np.asarray(batch["input_mask"]).copy()
    mask[0, 10:] = 0  # example 0: 10 real tokens
    ids = np.asarray(batch["input_ids"]).copy()
    base = model.apply(variables, ids, mask, batch["segment_ids"])
    last_real, padded = ids.copy(), ids.copy()
    last_real[0, 9] = (ids[0, 9] + 1) % cfg.vocab_size
    padded[0, 12] = (ids[0, 12] + 1) % cfg.vocab_size
    assert not np.allclose(
        model.apply(variables, last_real, mask, batch["segment_ids"])[0], base[0]
    )
    np.testing.assert_allclose(
        model.apply(variables, padded, mask, batch["segment_ids"])[0], base[0], atol=1e-6
    )
