"""Hand-written CPU kernels (csrc/), built on first use and called through XLA's FFI.

The C++ source is compiled once per machine with the system's C++ compiler into a cache folder
(`$SYNTHSTUDIES_CACHE`, else `~/.cache/synthstudies`), keyed by the source, jaxlib's FFI headers,
the compiler and the CPU, so a shared home directory on a mixed cluster never loads a binary built
for another CPU. Without a compiler, or on a build error, `targets()` is None (with one warning)
and models/ops.py runs the model's jnp math instead.

  attention(q, k, v, mask, bias), mix(weights, v)   csrc/attention.cc: softmax, fixed patterns
  packed_attention(qkv, mask, bias)                 the same on one [B, T, 3, H, D] projection
  norm(x, scale, bias, centred)                     csrc/norm.cc: LayerNorm / RMSNorm
  bias_gelu(y, bias)                                csrc/gelu.cc: the GPT-2 MLP's activation

Each restates the arithmetic of the model's jnp code (models.masking.masked_softmax,
models.transformer.norm, models.mlp.gelu) and its constants, which
tests/unit/models/test_cpu_kernels.py checks equal. They see whole arrays: ops calls them on one CPU device only.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np

_CSRC = os.path.join(os.path.dirname(__file__), "csrc")
SOURCES = [os.path.join(_CSRC, name) for name in ("attention.cc", "norm.cc", "gelu.cc")]
HEADERS = [os.path.join(_CSRC, "common.h")]
FLAGS = ["-O3", "-march=native", "-std=c++20", "-shared", "-fPIC"]
TARGETS = {"AttentionForward": "synthstudies_attention_forward",
           "AttentionBackward": "synthstudies_attention_backward",
           "MixForward": "synthstudies_mix_forward",
           "NormForward": "synthstudies_norm_forward", "NormBackward": "synthstudies_norm_backward",
           "BiasGeluForward": "synthstudies_bias_gelu_forward",
           "BiasGeluBackward": "synthstudies_bias_gelu_backward"}
HEAD_DIMS = tuple(range(8, 65, 8))  # the kernel's whole vectors of 8 floats, up to 8 of them
# Per (example, head): the scratch rows of longer sequences leave the cache. Up to here the kernel
# beats XLA's fusions (fwd + bwd, interleaved; docs/performance.md): on AVX-512 Zen 4 by 1.16-1.47x
# over all keys up to head_dim 64 x 512 keys, and 1.8-2.1x causal.
MAX_SCORES = 2**18
_REGISTERED: list = []


def _cpu_signature() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next((line for line in f if line.startswith(("flags", "Features"))), "")
  except OSError:
    return platform.processor()


def _cache_dir() -> str:
  """$SYNTHSTUDIES_CACHE, else ~/.cache/synthstudies, else (a read-only home) the temp folder."""
  for folder in (os.environ.get("SYNTHSTUDIES_CACHE"), os.path.expanduser("~/.cache/synthstudies"),
                 os.path.join(tempfile.gettempdir(),
                              f"synthstudies-{getattr(os, 'getuid', lambda: 0)()}")):
    if folder:
      try:
        os.makedirs(folder, exist_ok=True)
        if os.access(folder, os.W_OK):
          return folder
      except OSError:
        pass
  raise OSError("no writable folder for the compiled kernel (set SYNTHSTUDIES_CACHE)")


def _build(compiler: str) -> str:
  """Path of the compiled library, building it if this machine has not yet."""
  include = jax.ffi.include_dir()
  key = hashlib.sha256()
  header = os.path.join(include, "xla/ffi/api/ffi.h")
  for name in SOURCES + HEADERS + [header]:
    with open(name, "rb") as f:
      key.update(f.read())
  for part in (compiler, " ".join(FLAGS), platform.machine(), _cpu_signature()):
    key.update(part.encode())
  cache = _cache_dir()
  path = os.path.join(cache, f"kernels-{key.hexdigest()[:16]}.so")
  if not os.path.exists(path):
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
    os.close(fd)
    try:
      subprocess.run([compiler, *FLAGS, "-isystem", include, *SOURCES, "-o", tmp], check=True,
                     capture_output=True, text=True)
      os.replace(tmp, path)  # atomic: concurrent runs of a sweep never load a half-written file
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  return path


@functools.cache
def targets() -> dict[str, str] | None:
  """The registered FFI target names, or None when the kernels cannot be built here."""
  compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
  try:
    if compiler is None:
      raise OSError("no C++ compiler (set CXX)")
    library = ctypes.cdll.LoadLibrary(_build(compiler))
  except (OSError, subprocess.CalledProcessError) as error:
    detail = getattr(error, "stderr", "") or str(error)
    warnings.warn(f"CPU kernels unavailable, using XLA's fusions: {detail.strip()[:300]}")
    return None
  if not _REGISTERED:  # XLA keeps a process-wide registry: once per process
    for symbol, name in TARGETS.items():
      jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, symbol)),
                                  platform="cpu")
    _REGISTERED.append(library)  # and the library stays loaded while XLA holds its handlers
  return TARGETS


def attention_fits(q, k) -> bool:
  """Whether `attention` and `mix` take these q, k [B, T, H, D] (arrays or ShapeDtypeStructs):
  float32, head_dim 8k up to 64, scores within MAX_SCORES, and the kernels built."""
  return (q.dtype == k.dtype == jnp.float32 and q.shape[-1] in HEAD_DIMS
          and q.shape[1] * k.shape[1] <= MAX_SCORES
          and targets() is not None)


def rows_fit(x) -> bool:
  """Whether `norm` and `bias_gelu` take this [..., width] input: float32, width 8k, and the
  kernels built."""
  return x.dtype == jnp.float32 and x.shape[-1] % 8 == 0 and targets() is not None


def matmul_flops(target: str, shapes) -> int:
  """The matmul FLOPs of one call of `target` on inputs of these shapes, as the XLA path
  counts them: attention's forward two products (q k^T, weights v) and backward four (d_v,
  d_weights, d_q, d_k); a fixed mix's one each way; the row kernels' (norm, bias_gelu) none."""
  if target.startswith(("synthstudies_norm", "synthstudies_bias_gelu")):
    return 0
  if target == TARGETS["MixForward"]:
    (_, heads, q_len, k_len), (batch, *_, dim) = shapes[:2]
    return 2 * batch * heads * q_len * k_len * dim
  if len(shapes[0]) == 5:  # packed: [B, T, 3, H, D]
    batch, q_len, _, heads, dim = shapes[0]
    k_len = q_len
  else:
    (batch, q_len, heads, dim), (_, k_len, *_) = shapes[:2]
  products = 2 if target == TARGETS["AttentionForward"] else 4
  return products * 2 * batch * heads * q_len * k_len * dim


@functools.cache
def _row_pad() -> int:
  """The multiple the kernel pads its rows over the keys (weights, mask, bias) to: whole wide
  vectors. Asked of the loaded library (csrc/attention.cc kRowPad) once, so that it is stated
  once."""
  _registered()
  library = _REGISTERED[0]
  library.synthstudies_row_pad.restype = ctypes.c_int64
  return library.synthstudies_row_pad()


def _padded_keys(k_len: int) -> int:
  """The kernel's row length over k_len keys: rounded up to `_row_pad()`."""
  return k_len + -k_len % _row_pad()


def _operands(q_len: int, k_len: int, mask, bias):
  """The kernel's mask [Bm, Tq, Tk'], its rows' extents [Bm, Tq] and bias [Bb, Hb, Tq, Tk']
  (placeholders when absent), rows padded to Tk' = a multiple of `_row_pad()`: the kernel reads
  them in whole vectors. A row's extent is 1 + the last key it may see (k_len where it sees none):
  the kernel computes no further (for a causal mask, a constant folded at compile time)."""
  scores = (q_len, k_len)
  pad = [(0, 0)] * 2 + [(0, _padded_keys(k_len) - k_len)]
  if mask is None:
    mask, extents = jnp.zeros((1, 1, _row_pad()), bool), jnp.zeros((1, 1), jnp.int32)
  else:
    mask = jnp.broadcast_to(mask[:, 0], mask.shape[:1] + scores)
    # a max, not an argmax: XLA folds a constant mask's argmax (a variadic reduce) in seconds
    ends = jnp.max(jnp.where(mask, jnp.arange(1, k_len + 1, dtype=jnp.int32), 0), axis=-1)
    extents = jnp.where(ends == 0, k_len, ends)
    mask = jnp.pad(mask, pad)
  bias = (jnp.zeros((1, 1, 1, _row_pad()), jnp.float32) if bias is None
          else jnp.pad(jnp.broadcast_to(bias.astype(jnp.float32), bias.shape[:2] + scores),
                       [(0, 0)] + pad))
  return mask, extents, bias


@jax.custom_vjp
def attention(q, k, v, mask, bias):
  """softmax(q k^T / sqrt(D) + bias, masked) v by the kernel; the arguments of
  `xla.softmax_attention` after its softmax."""
  return _forward(q, k, v, mask, bias)[0]


@jax.custom_vjp
def packed_attention(qkv, mask, bias):
  """`attention` of self-attention's q, k, v = qkv [B, T, 3, H, D] (a fused projection, unsplit):
  the kernel reads them in place, and their gradient is one array of the same layout, where a
  split and its gradient's concatenate would each copy them."""
  return _forward(qkv, None, None, mask, bias)[0]


def _registered() -> dict[str, str]:
  names = targets()
  if names is None:
    raise RuntimeError("the CPU kernels are not available here; check attention_fits() first")
  return names


def _unpacked(k, v):
  """The kernel's k and v operands: one-float placeholders when q is packed (k and v None)."""
  return (k, v) if k is not None else (jnp.zeros((1,), jnp.float32),) * 2


def _forward(q, k, v, mask, bias):
  """k and v None: q is packed [B, T, 3, H, D]."""
  packed = k is None
  batch, q_len, *_, heads, dim = q.shape
  k_len = q_len if packed else k.shape[1]
  kernel_mask, extents, kernel_bias = _operands(q_len, k_len, mask, bias)
  out, weights = jax.ffi.ffi_call(
      _registered()["AttentionForward"],
      (jax.ShapeDtypeStruct((batch, q_len, heads, dim), jnp.float32),
       jax.ShapeDtypeStruct((batch, heads, q_len, _padded_keys(k_len)), jnp.float32)),  # softmax
      vmap_method="sequential")(q, *_unpacked(k, v), kernel_mask, extents, kernel_bias,
                                has_mask=mask is not None, has_bias=bias is not None, packed=packed)
  return out, (q, k, v, mask, extents, bias, out, weights)


def _backward(residuals, d_out):
  q, k, v, mask, extents, bias, out, weights = residuals
  packed = k is None
  batch, q_len, *_, heads, _ = q.shape
  k_len = q_len if packed else k.shape[1]
  logits_shape = (batch, heads, q_len, k_len) if bias is not None else (1, 1, 1, 1)
  d_q, d_k, d_v, d_logits = jax.ffi.ffi_call(
      _registered()["AttentionBackward"],
      tuple(jax.ShapeDtypeStruct(x.shape, jnp.float32) for x in (q, *_unpacked(k, v)))
      + (jax.ShapeDtypeStruct(logits_shape, jnp.float32),),
      vmap_method="sequential")(q, *_unpacked(k, v), out, weights, d_out, extents,
                                has_mask=mask is not None, has_bias=bias is not None,
                                packed=packed)
  d_bias = None
  if bias is not None:
    axes = tuple(i for i, (n, m) in enumerate(zip(bias.shape, d_logits.shape)) if n == 1 < m)
    d_bias = d_logits.sum(axes, keepdims=True).astype(bias.dtype)
  d_mask = None if mask is None else np.zeros(mask.shape, jax.dtypes.float0)
  return (d_q, d_mask, d_bias) if packed else (d_q, d_k, d_v, d_mask, d_bias)


attention.defvjp(_forward, _backward)
packed_attention.defvjp(lambda qkv, mask, bias: _forward(qkv, None, None, mask, bias), _backward)


@jax.custom_vjp
def mix(weights, v):
  """weights [Bw (1 or B), H, Tq, Tk] times v [B, Tk, H, D] -> [B, Tq, H, D] by the kernel, for
  fixed attention patterns: the weights take no gradient (a zero cotangent)."""
  return _mixed(weights, v)


def _mixed(weights, v):
  shape = (v.shape[0], weights.shape[2]) + v.shape[2:]
  return jax.ffi.ffi_call(_registered()["MixForward"], jax.ShapeDtypeStruct(shape, jnp.float32),
                          vmap_method="sequential")(weights.astype(jnp.float32), v)


def _mix_forward(weights, v):
  return _mixed(weights, v), weights


def _mix_backward(weights, d_out):
  """d_v = weights^T d_out: the same kernel on the transposed patterns (for LEGO's fixed patterns
  a constant, transposed once at compile time)."""
  return jnp.zeros_like(weights), _mixed(jnp.swapaxes(weights, 2, 3), d_out)


mix.defvjp(_mix_forward, _mix_backward)


def _bias_or_zeros(bias, y):
  """The kernels' bias operand: zeros standing in for none (their has_bias says which)."""
  return jnp.zeros(y.shape[-1:], jnp.float32) if bias is None else bias


def _like(a, x):
  """`a` (a parameter; None stays None) in x's dtype: under jax_enable_x64 parameters can be
  float64, and the kernels take float32 operands only."""
  return None if a is None else a.astype(x.dtype)


def norm(x, scale, bias, centred: bool):
  """LayerNorm (centred) or RMSNorm of x [..., width] by the kernel, `models.transformer.norm`'s
  arithmetic: (x - mean) / sqrt(var + epsilon) * scale (+ bias; None for none), mean 0 uncentred."""
  return _norm(x, _like(scale, x), _like(bias, x), centred)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _norm(x, scale, bias, centred: bool):
  return _norm_forward(x, scale, bias, centred)[0]


def _norm_forward(x, scale, bias, centred):
  y, stats = jax.ffi.ffi_call(
      _registered()["NormForward"],
      (jax.ShapeDtypeStruct(x.shape, jnp.float32),
       jax.ShapeDtypeStruct(x.shape[:-1] + (2,), jnp.float32)),  # each row's mean, 1 / std
      vmap_method="sequential")(x, scale, _bias_or_zeros(bias, x), centred=centred,
                                has_bias=bias is not None)
  return y, (x, scale, bias, stats)


def _norm_backward(centred, residuals, d_y):
  x, scale, bias, stats = residuals
  per_column = jax.ShapeDtypeStruct(scale.shape, jnp.float32)
  d_x, d_scale, d_bias = jax.ffi.ffi_call(
      _registered()["NormBackward"],
      (jax.ShapeDtypeStruct(x.shape, jnp.float32), per_column, per_column),
      vmap_method="sequential")(x, scale, stats, d_y, centred=centred)
  return d_x, d_scale, None if bias is None else d_bias


_norm.defvjp(_norm_forward, _norm_backward)


def bias_gelu(y, bias):
  """`models.mlp.gelu`(y + bias) (tanh form) of y [..., width] by the kernel; bias [width] or
  None."""
  return _bias_gelu(y, _like(bias, y))


@jax.custom_vjp
def _bias_gelu(y, bias):
  return jax.ffi.ffi_call(_registered()["BiasGeluForward"],
                          jax.ShapeDtypeStruct(y.shape, jnp.float32),
                          vmap_method="sequential")(y, _bias_or_zeros(bias, y),
                                                    has_bias=bias is not None)


def _bias_gelu_forward(y, bias):
  return _bias_gelu(y, bias), (y, bias)


def _bias_gelu_backward(residuals, d_out):
  y, bias = residuals
  d_y, d_bias = jax.ffi.ffi_call(
      _registered()["BiasGeluBackward"],
      (jax.ShapeDtypeStruct(y.shape, jnp.float32), jax.ShapeDtypeStruct(y.shape[-1:], jnp.float32)),
      vmap_method="sequential")(y, _bias_or_zeros(bias, y), d_out, has_bias=bias is not None)
  return d_y, None if bias is None else d_bias


_bias_gelu.defvjp(_bias_gelu_forward, _bias_gelu_backward)
