"""The fused cross-entropy: the same values and gradients as autodiff of the textbook
formula (a gather of the label's log-probability), in float32 and bfloat16."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert.train.losses import weighted_xent


def reference(logits, labels, weights):
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return jnp.sum(nll * weights), jnp.sum(correct * weights)


def case(dtype, shape=(3, 7, 41)):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    logits = (4 * jax.random.normal(k1, shape)).astype(dtype)
    labels = jax.random.randint(k2, shape[:-1], 0, shape[-1])
    weights = (jax.random.uniform(k3, shape[:-1]) > 0.3).astype(jnp.float32)
    return logits, labels, weights


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_loss_accuracy_and_gradient_match_autodiff_of_the_gather_formula(dtype):
    logits, labels, weights = case(dtype)
    loss, correct = weighted_xent(logits, labels, weights)
    want_loss, want_correct = reference(logits, labels, weights)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    assert float(correct) == float(want_correct)
    got = jax.grad(lambda x: weighted_xent(x, labels, weights)[0])(logits)
    want = jax.grad(lambda x: reference(x, labels, weights)[0])(logits)
    assert got.dtype == logits.dtype
    tol = 1e-6 if dtype == jnp.float32 else 1e-2
    np.testing.assert_allclose(got.astype(jnp.float32), want.astype(jnp.float32), atol=tol)


def test_unweighted_positions_get_no_gradient_and_accuracy_none():
    logits, labels, weights = case(jnp.float32)
    grad = jax.grad(
        lambda x: weighted_xent(x, labels, weights)[0] + weighted_xent(x, labels, weights)[1]
    )(logits)
    assert np.all(np.asarray(grad)[np.asarray(weights) == 0] == 0)
    # The accuracy term adds nothing: the gradient equals the loss's alone.
    loss_only = jax.grad(lambda x: weighted_xent(x, labels, weights)[0])(logits)
    np.testing.assert_array_equal(grad, loss_only)


def test_gradient_of_a_scaled_loss_scales_and_is_jittable():
    logits, labels, weights = case(jnp.float32, (5, 11))
    g1 = jax.jit(jax.grad(lambda x: weighted_xent(x, labels, weights)[0]))(logits)
    g3 = jax.jit(jax.grad(lambda x: 3.0 * weighted_xent(x, labels, weights)[0]))(logits)
    np.testing.assert_allclose(g3, 3 * g1, rtol=1e-6)


def test_an_out_of_range_label_under_weight_zero_leaves_loss_and_gradient_finite():
    logits, labels, weights = case(jnp.float32, (4, 9))
    labels = labels.at[0].set(99).at[1].set(-5)
    weights = weights.at[0].set(0.0).at[1].set(0.0)
    loss, _ = weighted_xent(logits, labels, weights)
    grad = jax.grad(lambda x: weighted_xent(x, labels, weights)[0])(logits)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(loss, reference(logits[2:], labels[2:], weights[2:])[0], rtol=1e-6)
