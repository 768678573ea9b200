"""Positional encodings, selected by name (`model.pos_encoding`).

An encoding can act in three places, each a method with a neutral default:
  embed(tokens, positions)  -> added to the token embeddings ([batch, length, d_model] or None)
  rotate(q, k, positions)   -> queries and keys after a position-dependent map (rotary)
  bias(positions)           -> an attention-logit bias [batch or 1, heads or 1, length, length]
`positions` is [batch or 1, length] int32: token indices unless a study supplies its own (e.g.
randomised or Abacus positions).
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from models.params import param


class PositionalEncoding(nnx.Module):
  """No positional information at all (NoPE); the base every encoding refines."""

  def embed(self, tokens, positions):
    return None

  def rotate(self, q, k, positions):
    return q, k

  def bias(self, positions):
    return None


class Learned(PositionalEncoding):
  """A learned table of absolute positions, added to the token embeddings."""

  def __init__(self, config, rngs: nnx.Rngs):
    self.table = param(rngs, (config.max_len, config.d_model), (None, "embed"), config.init_std)

  def embed(self, tokens, positions):
    return self.table[...][positions]


ENCODINGS = {"none": PositionalEncoding, "learned": Learned}


def make(config, rngs: nnx.Rngs) -> PositionalEncoding:
  cls = ENCODINGS[config.pos_encoding]
  return cls() if cls is PositionalEncoding else cls(config, rngs)
