"""Flax NNX transformers for the synthetic-task studies."""
from models.transformer import Transformer, model_config

__all__ = ["Transformer", "model_config"]
