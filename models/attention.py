"""Attention: kernels and the attention modules, selected by name (`model.attention`).

Every variant is a module with one signature,
    (x, positional, positions, key_mask, capture) -> (output [B, T, d], weights [B, H, T, T] or None)
and each has a fast path and a reference path that records its weights (`capture=True`).

The fast path goes through `jax.nn.dot_product_attention` (cuDNN flash attention on GPU, XLA on CPU);
the reference path computes the weights explicitly so probing can record them. Tests prove they agree.

Shapes: q, k, v [batch, length, heads, head_dim]; `key_mask` [batch, length] bool (True = attend).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models.params import param

NEG_INF = -1e30


def attention_mask(q_len: int, k_len: int, causal: bool, key_mask: jax.Array | None):
  """[batch or 1, 1, q_len, k_len] bool mask, or None when every query may see every key."""
  mask = None
  if causal:
    mask = jnp.tril(jnp.ones((q_len, k_len), bool), k_len - q_len)[None, None]
  if key_mask is not None:
    keys = key_mask[:, None, None, :]
    mask = keys if mask is None else mask & keys
  return mask


def fast_attention(q, k, v, *, causal: bool, key_mask=None, bias=None, implementation=None):
  """softmax(q k^T / sqrt(d) + bias) v without materialising the weights where the backend can."""
  mask = None if key_mask is None else key_mask[:, None, None, :]
  if bias is not None:
    bias = bias.astype(q.dtype)
  return jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, is_causal=causal,
                                      implementation=implementation)


def attention_weights(q, k, *, causal: bool, key_mask=None, bias=None):
  """The softmax attention weights [batch, heads, q_len, k_len], in float32."""
  scale = q.shape[-1] ** -0.5
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
  if bias is not None:
    logits = logits + bias
  mask = attention_mask(q.shape[1], k.shape[1], causal, key_mask)
  if mask is not None:
    logits = jnp.where(mask, logits, NEG_INF)
  return jax.nn.softmax(logits, axis=-1)


def reference_attention(q, k, v, *, causal: bool, key_mask=None, bias=None):
  """(output, weights): the explicit computation, for probing and for testing the fast path."""
  weights = attention_weights(q, k, causal=causal, key_mask=key_mask, bias=bias)
  out = jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)
  return out, weights


class Attention(nnx.Module):
  """Vanilla multi-head self-attention with one fused QKV projection."""

  def __init__(self, config, rngs: nnx.Rngs):
    d, h = config.d_model, config.num_heads
    self.causal = config.causal
    self.qkv = param(rngs, (d, 3, h, d // h), ("embed", None, "heads", "head_dim"), config.init_std)
    self.out = param(rngs, (h, d // h, d), ("heads", "head_dim", "embed"),
                     config.init_std / (2 * config.num_layers) ** 0.5)

  def __call__(self, x, positional, positions, key_mask=None, capture: bool = False):
    q, k, v = jnp.einsum("btd,dshk->sbthk", x, self.qkv[...].astype(x.dtype))
    q, k = positional.rotate(q, k, positions)
    bias = positional.bias(positions)
    if capture:
      y, weights = reference_attention(q, k, v, causal=self.causal, key_mask=key_mask, bias=bias)
    else:
      y = fast_attention(q, k, v, causal=self.causal, key_mask=key_mask, bias=bias)
      weights = None
    return jnp.einsum("bthk,hkd->btd", y, self.out[...].astype(x.dtype)), weights


VARIANTS = {"vanilla": Attention}


def make(config, rngs: nnx.Rngs) -> nnx.Module:
  return VARIANTS[config.attention](config, rngs)
