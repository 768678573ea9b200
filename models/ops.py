"""The one place that chooses how an op runs: a C++ kernel (models/kernels/cpu.py) or XLA
(models/kernels/xla.py), per op and shape, under the model's switch `model.kernels`:

  auto    on one CPU device, the C++ kernels in place of the jnp math wherever they build and fit
          the shapes (tests/unit/models/test_cpu_kernels.py holds them equal to it); elsewhere XLA
  xla     XLA everywhere, no C++ kernel
  jax_nn  as xla, but attention by jax.nn.dot_product_attention(implementation="xla")
  cudnn   as xla, but attention by jax.nn.dot_product_attention(implementation="cudnn"): cuDNN's
          flash attention, on a GPU

On XLA, attention runs the model's softmax with our hand-written backward (`xla.softmax_attention`)
unless a jax.nn route is named. The model files hold the math in jnp and call these ops, passing
the switch; none of them chooses a backend itself.
"""
from __future__ import annotations

import functools

import jax

from models import masking
from models.kernels import cpu, xla

KERNELS = ("auto", "xla", "jax_nn", "cudnn")
_JAX_NN = {"jax_nn": "xla", "cudnn": "cudnn"}  # the switch's jax.nn routes: their implementation

# Every projection, on every backend: XLA's matmul, with weight gradients free of transposed copies.
dense, dense_transposed = xla.dense, xla.dense_transposed


def _one_cpu() -> bool:
  """One CPU device: no accelerator, and no mesh to split the batch over."""
  return jax.default_backend() == "cpu" and jax.device_count() == 1


def _rows_on_cpu_kernel(x, kernels: str) -> bool:
  return kernels == "auto" and _one_cpu() and cpu.rows_fit(x)


def _attention_on_cpu_kernel(q, k, kernels: str) -> bool:
  return kernels == "auto" and _one_cpu() and cpu.attention_fits(q, k)


def norm(math, x, scale, bias, centred: bool, *, kernels: str):
  """math(x, scale, bias, centred): the model's LayerNorm / RMSNorm of x [..., width]; on one CPU
  device the C++ kernel instead (one pass each way, where XLA makes ~10)."""
  if _rows_on_cpu_kernel(x, kernels):
    return cpu.norm(x, scale, bias, centred)
  return math(x, scale, bias, centred)


def bias_gelu(gelu, y, bias, *, kernels: str):
  """gelu(y + bias), the model's gelu, of y [..., width] and one bias row [width] or None; on one
  CPU device the C++ kernel instead (one pass each way, the bias gradient included)."""
  if _rows_on_cpu_kernel(y, kernels):
    return cpu.bias_gelu(y, bias)
  return gelu(y if bias is None else y + bias)


def residual_add(x, y, *, kernels: str):
  """x + y; on CPU behind a gradient wall (`xla.gradient_wall`) where XLA differentiates the norms
  itself. A GPU would pay a host sync per conditional; the norm kernel's backward is one opaque call
  that XLA cannot fuse into the weight gradients (without the wall the default LEGO and knowledge
  steps run 1.04x faster, the arithmetic one 0.985x: docs/performance.md)."""
  if jax.default_backend() == "cpu" and not _rows_on_cpu_kernel(x, kernels):
    return xla.gradient_wall(x + y)
  return x + y


def attention(q, k, v, *, causal: bool, key_mask=None, bias=None, kernels: str):
  """softmax(q k^T / sqrt(d) + bias) v over the keys each query sees (models.masking), q [B, Tq, H,
  d], k and v [B, Tk, H, d], bias [B or 1, H or 1, Tq, Tk] or None: on one CPU device the C++
  kernel where it fits; else XLA's fusions, the model's softmax, our backward; or jax.nn's."""
  if kernels in _JAX_NN:
    mask = None if key_mask is None else masking.key_mask_4d(key_mask)
    if bias is not None:
      bias = bias.astype(q.dtype)
    return jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, is_causal=causal,
                                        implementation=_JAX_NN[kernels])
  mask = masking.attention_mask(q.shape[1], k.shape[1], causal, key_mask)
  if _attention_on_cpu_kernel(q, k, kernels):
    return cpu.attention(q, k, v, mask, bias)
  attend = functools.partial(xla.softmax_attention, masking.masked_softmax)
  if _one_cpu():
    return xla.in_batch_chunks(attend, q, k, v, mask, bias)
  return attend(q, k, v, mask, bias)


def self_attention(qkv, split, *, causal: bool, key_mask=None, bias=None, kernels: str):
  """`attention` of q, k, v = split(qkv), packed as one projection made them, qkv [B, T, 3, H, d]:
  the C++ kernel reads them in place, and their gradient is one array in that layout, where a
  split and its gradient's concatenate would each copy them."""
  like = jax.ShapeDtypeStruct(qkv.shape[:2] + qkv.shape[3:], qkv.dtype)
  if _attention_on_cpu_kernel(like, like, kernels):
    length = qkv.shape[1]
    return cpu.packed_attention(qkv, masking.attention_mask(length, length, causal, key_mask),
                                bias)
  return attention(*split(qkv), causal=causal, key_mask=key_mask, bias=bias, kernels=kernels)


def mix(weights, v, *, kernels: str):
  """Fixed attention weights [B or 1, H, Tq, Tk] times v [B, Tk, H, d] (LEGO's fixed heads): on
  one CPU device the C++ kernel where it fits, else a head-major matmul on XLA."""
  if _attention_on_cpu_kernel(v, v, kernels):
    return cpu.mix(weights, v)
  return xla.weighted_values(weights, v)
