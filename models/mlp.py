"""The MLP of a block, by kind (`model.mlp`), with or without biases (`model.bias`).

  gelu   GPT-2's:           gelu(x W_in + b_in) W_out + b_out
  gated  LLaMA / Mistral's: (silu(x W_gate) * x W_in) W_out            (SwiGLU)
  silu   the gated MLP without its gate: silu(x W_in) W_out

`MLP(config, rngs, experts=E)` holds E such MLPs stacked on a leading `expert` axis, for the
mixture of experts (models/moe.py); they run on inputs [E, ..., d_model], one slice per expert, as
einsums. Every kind returns (output, auxiliary loss): 0 here, the load-balancing loss for a mixture.

On one CPU device the GPT-2 MLP's bias and `gelu` run as one C++ kernel (models/ops.py; tested
equal); `model.kernels="xla"` keeps the jnp math.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from models import ops
from models.params import kernel_std, param, zeros

KINDS = ("gelu", "gated", "silu")

# gelu's constants; the C++ kernel restates them (kernels/csrc/gelu.cc kSqrt2OverPi, kCubic;
# tested equal).
GELU_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_CUBIC = 0.044715


def gelu(u):
  """GPT-2's gelu, in its tanh form: u / 2 * (1 + tanh(sqrt(2 / pi) * (u + 0.044715 u³))), written
  as jax.nn.gelu writes it (tested equal bit for bit)."""
  return u * (0.5 * (1.0 + jnp.tanh(GELU_SQRT_2_OVER_PI * (u + GELU_CUBIC * (u ** 3)))))


class MLP(nnx.Module):
  def __init__(self, config, rngs: nnx.Rngs, experts: int = 0):
    d, f = config.d_model, config.d_ff
    lead, lead_axes = ((experts,), ("expert",)) if experts else ((), ())
    self.kind, self.stacked, self.kernels = config.mlp, bool(experts), config.kernels

    def kernel(fan_in, residual_output=False):
      # stored [d_model, d_ff] both ways: W_out's gradient is faster out by in (dense_transposed)
      return param(rngs, lead + (d, f), lead_axes + ("embed", "mlp"),
                   kernel_std(config, fan_in, residual_output))

    bias = lambda size, axis: zeros(lead + (size,), lead_axes + (axis,)) if config.bias else None
    self.wi, self.bi = kernel(d), bias(f, "mlp")
    self.wg = kernel(d) if self.kind == "gated" else None
    self.wo, self.bo = kernel(f, residual_output=True), bias(d, "embed")

  def __call__(self, x):
    if self.kind == "gelu":
      h = self._gelu_in(x)
    elif self.kind == "silu":
      h = jax.nn.silu(self._in(x, self.wi, self.bi))
    else:
      h = jax.nn.silu(self._in(x, self.wg, None)) * self._in(x, self.wi, self.bi)
    return self._out(h), jnp.zeros((), jnp.float32)

  def _gelu_in(self, x):
    """gelu(x W_in + b_in)."""
    y = self._in(x, self.wi, None)
    b = None if self.bi is None else self._broadcast(self.bi, y)
    if self.stacked:  # experts: einsums and jnp throughout
      return gelu(y if b is None else y + b)
    return ops.bias_gelu(gelu, y, b, kernels=self.kernels)

  def _in(self, x, w, b):
    w = w[...].astype(x.dtype)
    y = jnp.einsum("e...d,edf->e...f", x, w) if self.stacked else ops.dense(x, w)
    return y if b is None else y + self._broadcast(b, y)

  def _out(self, h):
    w = self.wo[...].astype(h.dtype)
    y = jnp.einsum("e...f,edf->e...d", h, w) if self.stacked else ops.dense_transposed(h, w)
    return y if self.bo is None else y + self._broadcast(self.bo, y)

  def _broadcast(self, b, like):
    """A bias [(E,) n] shaped to add to [(E,) ..., n]."""
    b = b[...].astype(like.dtype)
    return b.reshape(b.shape[:1] + (1,) * (like.ndim - 2) + b.shape[1:]) if self.stacked else b
