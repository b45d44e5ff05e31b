"""Exact parameter counts of a model config, without materialising weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def count_params(model_cfg) -> dict[str, int]:
    """Exact counts from the model's abstract init (jax.eval_shape: no memory used)."""
    import flax.linen as nn

    from jaxbert.model.heads import BertForPreTraining

    ids = jnp.zeros((1, 8), jnp.int32)
    shapes = jax.eval_shape(
        lambda: BertForPreTraining(model_cfg).init(jax.random.key(0), ids, ids, ids, ids[:, :2])
    )
    params = nn.unbox(shapes)["params"]
    size = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))  # noqa: E731
    return {"encoder": size(params["bert"]), "pretraining": size(params)}
