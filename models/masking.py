"""Which keys each query sees, and the softmax over them: the math every attention path shares
(the reference path in models/attention.py, the fast path through models/ops.py) and probing.

`key_mask` is [batch, k_len] bool (True = attend): the keys every query may see (padding); or
[batch, q_len, k_len], per query (a decoding cache: each query sees the slots up to its own).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# A masked-out key's logit: finite, so a fully masked row is uniform rather than NaN. The C++
# kernel restates it (kernels/csrc/attention.cc kMaskedLogit), and
# tests/unit/models/test_cpu_kernels.py checks the two equal.
MASKED_LOGIT = -1e30


def key_mask_4d(key_mask: jax.Array) -> jax.Array:
  """`key_mask` as [batch, 1, q_len or 1, k_len], to broadcast against [B, H, q_len, k_len]."""
  return key_mask[:, None, None, :] if key_mask.ndim == 2 else key_mask[:, None]


def attention_mask(q_len: int, k_len: int, causal: bool, key_mask: jax.Array | None):
  """[batch or 1, 1, q_len or 1, k_len] bool mask, or None when every query may see every key.
  Causal: the queries are the last q_len of the keys' positions."""
  mask = None
  if causal:
    mask = jnp.tril(jnp.ones((q_len, k_len), bool), k_len - q_len)[None, None]
  if key_mask is not None:
    keys = key_mask_4d(key_mask)
    mask = keys if mask is None else mask & keys
  return mask


def masked_softmax(logits, mask, bias):
  """softmax(logits + bias) over keys, in float32; masked-out keys get no weight."""
  if bias is not None:
    logits = logits + bias
  if mask is not None:
    logits = jnp.where(mask, logits, MASKED_LOGIT)
  return jax.nn.softmax(logits, axis=-1)
