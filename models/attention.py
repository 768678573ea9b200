"""Attention: kernels and the attention modules, selected by name (`model.attention`).

Every variant is a module with one signature,
    (x, positional, positions, key_mask, capture, tokens=None)
        -> (output [B, T, d], weights [B, H, T, T] or None)
and each has a fast path and a reference path that records its weights (`capture=True`). `tokens`
[B, T] are the input ids: only variants whose fixed patterns depend on token identity read them.

  vanilla   learned softmax(q k^T) heads
  lego      the first heads follow fixed patterns (manipulation: a local kernel; association:
            identical tokens) with no Q/K projections and no q k^T; the rest are learned
  conv_qkv  vanilla with a depthwise convolution along the sequence on q, k and v

The fast path (`fast_attention`) is `softmax_attention`, XLA's fusions with a hand-written backward,
or `jax.nn.dot_product_attention` (cuDNN flash attention on GPU) when `model.attention_impl` asks;
the reference path computes the weights explicitly so probing can record them. Tests prove they agree.

Shapes: q, k, v [batch, length, heads, head_dim]; `key_mask` [batch, length] bool (True = attend).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models import cpu_kernels
from models.linear import dense
from models.params import kernel_std, param
from models.positional import PositionalEncoding

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


IMPLEMENTATIONS = (None, "jax", "xla", "cudnn")


def fast_attention(q, k, v, *, causal: bool, key_mask=None, bias=None, implementation=None):
  """softmax(q k^T / sqrt(d) + bias) v, through the implementation `model.attention_impl` names.

  None: on one CPU device, the C++ kernel (models.cpu_kernels) when it builds and fits the shapes;
  otherwise, and with 'jax', `softmax_attention`: XLA's fusions with our backward.
  'xla' / 'cudnn': `jax.nn.dot_product_attention` (cuDNN flash attention on GPU).
  """
  if implementation in (None, "jax"):
    mask = attention_mask(q.shape[1], k.shape[1], causal, key_mask)
    if takes_cpu_kernel(q, k, implementation):
      return cpu_kernels.attention(q, k, v, mask, bias)
    return in_batch_chunks(softmax_attention, q, k, v, mask, bias)
  mask = None if key_mask is None else key_mask[:, None, None, :]
  if bias is not None:
    bias = bias.astype(q.dtype)
  return jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, is_causal=causal,
                                      implementation=implementation)


def takes_cpu_kernel(q, k, implementation) -> bool:
  """Whether `fast_attention` runs these q, k (arrays or ShapeDtypeStructs) on the C++ kernel."""
  return implementation is None and cpu_kernels.usable(q, k)


# XLA:CPU runs a batched matmul on one thread (YNNPACK splits a large matrix, not the batch) and
# hands independent ops to a second thread only when more than 8 are ready at once. Batch chunks
# give it that many independent attention computations, when each is big enough to pay for its own
# ops: a d_model 512 decoder step 5% faster, d_model 256 3%; d_model 128 (2^17 scores) 5% slower.
CPU_BATCH_CHUNKS = 8
MIN_SCORES_PER_CHUNK = 2**17


def in_batch_chunks(fn, q, k, *arrays):
  """fn(q, k, *arrays) on up to CPU_BATCH_CHUNKS slices of the batch, concatenated (one CPU only).

  q, k [batch, length, heads, head_dim]. Arrays with a leading axis of 1 (broadcast over the
  batch) and None pass whole to every chunk.
  """
  batch, q_len, heads, _ = q.shape
  scores = batch * heads * q_len * k.shape[1]
  chunks = min(CPU_BATCH_CHUNKS, batch, scores // MIN_SCORES_PER_CHUNK)
  if jax.default_backend() != "cpu" or jax.device_count() > 1 or chunks <= 1:
    return fn(q, k, *arrays)  # elsewhere a batched matmul uses the device; a mesh splits the batch
  # split, not slices: the gradient of a split is one concatenate, of slices a sum of padded arrays
  bounds = list(np.linspace(0, batch, chunks + 1).astype(int)[1:-1])
  parts = [[a] * chunks if a is None or a.shape[0] == 1 else jnp.split(a, bounds)
           for a in (q, k, *arrays)]
  return jnp.concatenate([fn(*args) for args in zip(*parts)])


@jax.custom_vjp
def softmax_attention(q, k, v, mask, bias):
  """softmax(q k^T / sqrt(d) + bias, masked) v, with the attention backward written out by hand.

  `mask` [B or 1, 1, q_len, k_len] bool or None; `bias` [B or 1, H or 1, q_len, k_len] float or
  None. The backward reads the softmax's row sums as rowsum(dO * O) (as flash attention does): XLA's
  autodiff of the softmax instead reduces a [B, H, T, T] product and, on CPU, fuses that reduction
  into a matmul, the slowest op of the step.

  Every matmul is an explicit dot_general on head-major [B, H, T, head_dim] arrays: `jnp.einsum`
  picks its own operand order, and for weights·v and three of the backward's products it put the
  head_dim axis before the sequence, so each change of layout swapped the two minor axes, which
  XLA:CPU copies ~4x slower than it moves whole head_dim rows (docs/performance.md).
  """
  return _softmax_attention_forward(q, k, v, mask, bias)[0]


def _heads_major(x):
  """[B, T, H, head_dim] <-> [B, H, T, head_dim]."""
  return x.transpose(0, 2, 1, 3)


def _per_head_matmul(a, b, contract_a: int, contract_b: int, **kwargs):
  """A matmul batched over the leading (batch, head) axes of two head-major arrays."""
  return jax.lax.dot_general(a, b, (((contract_a,), (contract_b,)), ((0, 1), (0, 1))), **kwargs)


def _softmax_attention_forward(q, k, v, mask, bias):
  q, k, v = map(_heads_major, (q, k, v))
  logits = _per_head_matmul(q, k, 3, 3, preferred_element_type=jnp.float32)
  weights = _masked_softmax(logits * q.shape[-1] ** -0.5, mask, bias)
  out = _per_head_matmul(weights.astype(v.dtype), v, 3, 2)
  return _heads_major(out), (q, k, v, mask, bias, weights, out)


def _softmax_attention_backward(residuals, d_out):
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


def _masked_softmax(logits, mask, bias):
  """softmax(logits + bias) over keys, in float32; masked-out keys get no weight."""
  if bias is not None:
    logits = logits + bias
  if mask is not None:
    logits = jnp.where(mask, logits, NEG_INF)
  return jax.nn.softmax(logits, axis=-1)


def attention_weights(q, k, *, causal: bool, key_mask=None, bias=None):
  """The softmax attention weights [batch, heads, q_len, k_len], in float32."""
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
  mask = attention_mask(q.shape[1], k.shape[1], causal, key_mask)
  return _masked_softmax(logits * q.shape[-1] ** -0.5, mask, bias)


def weighted_values(weights, v):
  """weights [B, H, q, k] times v [B, k, H, head_dim] -> [B, q, H, head_dim].

  An explicit head-major matmul: `jnp.einsum` ordered it as v times weights, whose [B, H,
  head_dim, q] product then needed a transpose of the two minor axes (LEGO's fixed heads: a
  default LEGO step 4.8% faster without it).
  """
  return _heads_major(_per_head_matmul(weights.astype(v.dtype), _heads_major(v), 3, 2))


def reference_attention(q, k, v, *, causal: bool, key_mask=None, bias=None):
  """(output, weights): the explicit computation, for probing and for testing the fast path."""
  weights = attention_weights(q, k, causal=causal, key_mask=key_mask, bias=bias)
  return weighted_values(weights, v), weights


def packed_heads(x, kernel):
  """x [B, T, d] through a fused kernel [d, s, heads, head_dim]: [B, T, s, heads, head_dim].

  One matmul in its natural [B, T, s*heads*head_dim] layout: an einsum straight to [s, B, T, ...]
  makes XLA materialise a transposed copy (about 9% of a CPU step).
  """
  d, s, h, k = kernel.shape
  return dense(x, kernel.reshape(d, s * h * k).astype(x.dtype)).reshape(*x.shape[:-1], s, h, k)


def project_heads(x, kernel):
  """`packed_heads` split into s arrays [B, T, heads, head_dim]."""
  y = packed_heads(x, kernel)
  # split, not indexing: the gradient is one concatenate instead of a sum of s padded arrays
  return tuple(part.squeeze(-3) for part in jnp.split(y, y.shape[-3], axis=-3))


def merge_heads(y, kernel):
  """y [B, T, heads, head_dim] through the output kernel [heads, head_dim, d]: [B, T, d]."""
  h, k, d = kernel.shape
  return dense(y.reshape(*y.shape[:-2], h * k), kernel.reshape(h * k, d).astype(y.dtype))


def _attend(q, k, v, *, causal, key_mask, bias, capture, implementation=None):
  """(output, weights or None) through the reference path when capturing, else the fast path."""
  if capture:
    return reference_attention(q, k, v, causal=causal, key_mask=key_mask, bias=bias)
  return fast_attention(q, k, v, causal=causal, key_mask=key_mask, bias=bias,
                        implementation=implementation), None


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
  PACKABLE = True  # q, k, v are the projection's, unchanged: the CPU kernel may read them packed

  def __init__(self, config, rngs: nnx.Rngs):
    d, h = config.d_model, config.num_heads
    self.causal = config.causal
    self.implementation = config.attention_impl  # None: softmax_attention; 'cudnn' on GPU
    self.qkv = param(rngs, (d, 3, h, d // h), ("embed", None, "heads", "head_dim"),
                     kernel_std(config, d))
    self.out = _out_projection(config, rngs)

  def project(self, x, key_mask):
    """q, k, v [batch, length, heads, head_dim]."""
    return project_heads(x, self.qkv[...])

  def __call__(self, x, positional, positions, key_mask=None, capture: bool = False, tokens=None):
    if self._reads_packed(x, positional, capture):
      mask = attention_mask(x.shape[1], x.shape[1], self.causal, key_mask)
      y = cpu_kernels.packed_attention(packed_heads(x, self.qkv[...]), mask,
                                       positional.bias(positions))
      return merge_heads(y, self.out[...]), None
    q, k, v = self.project(x, key_mask)
    q, k = positional.rotate(q, k, positions)
    y, weights = _attend(q, k, v, causal=self.causal, implementation=self.implementation,
                         key_mask=key_mask,
                         bias=positional.bias(positions), capture=capture)
    return merge_heads(y, self.out[...]), weights

  def _reads_packed(self, x, positional, capture: bool) -> bool:
    """Whether the CPU kernel takes q, k, v packed as projected: the fast path's choice of it, with
    nothing (a rotation, a convolution) between the projection and the attention."""
    heads = self.qkv.shape[-2:]
    like = jax.ShapeDtypeStruct(x.shape[:2] + heads, x.dtype)
    return (self.PACKABLE and not positional.ROTATES and not capture
            and takes_cpu_kernel(like, like, self.implementation))


def _out_projection(config, rngs: nnx.Rngs) -> nnx.Param:
  d, h = config.d_model, config.num_heads
  return param(rngs, (h, d // h, d), ("heads", "head_dim", "embed"),
               kernel_std(config, d, residual_output=True))


class ConvQKVAttention(Attention):
  """Vanilla attention whose q, k and v each pass a depthwise convolution along the sequence.

  One kernel tap per (q/k/v, head, channel), `model.conv_kernel` taps wide; padded on the left only
  in a decoder so no position sees the future. It starts as the identity (the tap at offset 0 is 1),
  i.e. as vanilla attention. Padded keys are zeroed first so they never leak into real positions.
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
  reads the token ids.
  """

  def __init__(self, config, rngs: nnx.Rngs):
    d, h = config.d_model, config.num_heads
    self.causal = config.causal
    self.implementation = config.attention_impl  # None: softmax_attention; 'cudnn' on GPU
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
    default LEGO shapes two [64, 64] matmuls and their weight gradients made the step 6% slower),
    split once (a split's gradient is one concatenate)."""
    d, h, head_dim = self.v.shape
    kernels = [self.v[...].reshape(d, h * head_dim)]
    if self.qk is not None:
      kernels.append(self.qk[...].reshape(d, -1))
    y = dense(x, jnp.concatenate(kernels, axis=1).astype(x.dtype))
    heads = [self.fixed, h - self.fixed] + [h - self.fixed] * (2 if self.qk is not None else 0)
    parts = jnp.split(y, np.cumsum(heads)[:-1] * head_dim, axis=-1)
    return [part.reshape(*x.shape[:-1], n, head_dim) for part, n in zip(parts, heads)]

  def __call__(self, x, positional, positions, key_mask=None, capture: bool = False, tokens=None):
    v_fixed, v_learned, *qk = self.project(x)
    ys, weights = [], []
    if self.fixed:
      fixed = self.fixed_patterns(tokens, key_mask)
      kernel = not capture and self.implementation is None and cpu_kernels.usable(v_fixed, v_fixed)
      ys.append(cpu_kernels.mix(fixed, v_fixed) if kernel else weighted_values(fixed, v_fixed))
      weights.append(fixed)
    if qk:
      q, k = positional.rotate(*qk, positions)
      bias = positional.bias(positions)
      if bias is not None and bias.shape[1] > 1:  # a per-head bias: the learned heads' share
        bias = bias[:, self.fixed:]
      y, w = _attend(q, k, v_learned, causal=self.causal,
                     implementation=self.implementation, key_mask=key_mask, bias=bias,
                     capture=capture)
      ys.append(y)
      weights.append(w)
    y = jnp.concatenate(ys, axis=2)
    weights = jnp.concatenate(weights, axis=1) if capture else None
    return merge_heads(y, self.out[...]), weights


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
