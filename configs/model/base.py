"""BERT-base architecture (see jaxbert.model.config.SIZES)."""

from jaxbert.model.config import model_config


def get_config():
    return model_config("base")
