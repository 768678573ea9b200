"""Attention: the attention modules, selected by name (`model.attention`), and their math.

Every variant is a module with one signature,
    (x, positional, positions, key_mask, capture, tokens=None, cache=None, heads=None)
        -> (output [B, T, d], weights [B, H, T, T] or None, cache or None)
and each has a fast path and a reference path that records its weights (`capture=True`). `tokens`
[B, T] are the input ids: only variants whose fixed patterns depend on token identity read them.
`cache` (a `Cache`, for decoding) holds the keys and values of the tokens so far; vanilla
attention reads and extends it, and the other variants take none. `heads`, when given, maps the
heads' outputs [B, T, H, head_dim] before the output projection (models/interventions.py).

  vanilla   learned softmax(q k^T) heads
  lego      the first heads follow fixed patterns (manipulation: a local kernel; association:
            identical tokens) with no Q/K projections and no q k^T; the rest are learned
  conv_qkv  vanilla with a depthwise convolution along the sequence on q, k and v

The fast path is `ops.attention` (models/ops.py): on one CPU device a C++ kernel in place of the
math here (tested equal), else XLA's fusions of the model's softmax with our backward, or
`jax.nn.dot_product_attention` (cuDNN flash attention on GPU), as `model.kernels` says. The
reference path computes the weights explicitly so probing can record them. Tests prove they agree.

Shapes: q, k, v [batch, length, heads, head_dim]; `key_mask` [batch, length] bool (True = attend).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models import ops
from models.masking import attention_mask, masked_softmax
from models.params import kernel_std, param
from models.positional import PositionalEncoding


def attention_weights(q, k, *, causal: bool, key_mask=None, bias=None):
  """The softmax attention weights [batch, heads, q_len, k_len], in float32."""
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
  mask = attention_mask(q.shape[1], k.shape[1], causal, key_mask)
  return masked_softmax(logits * q.shape[-1] ** -0.5, mask, bias)


def reference_attention(q, k, v, *, causal: bool, key_mask=None, bias=None):
  """(output, weights): the explicit computation, for probing and for testing the fast path."""
  weights = attention_weights(q, k, causal=causal, key_mask=key_mask, bias=bias)
  return ops.mix(weights, v, kernels="xla"), weights


def _attend(q, k, v, *, causal, key_mask, bias, capture, kernels):
  """(output, weights or None) through the reference path when capturing, else the fast path."""
  if capture:
    return reference_attention(q, k, v, causal=causal, key_mask=key_mask, bias=bias)
  return ops.attention(q, k, v, causal=causal, key_mask=key_mask, bias=bias, kernels=kernels), None


def packed_heads(x, kernel):
  """x [B, T, d] through a fused kernel [d, s, heads, head_dim]: [B, T, s, heads, head_dim].

  One matmul in its natural [B, T, s*heads*head_dim] layout: an einsum straight to [s, B, T, ...]
  makes XLA materialise a transposed copy (about 9% of a CPU step).
  """
  d, s, h, k = kernel.shape
  return ops.dense(x, kernel.reshape(d, s * h * k).astype(x.dtype)).reshape(*x.shape[:-1], s, h, k)


def split_heads(y):
  """`packed_heads`' output [B, T, s, heads, head_dim] as s arrays [B, T, heads, head_dim]."""
  # split, not indexing: the gradient is one concatenate instead of a sum of s padded arrays
  return tuple(part.squeeze(-3) for part in jnp.split(y, y.shape[-3], axis=-3))


def merge_heads(y, kernel, heads=None):
  """y [B, T, heads, head_dim], mapped by `heads` if given, through the output kernel [heads,
  head_dim, d]: [B, T, d]."""
  if heads is not None:
    y = heads(y)
  h, k, d = kernel.shape
  return ops.dense(y.reshape(*y.shape[:-2], h * k), kernel.reshape(h * k, d).astype(y.dtype))


class Cache(NamedTuple):
  """One attention layer's decoding cache: keys and values [B, S, heads, head_dim] of S slots,
  `slots` [B, L] where this call's L tokens go, `positions` [B, S] every slot's position. Each
  query sees the slots up to its own; slots past it may hold anything (padding, stale keys)."""
  keys: jax.Array
  values: jax.Array
  slots: jax.Array
  positions: jax.Array

  def write(self, k, v) -> Cache:
    """This call's keys and values [B, L, heads, head_dim] in their slots."""
    rows = jnp.arange(k.shape[0])[:, None]
    return self._replace(keys=self.keys.at[rows, self.slots].set(k),
                         values=self.values.at[rows, self.slots].set(v))

  def visible(self):
    """[B, L, S]: the slots each of this call's queries sees (a per-query key mask)."""
    return jnp.arange(self.keys.shape[1])[None, None, :] <= self.slots[:, :, None]


# -- fixed patterns (LEGO attention, mimicking targets, head scores) -----------------------------

MANIPULATION_KERNEL = (1.0, 2.0, 4.0, 2.0, 1.0)  # centred on the query


def _row_normalise(scores, causal: bool, key_mask):
  mask = attention_mask(scores.shape[-2], scores.shape[-1], causal, key_mask)
  if mask is not None:
    scores = jnp.where(mask, scores, 0.0)
  return scores / jnp.maximum(scores.sum(-1, keepdims=True), 1e-30)  # padded queries: zero rows


def manipulation_pattern(length: int, *, causal: bool = False, key_mask=None, floor: float = 0.0):
  """[1 or B, 1, T, T]: the kernel [1, 2, 4, 2, 1] around each query (+ floor), rows sum to 1."""
  offset = jnp.arange(length)[None, :] - jnp.arange(length)[:, None]  # key - query
  half = len(MANIPULATION_KERNEL) // 2
  kernel = jnp.asarray(MANIPULATION_KERNEL)[jnp.clip(offset + half, 0, 2 * half)]
  scores = jnp.where(jnp.abs(offset) <= half, kernel, 0.0) + floor
  return _row_normalise(scores[None, None], causal, key_mask)


def association_pattern(tokens, *, causal: bool = False, key_mask=None, floor: float = 0.0):
  """[B, 1, T, T]: each token attends to the other copies of itself (+ floor), rows summing to 1.

  Without a floor, a token with no other copy (in view) attends to itself so its row stays a
  distribution that is still zero wherever the tokens differ.
  """
  length = tokens.shape[1]
  other = ~jnp.eye(length, dtype=bool)
  scores = ((tokens[:, :, None] == tokens[:, None, :]) & other)[:, None].astype(jnp.float32)
  mask = attention_mask(length, length, causal, key_mask)
  if mask is not None:
    scores = jnp.where(mask, scores, 0.0)
  if floor == 0.0:
    alone = scores.sum(-1, keepdims=True) == 0
    scores = jnp.where(alone & ~other, 1.0, scores)
  return _row_normalise(scores + floor, causal, key_mask)


# -- variants ------------------------------------------------------------------------------------

class Attention(nnx.Module):
  """Vanilla multi-head self-attention with one fused QKV projection."""
  PACKABLE = True  # q, k, v are the projection's, unchanged: the fast path may read them packed

  def __init__(self, config, rngs: nnx.Rngs):
    d, h = config.d_model, config.num_heads
    self.causal, self.kernels = config.causal, config.kernels
    self.qkv = param(rngs, (d, 3, h, d // h), ("embed", None, "heads", "head_dim"),
                     kernel_std(config, d))
    self.out = _out_projection(config, rngs)

  def project(self, x, key_mask):
    """q, k, v [batch, length, heads, head_dim]."""
    return split_heads(packed_heads(x, self.qkv[...]))

  def __call__(self, x, positional, positions, key_mask=None, capture: bool = False, tokens=None,
               cache=None, heads=None):
    if self.PACKABLE and not positional.ROTATES and not capture and cache is None:
      # nothing (a rotation, a convolution, a cache) comes between the projection and attention
      y = ops.self_attention(packed_heads(x, self.qkv[...]), split_heads, causal=self.causal,
                             key_mask=key_mask, bias=positional.bias(positions),
                             kernels=self.kernels)
      return merge_heads(y, self.out[...], heads), None, None
    q, k, v = self.project(x, key_mask)
    q, k = positional.rotate(q, k, positions)
    causal, bias = self.causal, positional.bias(positions)
    if cache is not None:  # the queries see the cache's slots up to their own
      cache = cache.write(k, v)
      k, v, key_mask = cache.keys, cache.values, cache.visible()
      causal, bias = False, positional.bias(positions, cache.positions)
    y, weights = _attend(q, k, v, causal=causal, key_mask=key_mask, bias=bias, capture=capture,
                         kernels=self.kernels)
    return merge_heads(y, self.out[...], heads), weights, cache


def _out_projection(config, rngs: nnx.Rngs) -> nnx.Param:
  d, h = config.d_model, config.num_heads
  return param(rngs, (h, d // h, d), ("heads", "head_dim", "embed"),
               kernel_std(config, d, residual_output=True))


class ConvQKVAttention(Attention):
  """Vanilla attention whose q, k and v each pass a depthwise convolution along the sequence.

  One kernel tap per (q/k/v, head, channel), `model.conv_kernel` taps wide; padded on the left only
  in a decoder so no position sees the future. It starts as the identity (the tap at offset 0 is 1),
  i.e. as vanilla attention. Padded keys are zeroed first so they never leak into real positions.
  The convolution reads the whole sequence: no decoding cache.
  """
  PACKABLE = False

  def __init__(self, config, rngs: nnx.Rngs):
    super().__init__(config, rngs)
    width = config.conv_kernel
    if width < 1:
      raise ValueError(f"model.conv_kernel: {width}; allowed: >= 1")
    self.left = width - 1 if config.causal else (width - 1) // 2  # taps before offset 0
    h = config.num_heads
    identity = jnp.zeros((width, 3, h, config.d_model // h)).at[self.left].set(1.0)
    self.conv = nnx.Param(identity, out_sharding=(None, None, "heads", "head_dim"),
                          eager_sharding=False)

  def project(self, x, key_mask):
    qkv = jnp.stack(super().project(x, key_mask))  # [3, B, T, H, K]
    if key_mask is not None:
      qkv = jnp.where(key_mask[None, :, :, None, None], qkv, 0)
    width, length = self.conv.shape[0], x.shape[1]
    padded = jnp.pad(qkv, ((0, 0), (0, 0), (self.left, width - 1 - self.left), (0, 0), (0, 0)))
    kernel = self.conv[...].astype(x.dtype)
    taps = [kernel[j][:, None, None] * padded[:, :, j:j + length] for j in range(width)]
    return sum(taps[1:], taps[0])


class LegoAttention(nnx.Module):
  """LEGO attention: fixed manipulation and association heads beside ordinary learned heads.

  `model.lego_heads = (manipulation, association)` heads, in that order, come first; they keep a
  value projection but have no query/key projection and compute no q k^T. The association pattern
  reads the token ids, all of them at once: no decoding cache.
  """

  def __init__(self, config, rngs: nnx.Rngs):
    d, h = config.d_model, config.num_heads
    self.causal, self.kernels = config.causal, config.kernels
    self.manipulation, self.association = (int(n) for n in config.lego_heads)
    self.fixed = self.manipulation + self.association
    if min(self.manipulation, self.association) < 0 or self.fixed > h:
      raise ValueError(f"model.lego_heads: {tuple(config.lego_heads)}; allowed: two counts >= 0 "
                       f"summing to at most model.num_heads={h}")
    # A layer of fixed heads only has no query/key projection at all (Orbax refuses zero-size arrays)
    self.qk = (param(rngs, (d, 2, h - self.fixed, d // h), ("embed", None, "heads", "head_dim"),
                     kernel_std(config, d)) if self.fixed < h else None)
    self.v = param(rngs, (d, h, d // h), ("embed", "heads", "head_dim"), kernel_std(config, d))
    self.out = _out_projection(config, rngs)

  def fixed_patterns(self, tokens, key_mask):
    """[B, fixed heads, T, T]: manipulation heads, then association heads."""
    if tokens is None:
      raise ValueError("lego attention: the association heads need the token ids (tokens=...)")
    kw = dict(causal=self.causal, key_mask=key_mask)
    manipulation = manipulation_pattern(tokens.shape[1], **kw)
    association = association_pattern(tokens, **kw)
    batch = (tokens.shape[0], 1) + association.shape[2:]
    return jnp.concatenate([jnp.broadcast_to(manipulation, batch)] * self.manipulation
                           + [association] * self.association, axis=1)

  def project(self, x):
    """v of the fixed heads [B, T, fixed, head_dim], and of the learned heads, q and k [B, T,
    H - fixed, head_dim]: one matmul through the value and query/key kernels side by side (at the
    default LEGO shapes two [64, 64] matmuls and their weight gradients make the step 6% slower),
    split once (a split's gradient is one concatenate)."""
    d, h, head_dim = self.v.shape
    kernels = [self.v[...].reshape(d, h * head_dim)]
    if self.qk is not None:
      kernels.append(self.qk[...].reshape(d, -1))
    y = ops.dense(x, jnp.concatenate(kernels, axis=1).astype(x.dtype))
    heads = [self.fixed, h - self.fixed] + [h - self.fixed] * (2 if self.qk is not None else 0)
    parts = jnp.split(y, np.cumsum(heads)[:-1] * head_dim, axis=-1)
    return [part.reshape(*x.shape[:-1], n, head_dim) for part, n in zip(parts, heads)]

  def __call__(self, x, positional, positions, key_mask=None, capture: bool = False, tokens=None,
               cache=None, heads=None):
    v_fixed, v_learned, *qk = self.project(x)
    ys, weights = [], []
    if self.fixed:
      fixed = self.fixed_patterns(tokens, key_mask)
      # capturing: the reference path, on XLA like `reference_attention`
      ys.append(ops.mix(fixed, v_fixed, kernels="xla" if capture else self.kernels))
      weights.append(fixed)
    if qk:
      q, k = positional.rotate(*qk, positions)
      bias = positional.bias(positions)
      if bias is not None and bias.shape[1] > 1:  # a per-head bias: the learned heads' share
        bias = bias[:, self.fixed:]
      y, w = _attend(q, k, v_learned, causal=self.causal, key_mask=key_mask, bias=bias,
                     capture=capture, kernels=self.kernels)
      ys.append(y)
      weights.append(w)
    y = jnp.concatenate(ys, axis=2)
    weights = jnp.concatenate(weights, axis=1) if capture else None
    return merge_heads(y, self.out[...], heads), weights, None


VARIANTS = {"vanilla": Attention, "lego": LegoAttention, "conv_qkv": ConvQKVAttention}


def make(config, rngs: nnx.Rngs) -> nnx.Module:
  return VARIANTS[config.attention](config, rngs)


def cost(config, length: int) -> dict[str, int]:
  """Parameters and forward FLOPs (as XLA counts them, fast path) of one attention layer on one
  sequence of `length` tokens; for comparing variants at equal model size."""
  module = make(config, nnx.Rngs(0))
  graphdef, state = nnx.split(module)
  x = jnp.zeros((1, length, config.d_model), jnp.dtype(config.dtype))
  tokens = jnp.zeros((1, length), jnp.int32)
  positions = jnp.arange(length)[None]

  def forward(state, x, tokens):
    return nnx.merge(graphdef, state)(x, PositionalEncoding(), positions, tokens=tokens)[0]

  analysis = jax.jit(forward).lower(state, x, tokens).compile().cost_analysis()
  analysis = analysis[0] if isinstance(analysis, list) else analysis
  params = sum(p.size for p in jax.tree.leaves(nnx.state(module, nnx.Param)))
  return {"params": int(params), "flops": int(analysis["flops"])}
