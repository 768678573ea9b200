"""x @ kernel with a backward that XLA's CPU backend runs without transposing copies."""
from __future__ import annotations

import jax


@jax.custom_vjp
def dense(x, kernel):
  """x [..., d_in] @ kernel [d_in, d_out].

  Autodiff writes the kernel's gradient as a dot followed by a transpose; XLA:CPU then copies the
  output gradient into a transposed [d_out, tokens] array for every weight (a d_model 512 decoder
  step took 1.54 s with those copies, 1.24 s without). Contracting the flattened tokens of x and
  the gradient directly needs no copy.
  """
  return x @ kernel


def _dense_fwd(x, kernel):
  return x @ kernel, (x, kernel)


def _dense_bwd(residuals, d_y):
  x, kernel = residuals
  d_x = jax.lax.dot_general(d_y, kernel, (((d_y.ndim - 1,), (1,)), ((), ())))
  d_kernel = jax.lax.dot_general(x.reshape(-1, x.shape[-1]), d_y.reshape(-1, d_y.shape[-1]),
                                 (((0,), (0,)), ((), ())))  # contract the flattened tokens
  return d_x, d_kernel


dense.defvjp(_dense_fwd, _dense_bwd)
