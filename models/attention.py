"""Attention kernels. Every variant has one signature; each has a fast path and a reference path.

The fast path goes through `jax.nn.dot_product_attention` (cuDNN flash attention on GPU, XLA on CPU);
the reference path computes the weights explicitly so probing can record them. Tests prove they agree.

Shapes: q, k, v [batch, length, heads, head_dim]; `key_mask` [batch, length] bool (True = attend).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

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


def fast_attention(q, k, v, *, causal: bool, key_mask=None, implementation=None):
  """softmax(q k^T / sqrt(d)) v without materialising the weights where the backend can avoid it."""
  mask = None if key_mask is None else key_mask[:, None, None, :]
  return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal,
                                      implementation=implementation)


def attention_weights(q, k, *, causal: bool, key_mask=None):
  """The softmax attention weights [batch, heads, q_len, k_len], in float32."""
  scale = q.shape[-1] ** -0.5
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
  mask = attention_mask(q.shape[1], k.shape[1], causal, key_mask)
  if mask is not None:
    logits = jnp.where(mask, logits, NEG_INF)
  return jax.nn.softmax(logits, axis=-1)


def reference_attention(q, k, v, *, causal: bool, key_mask=None):
  """(output, weights): the explicit computation, for probing and for testing the fast path."""
  weights = attention_weights(q, k, causal=causal, key_mask=key_mask)
  out = jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)
  return out, weights
