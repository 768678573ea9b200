"""Post-training weight quantisation (int8, int4), to re-measure capacity (Part 3.3).

Round to nearest, symmetric: a weight becomes an integer in [-(2^(b-1) - 1), 2^(b-1) - 1] (255
levels for int8, 15 for int4) times a float scale, the largest magnitude it covers / (2^(b-1) - 1).
Every parameter with two or more axes is quantised; vectors (biases, norm scales) stay float32, as
in the paper. Scales:
  per channel (group_size None)  one scale per coordinate of the axes after the first: each output
                                 channel of a kernel [d_in, d_out] gets its own (int8's default);
  per group (group_size g)       one per g consecutive entries along axis 0 as well (the last group
                                 of an axis g does not divide is shorter): int4's default, g = 32,
                                 since 15 levels over a whole channel leave small weights at zero.
The result is de-quantised float32, so the model runs unchanged while holding only what the integer
grid can represent.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

INT4_GROUP_SIZE = 32


@functools.partial(jax.jit, static_argnames=("bits", "group_size"))
def quantize(params, bits: int, group_size: int | None = None):
  top = 2 ** (bits - 1) - 1

  def on_grid(w):
    scale = jnp.max(jnp.abs(w), axis=0, keepdims=True) / top
    scale = jnp.where(scale > 0, scale, 1.0)
    return jnp.clip(jnp.round(w / scale), -top, top) * scale

  def quantize_array(w):
    if w.ndim < 2:
      return w
    if group_size is None or group_size >= w.shape[0]:
      return on_grid(w).astype(w.dtype)
    groups = -(-w.shape[0] // group_size)
    padded = jnp.pad(w, [(0, groups * group_size - w.shape[0])] + [(0, 0)] * (w.ndim - 1))
    grouped = padded.reshape(groups, group_size, *w.shape[1:])
    return jax.vmap(on_grid)(grouped).reshape(padded.shape)[:w.shape[0]].astype(w.dtype)

  return jax.tree.map(quantize_array, params)


def quantize_int8(params):
  return quantize(params, bits=8)


def quantize_int4(params, group_size: int | None = INT4_GROUP_SIZE):
  return quantize(params, bits=4, group_size=group_size)
