"""Optimizer pieces: warmup/decay schedule values and the weight-decay mask."""

import numpy as np
import pytest

from jaxbert.errors import UserError
from jaxbert.train import optim


def test_linear_warmup_then_linear_decay_to_zero():
    """lr rises linearly to the peak over warmup, then falls linearly to 0 at num_steps."""
    opt = optim.optimizer_defaults()
    opt.learning_rate, opt.warmup_steps = 1e-3, 10
    s = optim.learning_rate_schedule(opt, 110)
    np.testing.assert_allclose(
        [s(0), s(5), s(10), s(60), s(110)], [0, 5e-4, 1e-3, 5e-4, 0], atol=1e-9
    )


def test_polynomial_decay_uses_the_configured_power():
    """LAMB recipe: (1 - t/T)^0.5 decay after warmup."""
    opt = optim.optimizer_defaults()
    opt.learning_rate, opt.warmup_steps, opt.decay, opt.decay_power = 1.0, 0, "polynomial", 0.5
    s = optim.learning_rate_schedule(opt, 100)
    np.testing.assert_allclose(s(75), 0.25**0.5, rtol=1e-5)


def test_wsd_holds_the_peak_then_decays_over_the_last_fraction():
    """warmup-stable-decay: peak from warmup until the last 20% of steps, then linear to 0."""
    opt = optim.optimizer_defaults()
    opt.learning_rate, opt.warmup_steps, opt.decay, opt.decay_fraction = 1e-3, 10, "wsd", 0.2
    s = optim.learning_rate_schedule(opt, 110)  # the decay covers steps 88..110
    np.testing.assert_allclose(
        [s(5), s(10), s(50), s(88), s(99), s(110)], [5e-4, 1e-3, 1e-3, 1e-3, 5e-4, 0], atol=1e-9
    )


def test_wsd_decay_fraction_outside_0_1_names_the_key():
    """decay_fraction=0 would never decay: an error naming config.optimizer.decay_fraction."""
    opt = optim.optimizer_defaults()
    opt.decay, opt.decay_fraction = "wsd", 0.0
    with pytest.raises(UserError, match=r"config\.optimizer\.decay_fraction"):
        optim.learning_rate_schedule(opt, 100)


def test_weight_decay_skips_layer_norm_and_biases():
    """google-bert decays weights only: LayerNorm scale/bias and all biases are excluded."""
    params = {
        "dense": {"kernel": np.ones(2), "bias": np.ones(2)},
        "layer_norm": {"scale": np.ones(2), "bias": np.ones(2)},
        "embed": {"embedding": np.ones(2)},
        "mlm": {"output_bias": np.ones(2)},
    }
    mask = optim.decay_mask(params)
    assert mask["dense"] == {"kernel": True, "bias": False}
    assert mask["layer_norm"] == {"scale": False, "bias": False}
    assert mask["embed"]["embedding"] and not mask["mlm"]["output_bias"]


def test_unknown_optimizer_names_the_config_key():
    """A typo in the optimizer name is an error naming config.optimizer.name."""
    opt = optim.optimizer_defaults()
    opt.name = "adamm"
    with pytest.raises(UserError, match="config.optimizer.name"):
        optim.make_optimizer(opt, 10)
