"""`jaxbert params` — parameter counts per model size, without materialising weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.model.config import SIZES, model_config


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


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("params", help="parameter counts of the model sizes")
    p.add_argument("sizes", nargs="*", default=list(SIZES), help=f"any of {list(SIZES)}")
    p.add_argument("--vocab-size", type=int, default=30522)
    p.set_defaults(func=run)


def run(args) -> int:
    from jaxbert.errors import UserError

    print(
        f"{'size':<8} {'layers':>6} {'hidden':>6} {'heads':>5} {'BertModel':>14} {'+MLM/NSP heads':>15}"
    )
    for size in args.sizes:
        if size not in SIZES:
            raise UserError(f"unknown size {size!r}; choose from {list(SIZES)}")
        cfg = model_config(size, vocab_size=args.vocab_size)
        n = count_params(cfg)
        print(
            f"{size:<8} {cfg.num_layers:>6} {cfg.hidden_size:>6} {cfg.num_heads:>5} "
            f"{n['encoder']:>14,} {n['pretraining']:>15,}"
        )
    return 0
