"""Post-training int8 weight quantisation (per channel), to re-measure capacity (Part 3.3).

Every parameter with two or more axes is rounded to 255 levels, symmetric, with one scale per slice
along axis 0: each of its other coordinates (its output channels) gets its own scale. Vectors
(biases, norm scales) stay float32, as in the paper. The result is de-quantised float32, so the
model runs unchanged while holding only what int8 can represent.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.jit
def quantize_int8(params):
  def quantize(w):
    if w.ndim < 2:
      return w
    scale = jnp.max(jnp.abs(w), axis=0, keepdims=True) / 127.0
    scale = jnp.where(scale > 0, scale, 1.0)
    return (jnp.clip(jnp.round(w / scale), -127, 127) * scale).astype(w.dtype)
  return jax.tree.map(quantize, params)
