"""jaxbert: BERT pretraining and fine-tuning in JAX/Flax."""

from jaxbert.platforms import default_platforms

__version__ = "0.1.0"
default_platforms()  # before any jax backend starts: no TPU probing on TPU-less hosts
