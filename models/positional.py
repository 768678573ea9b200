"""Positional encodings, selected by name (`model.pos_encoding`).

An encoding can act in three places, each a method with a neutral default:
  embed(tokens, positions)  -> added to the token embeddings ([batch, length, d_model] or None)
  rotate(q, k, positions)   -> queries and keys after a position-dependent map (rotary)
  bias(positions[, key_positions]) -> an attention-logit bias [batch or 1, heads or 1, q_len, k_len]
`positions` is [batch or 1, length] int32. What it holds is the encoding's `POSITIONS` kind, and the
helpers at the bottom make it from a batch:
  index          token indices 0..T-1 (the model's default when no positions are given)
  random_subset  an ordered random subset of 0..max_len-1 (Ruoss et al. 2023), drawn per sequence
  random_tags    distinct random tag ids in 0..max_len-1 in random order, drawn per sequence
  abacus         each digit's 1-based place inside its number, 0 for other tokens (McLeish et al.
                 2024), plus a random offset per sequence during training

  none            NoPE: no positional information (a causal decoder still knows order implicitly)
  learned         a learned table of absolute positions
  sinusoidal      fixed sin/cos of the position (Vaswani et al.)
  rotary          queries and keys rotated by position-dependent angles (RoPE)
  alibi           a per-head linear penalty on the query-key distance (Press et al.)
  randomized      learned table read at randomised positions (`random_subset`)
  random_embedding  Shen et al.'s random tags: a fixed random Gaussian vector per tag id, scaled by a
                  learned gain; tags are fresh per sequence, so they separate tokens but carry no order
  abacus          learned table read at Abacus place indices; non-digits get nothing
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.params import param


class PositionalEncoding(nnx.Module):
  """No positional information at all (NoPE); the base every encoding refines."""
  POSITIONS = "index"
  ROTATES = False  # whether `rotate` changes q and k

  def embed(self, tokens, positions):
    return None

  def rotate(self, q, k, positions):
    return q, k

  def bias(self, positions, key_positions=None):
    return None


class Learned(PositionalEncoding):
  """A learned table of absolute positions, added to the token embeddings."""

  def __init__(self, config, rngs: nnx.Rngs):
    self.table = param(rngs, (config.max_len, config.d_model), (None, "embed"), config.pos_std)

  def embed(self, tokens, positions):
    return self.table[...][positions]


class Sinusoidal(PositionalEncoding):
  """sin/cos of position / 10000^(2i/d), no parameters."""

  def __init__(self, config, rngs: nnx.Rngs):
    self.d_model = config.d_model

  def embed(self, tokens, positions):
    half = self.d_model // 2
    freq = jnp.exp(-math.log(10000.0) * jnp.arange(half) / half)
    angle = positions[..., None].astype(jnp.float32) * freq
    out = jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], -1)
    return jnp.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, self.d_model - 2 * half)])


class Rotary(PositionalEncoding):
  """RoPE: each pair of head channels (i, i + D/2) rotated by position * 10000^(-2i/D)."""
  ROTATES = True

  def __init__(self, config, rngs: nnx.Rngs):
    self.head_dim = config.d_model // config.num_heads
    if self.head_dim % 2:
      raise ValueError(f"model.pos_encoding: rotary needs an even head dim, got {self.head_dim}")

  def _tables(self, positions):
    """cos and sin of the angles [B, T, 1, D/2], in float32. Positions known when tracing (the
    default arange, a NumPy array) give constant tables: traced ones XLA fuses into each consumer
    and recomputes per example and head (the rotation 5.6x slower, forward and backward)."""
    xp = np if isinstance(positions, np.ndarray) else jnp
    half = self.head_dim // 2
    freq = xp.exp(np.float32(-math.log(10000.0)) * xp.arange(half, dtype=np.float32) / half)
    angle = positions[:, :, None, None].astype(np.float32) * freq
    return xp.cos(angle), xp.sin(angle)

  def _apply(self, x, positions):
    half = self.head_dim // 2
    cos, sin = self._tables(positions)
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).astype(x.dtype)

  def rotate(self, q, k, positions):
    return self._apply(q, positions), self._apply(k, positions)


class ALiBi(PositionalEncoding):
  """-slope_h * |i - j| added to the logits; slopes 2^(-8/H), 2^(-16/H), ... per head."""

  def __init__(self, config, rngs: nnx.Rngs):
    self.num_heads = config.num_heads

  def bias(self, positions, key_positions=None):
    key_positions = positions if key_positions is None else key_positions
    slopes = 2.0 ** (-8.0 * jnp.arange(1, self.num_heads + 1) / self.num_heads)
    distance = jnp.abs(positions[:, :, None] - key_positions[:, None, :]).astype(jnp.float32)
    return -slopes[None, :, None, None] * distance[:, None]


class Randomized(Learned):
  """Learned table over 0..max_len-1, read at an ordered random subset of it per sequence."""
  POSITIONS = "random_subset"


class RandomEmbedding(PositionalEncoding):
  """Fixed random Gaussian tag vectors (not trained) times a learned gain."""
  POSITIONS = "random_tags"

  def __init__(self, config, rngs: nnx.Rngs):
    self.shape, self.std = (config.max_len, config.d_model), config.pos_std
    self.gain = param(rngs, (), (), None)

  def embed(self, tokens, positions):
    # Rebuilt from a fixed key on each call: a constant, so checkpoints hold only the gain.
    tags = self.std * jax.random.normal(jax.random.key(0), self.shape)
    return self.gain[...] * tags[positions]


class Abacus(Learned):
  """Learned table read at each digit's place index; index 0 (non-digits) adds nothing."""
  POSITIONS = "abacus"

  def embed(self, tokens, positions):
    return jnp.where(positions[..., None] > 0, self.table[...][positions], 0.0)


ENCODINGS = {"none": PositionalEncoding, "learned": Learned, "sinusoidal": Sinusoidal,
             "rotary": Rotary, "alibi": ALiBi, "randomized": Randomized,
             "random_embedding": RandomEmbedding, "abacus": Abacus}


def make(config, rngs: nnx.Rngs) -> PositionalEncoding:
  cls = ENCODINGS[config.pos_encoding]
  return cls() if cls is PositionalEncoding else cls(config, rngs)


# -- positions a study supplies (NumPy in data pipelines, jax.numpy inside jitted decoding) ---------

def random_subset_positions(rng: np.random.Generator, batch: int, length: int,
                            max_len: int) -> np.ndarray:
  """[batch, length]: per row, `length` distinct positions of 0..max_len-1 in increasing order."""
  if length > max_len:
    raise ValueError(f"model.max_len: {max_len} is shorter than a sequence of {length}")
  return np.sort(rng.random((batch, max_len)).argsort(axis=1)[:, :length], axis=1).astype(np.int32)


def random_tag_positions(rng: np.random.Generator, batch: int, length: int,
                         num_tags: int) -> np.ndarray:
  """[batch, length]: per row, `length` distinct tag ids of 0..num_tags-1 in random order."""
  if length > num_tags:
    raise ValueError(f"model.max_len: {num_tags} tags are fewer than a sequence of {length}")
  return rng.random((batch, num_tags)).argsort(axis=1)[:, :length].astype(np.int32)


def abacus_positions(tokens, digit_ids, skip_ids=(), offset=0, xp=np):
  """[B, T]: 1 + the index of each digit inside its run of digits, + offset; 0 for non-digits.

  Tokens in `skip_ids` (e.g. spaces) neither count nor end a run. In a format written least
  significant digit first, the index is the digit's significance, so digits that add up together
  share it. Causal (index t depends on tokens up to t), so decoding can extend it token by token.
  """
  is_digit = xp.isin(tokens, xp.asarray(digit_ids))
  ends_run = ~is_digit & ~xp.isin(tokens, xp.asarray(skip_ids or (-1,)))
  count = xp.cumsum(is_digit, axis=1)
  at_end = xp.where(ends_run, count, 0)
  last_end = np.maximum.accumulate(at_end, axis=1) if xp is np else jax.lax.cummax(at_end, axis=1)
  return xp.where(is_digit, count - last_end + offset, 0).astype(xp.int32)
