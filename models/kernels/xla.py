"""XLA's fusions with our own backward or layout, where XLA's choice is slow.

  dense, dense_transposed   x @ kernel, whose weight gradients need no transposed copies
  softmax_attention         the model's masked softmax forward, our attention backward
  weighted_values           attention weights times values as a head-major matmul
  in_batch_chunks           an attention in slices of the batch, for XLA:CPU's second thread
  gradient_wall             the identity, whose gradient XLA:CPU computes once
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@jax.custom_vjp
def dense(x, kernel):
  """x [..., d_in] @ kernel [d_in, d_out].

  Autodiff writes the kernel's gradient as a dot followed by a transpose; XLA:CPU then copies the
  output gradient into a transposed [d_out, tokens] array for every weight (a d_model 512 decoder
  step takes 1.54 s with those copies, 1.24 s without). Contracting the flattened tokens of x and
  the gradient directly needs no copy.
  """
  return x @ kernel


def _dense_fwd(x, kernel):
  return x @ kernel, (x, kernel)


def _dense_bwd(residuals, d_y):
  x, kernel = residuals
  return _matmul_transposed(d_y, kernel), _contract_tokens(x, d_y)


dense.defvjp(_dense_fwd, _dense_bwd)


@jax.custom_vjp
def dense_transposed(x, kernel_t):
  """x [..., d_in] @ kernel_t.T, the kernel stored [d_out, d_in]: for layers that narrow.

  A kernel gradient contracts the tokens, a dot XLA:CPU leaves to Eigen, which runs it ~1.3x
  faster when the product has fewer rows than columns: [512, 2048] in 11.2 ms, [2048, 512] in
  14.6 (2112 tokens). Storing a narrowing kernel as [d_out, d_in] (as torch's nn.Linear stores
  every kernel) gives its gradient that shape; the forward and d_x dots cost the same either way.
  """
  return _matmul_transposed(x, kernel_t)


def _dense_transposed_fwd(x, kernel_t):
  return _matmul_transposed(x, kernel_t), (x, kernel_t)


def _dense_transposed_bwd(residuals, d_y):
  x, kernel_t = residuals
  return d_y @ kernel_t, _contract_tokens(d_y, x)


dense_transposed.defvjp(_dense_transposed_fwd, _dense_transposed_bwd)


def _matmul_transposed(a, kernel_t):
  """a [..., n] @ kernel_t [m, n].T, contracting both minor axes: no transposed copy of the kernel."""
  return jax.lax.dot_general(a, kernel_t, (((a.ndim - 1,), (1,)), ((), ())))


def _contract_tokens(a, b):
  """a [..., m], b [..., n] -> [m, n]: the flattened token axes contracted, no transposed copy."""
  return jax.lax.dot_general(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]),
                             (((0,), (0,)), ((), ())))


# -- attention ------------------------------------------------------------------------------------

@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def softmax_attention(softmax, q, k, v, mask, bias):
  """softmax(q k^T / sqrt(d) + bias, masked) v, with the attention backward written out by hand.

  `softmax(logits, mask, bias)` is the model's masked softmax (models.masking.masked_softmax), in
  float32. q, k, v [B, T, H, head_dim]; `mask` [B or 1, 1, q_len, k_len] bool or None; `bias`
  [B or 1, H or 1, q_len, k_len] float or None. The backward reads the softmax's row sums as
  rowsum(dO * O) (as flash attention does): XLA's autodiff of the softmax instead reduces a
  [B, H, T, T] product and, on CPU, fuses that reduction into a matmul, the slowest op of the step.

  Every matmul is an explicit dot_general on head-major [B, H, T, head_dim] arrays: `jnp.einsum`
  picks its own operand order, and for weights·v and three of the backward's products it puts the
  head_dim axis before the sequence, so each change of layout swaps the two minor axes, which
  XLA:CPU copies ~4x slower than it moves whole head_dim rows (docs/performance.md).
  """
  return _softmax_attention_forward(softmax, q, k, v, mask, bias)[0]


def _heads_major(x):
  """[B, T, H, head_dim] <-> [B, H, T, head_dim]."""
  return x.transpose(0, 2, 1, 3)


def _per_head_matmul(a, b, contract_a: int, contract_b: int, **kwargs):
  """A matmul batched over the leading (batch, head) axes of two head-major arrays."""
  return jax.lax.dot_general(a, b, (((contract_a,), (contract_b,)), ((0, 1), (0, 1))), **kwargs)


def _softmax_attention_forward(softmax, q, k, v, mask, bias):
  q, k, v = map(_heads_major, (q, k, v))
  logits = _per_head_matmul(q, k, 3, 3, preferred_element_type=jnp.float32)
  weights = softmax(logits * q.shape[-1] ** -0.5, mask, bias)
  out = _per_head_matmul(weights.astype(v.dtype), v, 3, 2)
  return _heads_major(out), (q, k, v, mask, bias, weights, out)


def _softmax_attention_backward(softmax, residuals, d_out):
  del softmax  # the weights are kept
  q, k, v, mask, bias, weights, out = residuals  # head-major
  scale = q.shape[-1] ** -0.5
  d_out = _heads_major(d_out)
  d_v = _per_head_matmul(weights.astype(d_out.dtype), d_out, 2, 2)
  d_weights = _per_head_matmul(d_out, v, 3, 3, preferred_element_type=jnp.float32)
  # element-wise and reduced, not a dot: O(B T d) work, and the step's matmul FLOPs stay exact
  row = (d_out.astype(jnp.float32) * out.astype(jnp.float32)).sum(-1)
  d_logits = weights * (d_weights - row[..., None])  # zero wherever the mask is
  d_q = _per_head_matmul(d_logits.astype(q.dtype), k, 3, 2) * scale
  d_k = _per_head_matmul(d_logits.astype(q.dtype), q, 2, 2) * scale
  d_bias = None if bias is None else _sum_to_shape(d_logits, bias.shape).astype(bias.dtype)
  d_mask = None if mask is None else np.zeros(mask.shape, jax.dtypes.float0)
  return _heads_major(d_q), _heads_major(d_k), _heads_major(d_v), d_mask, d_bias


def _sum_to_shape(x, shape):
  """Sums the axes that broadcasting stretched from `shape` (same rank) up to x.shape."""
  axes = tuple(i for i, (n, m) in enumerate(zip(shape, x.shape)) if n == 1 and m != 1)
  return x.sum(axes, keepdims=True)


softmax_attention.defvjp(_softmax_attention_forward, _softmax_attention_backward)


def weighted_values(weights, v):
  """weights [B or 1, H, q, k] times v [B, k, H, head_dim] -> [B, q, H, head_dim].

  An explicit head-major matmul: `jnp.einsum` orders it as v times weights, whose [B, H, head_dim,
  q] product then needs a transpose of the two minor axes (LEGO's fixed heads: a default LEGO step
  4.8% faster without it).
  """
  return _heads_major(_per_head_matmul(weights.astype(v.dtype), _heads_major(v), 3, 2))


# XLA:CPU runs a batched matmul on one thread (YNNPACK splits a large matrix, not the batch) and
# hands independent ops to a second thread only when more than 8 are ready at once. Batch chunks
# give it that many independent attention computations, when each is big enough to pay for its own
# ops: a d_model 512 decoder step 5% faster, d_model 256 3%; d_model 128 (2^17 scores) 5% slower.
CPU_BATCH_CHUNKS = 8
MIN_SCORES_PER_CHUNK = 2**17


def in_batch_chunks(fn, q, k, *arrays):
  """fn(q, k, *arrays) on up to CPU_BATCH_CHUNKS slices of the batch, concatenated: for one CPU
  device (elsewhere a batched matmul uses the device, and a mesh splits the batch).

  q, k [batch, length, heads, head_dim]. Arrays with a leading axis of 1 (broadcast over the
  batch) and None pass whole to every chunk.
  """
  batch, q_len, heads, _ = q.shape
  scores = batch * heads * q_len * k.shape[1]
  chunks = min(CPU_BATCH_CHUNKS, batch, scores // MIN_SCORES_PER_CHUNK)
  if chunks <= 1:
    return fn(q, k, *arrays)
  # split, not slices: the gradient of a split is one concatenate, of slices a sum of padded arrays
  bounds = list(np.linspace(0, batch, chunks + 1).astype(int)[1:-1])
  parts = [[a] * chunks if a is None or a.shape[0] == 1 else jnp.split(a, bounds)
           for a in (q, k, *arrays)]
  return jnp.concatenate([fn(*args) for args in zip(*parts)])


# -- the residual stream --------------------------------------------------------------------------

@jax.custom_vjp
def gradient_wall(x):
  """The identity, whose gradient XLA's CPU backend computes once instead of once per use.

  On CPU, XLA fuses the residual stream's gradient (the chain of every later block's LayerNorm
  backward) into each weight gradient's transposing copy and recomputes it there: O(layers²) work,
  about a fifth of a small model's step. A conditional's operand is materialised, so the chain is
  computed once per block. The conditional's other branch exists only so that XLA cannot fold it
  away: a NaN at the gradient's first element turns all of it NaN, as the global-norm clipping of
  the update would anyway.
  """
  return x


def _gradient_wall_bwd(_, g):
  first = g[(0,) * g.ndim]
  return (jax.lax.cond(jnp.isnan(first), lambda g: jnp.full_like(g, jnp.nan), lambda g: g, g),)


gradient_wall.defvjp(lambda x: (x, None), _gradient_wall_bwd)
