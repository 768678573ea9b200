"""The C++ CPU kernels (models/kernels/cpu.py) against autodiff of the jnp paths: attention's
outputs and every gradient, under masks, biases, padded key rows and every supported head size;
the norms' with and without centring and bias; bit-for-bit repeatable across their threads; the
jnp paths taking over where they cannot run; and the constants the C++ restates equal to the
model's."""
import pathlib
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax import nnx

from models import Transformer, masking, model_config, ops
from models import attention as attn_lib
from models import mlp as mlp_lib
from models import transformer as transformer_lib
from models.kernels import cpu, xla

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler here")


def _inputs(batch, q_len, k_len, heads, dim, seed=0):
  rngs = jax.random.split(jax.random.key(seed), 4)
  queries, keys = (batch, q_len, heads, dim), (batch, k_len, heads, dim)
  return [jax.random.normal(rng, shape) for rng, shape in zip(rngs, [queries, keys, keys, queries])]


def _values_and_grads(attend, q, k, v, d_out, bias):
  loss = lambda q, k, v, bias: (attend(q, k, v, bias) * d_out).sum()
  return jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(q, k, v, bias)


@needs_compiler
@pytest.mark.parametrize("batch,q_len,k_len,heads,dim,causal,masked,bias_shape", [
    (3, 62, 62, 2, 16, False, False, None),          # the LEGO default's learned heads
    (2, 9, 9, 3, 8, True, False, None),              # keys not a whole vector
    (3, 10, 10, 2, 24, False, True, (3, 2, 10, 10)),  # padded keys; a bias per example and head
    (2, 17, 17, 1, 64, True, True, (1, 1, 17, 17)),  # a bias shared by batch and heads
    (2, 7, 7, 2, 40, True, False, None),             # fewer query rows than a row block (4) + 3
    (2, 5, 12, 2, 32, False, True, (2, 1, 5, 12)),   # cross-length (q_len != k_len)
    (1, 1, 1, 1, 8, False, False, None),
])
def test_kernel_equals_autodiff_of_the_reference(batch, q_len, k_len, heads, dim, causal, masked,
                                                 bias_shape):
  q, k, v, d_out = _inputs(batch, q_len, k_len, heads, dim)
  key_mask = (jnp.arange(k_len)[None] < jnp.array([k_len, 1, k_len - 3][:batch])[:, None]
              if masked else None)
  mask = masking.attention_mask(q_len, k_len, causal and q_len == k_len, key_mask)
  bias = None if bias_shape is None else -jax.random.uniform(jax.random.key(9), bias_shape)
  got = _values_and_grads(lambda q, k, v, b: cpu.attention(q, k, v, mask, b),
                          q, k, v, d_out, bias)
  want = _values_and_grads(
      lambda q, k, v, b: attn_lib.reference_attention(
          q, k, v, causal=causal and q_len == k_len, key_mask=key_mask, bias=b)[0],
      q, k, v, d_out, bias)
  assert got[0] == pytest.approx(float(want[0]), rel=1e-5, abs=1e-4)
  for name, g, w in zip(("q", "k", "v", "bias"), got[1], want[1]):
    if w is not None:
      np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-4, err_msg=name)


@needs_compiler
@pytest.mark.parametrize("batch,length,heads,dim,causal,masked,bias_shape", [
    (2, 9, 3, 8, True, False, None),
    (3, 10, 2, 24, False, True, (3, 2, 10, 10)),
    (2, 17, 1, 64, True, True, (1, 1, 17, 17)),
])
def test_packed_kernel_equals_the_kernel_on_split_inputs(batch, length, heads, dim, causal,
                                                         masked, bias_shape):
  """q, k, v read in place from [B, T, 3, H, D]: the same arithmetic bit for bit, and the gradient
  the three gradients stacked in that layout."""
  qkv = jax.random.normal(jax.random.key(0), (batch, length, 3, heads, dim))
  d_out = jax.random.normal(jax.random.key(1), (batch, length, heads, dim))
  key_mask = (jnp.arange(length)[None] < jnp.array([length, 1, length - 3][:batch])[:, None]
              if masked else None)
  mask = masking.attention_mask(length, length, causal, key_mask)
  bias = None if bias_shape is None else -jax.random.uniform(jax.random.key(9), bias_shape)
  packed_loss = lambda qkv, b: (cpu.packed_attention(qkv, mask, b) * d_out).sum()
  split_loss = lambda qkv, b: (cpu.attention(*jnp.unstack(qkv, axis=2), mask, b)
                               * d_out).sum()
  got, want = (jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(qkv, bias)
               for loss in (packed_loss, split_loss))
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(g, w)


@needs_compiler
@pytest.mark.parametrize("attention,pos_encoding,packed", [
    ("vanilla", "learned", True), ("vanilla", "alibi", True),
    ("vanilla", "rotary", False), ("conv_qkv", "learned", False)])
def test_self_attention_reads_the_projection_packed_where_nothing_comes_between(
    attention, pos_encoding, packed):
  """Packed where q, k, v are the projection's unchanged; after a rotation or a convolution, the
  split inputs. Either way the reference path's numbers."""
  config = model_config(vocab_size=20, num_outputs=20, d_model=32, num_heads=4, num_layers=2,
                        d_ff=64, max_len=16, causal=True, attention=attention,
                        pos_encoding=pos_encoding)
  model = Transformer(config, rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(1), (3, 16), 1, 20)
  jaxpr = str(jax.make_jaxpr(lambda t: model(t))(tokens))
  assert "synthstudies_attention_forward" in jaxpr
  assert f"('packed', {packed})" in jaxpr and f"('packed', {not packed})" not in jaxpr
  np.testing.assert_allclose(model(tokens), model(tokens, capture=True)[0], atol=1e-5, rtol=1e-5)


@needs_compiler
@pytest.mark.parametrize("weights_batch,q_len", [(1, 11), (3, 11), (1, 7)])
def test_mix_equals_autodiff_of_weighted_values(weights_batch, q_len):
  """Fixed patterns times values (LEGO's fixed heads): the output and d_v; the weights, shared
  by the batch or per example, take a zero gradient."""
  _, _, v, d_out = _inputs(3, q_len, 11, 2, 24)
  weights = jax.nn.softmax(jax.random.normal(jax.random.key(4), (weights_batch, 2, q_len, 11)), -1)
  loss = lambda mix: lambda w, v: (mix(w, v) * d_out).sum()
  got = jax.value_and_grad(loss(cpu.mix), argnums=(0, 1))(weights, v)
  want = jax.value_and_grad(loss(lambda w, v: xla.weighted_values(
      jnp.broadcast_to(w, (3,) + w.shape[1:]), v)), argnums=(0, 1))(weights, v)
  assert got[0] == pytest.approx(float(want[0]), rel=1e-5)
  np.testing.assert_allclose(got[1][1], want[1][1], atol=1e-5, rtol=1e-5)
  assert not np.any(got[1][0])


@needs_compiler
def test_lego_attention_takes_the_mix_kernel_and_matches_the_reference_path():
  config = model_config(vocab_size=20, num_outputs=2, d_model=32, num_heads=4, num_layers=2,
                        d_ff=64, max_len=16, attention="lego")
  model = Transformer(config, rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(1), (3, 16), 1, 20)
  assert "synthstudies_mix_forward" in str(jax.make_jaxpr(lambda t: model(t))(tokens))
  np.testing.assert_allclose(model(tokens), model(tokens, capture=True)[0], atol=1e-5, rtol=1e-5)


@needs_compiler
def test_a_fully_masked_query_row_is_uniform_as_in_the_reference():
  q, k, v, _ = _inputs(1, 4, 4, 1, 8)
  mask = jnp.ones((1, 1, 4, 4), bool).at[0, 0, 2].set(False)  # query 2 sees no key
  out = cpu.attention(q, k, v, mask, None)
  np.testing.assert_allclose(out[0, 2, 0], v[0, :, 0].mean(0), atol=1e-6)
  np.testing.assert_allclose(out, _softmax_attention(q, k, v, mask, None), atol=1e-6)


@needs_compiler
@pytest.mark.parametrize("causal", [True, False])
def test_kernel_skips_only_keys_a_row_cannot_see(causal):
  """Rows stop at their last visible key (their extent): a causal mask over several wide vectors,
  and an irregular mask with fully masked rows (extent k_len, uniform), against the reference."""
  batch, length = 2, 53
  q, k, v, d_out = _inputs(batch, length, length, 2, 16, seed=5)
  if causal:
    mask = masking.attention_mask(length, length, True, jnp.arange(length)[None] < 40)
  else:
    mask = jax.random.bernoulli(jax.random.key(2), 0.3, (batch, 1, length, length))
    mask = mask.at[:, :, ::7].set(False)  # every 7th query sees nothing
  _, extents, _ = cpu._operands(length, length, mask, None)
  visible = np.broadcast_to(mask[:, 0], (mask.shape[0], length, length))
  want_extents = [[row.nonzero()[0][-1] + 1 if row.any() else length for row in rows]
                  for rows in visible]
  np.testing.assert_array_equal(extents, want_extents)
  got = _values_and_grads(lambda q, k, v, b: cpu.attention(q, k, v, mask, b),
                          q, k, v, d_out, None)
  want = _values_and_grads(lambda q, k, v, b: _softmax_attention(q, k, v, mask, b),
                           q, k, v, d_out, None)
  for name, g, w in zip(("loss", "q", "k", "v"), jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-4, err_msg=name)


@needs_compiler
def test_kernel_is_bit_for_bit_repeatable():
  """Pairs are split over threads by a shared counter; each pair's result must not depend on it."""
  q, k, v, d_out = _inputs(16, 33, 33, 4, 16, seed=3)
  step = jax.jit(lambda q, k, v: _values_and_grads(
      lambda q, k, v, b: cpu.attention(q, k, v, None, b), q, k, v, d_out, None))
  first = jax.tree.leaves(step(q, k, v))
  for _ in range(3):
    for a, b in zip(first, jax.tree.leaves(step(q, k, v))):
      np.testing.assert_array_equal(a, b)


@needs_compiler
def test_fast_attention_takes_the_kernel_only_where_it_fits():
  uses_kernel = lambda *arrays: "synthstudies_attention" in str(jax.make_jaxpr(
      lambda q, k, v: ops.attention(q, k, v, causal=True, kernels="auto"))(*arrays))
  q, k, v, _ = _inputs(2, 8, 8, 2, 16)
  assert uses_kernel(q, k, v)
  assert not uses_kernel(*(x[..., :4] for x in (q, k, v)))          # head_dim 4: no whole vector
  assert not uses_kernel(*(x.astype(jnp.bfloat16) for x in (q, k, v)))
  assert uses_kernel(*[jnp.zeros((1, 512, 1, 64))] * 3)
  assert not uses_kernel(*[jnp.zeros((1, 513, 1, 8))] * 3)  # past MAX_SCORES: out of the cache
  jaxpr = str(jax.make_jaxpr(lambda q, k, v: ops.attention(
      q, k, v, causal=True, kernels="xla"))(q, k, v))
  assert "synthstudies_attention" not in jaxpr


@needs_compiler
@pytest.mark.parametrize("attention", ["vanilla", "lego"])
def test_xla_switch_keeps_every_kernel_out_of_the_model(attention):
  """model.kernels="auto" takes the kernels here, forward and backward; "xla" none of them."""
  tokens = jax.random.randint(jax.random.key(1), (3, 16), 1, 20)

  def step_jaxpr(kernels):
    config = model_config(vocab_size=20, num_outputs=20, d_model=32, num_heads=4, num_layers=2,
                          d_ff=64, max_len=16, attention=attention, kernels=kernels)
    graphdef, params = nnx.split(Transformer(config, rngs=nnx.Rngs(0)), nnx.Param)
    return str(jax.make_jaxpr(jax.grad(lambda p: nnx.merge(graphdef, p)(tokens).sum()))(params))

  assert "synthstudies_norm_backward" in step_jaxpr("auto")
  assert "synthstudies" not in step_jaxpr("xla")


def test_without_a_compiler_the_jax_path_takes_over(monkeypatch, tmp_path):
  cpu.targets.cache_clear()
  monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
  monkeypatch.setenv("SYNTHSTUDIES_CACHE", str(tmp_path))
  try:
    with pytest.warns(UserWarning, match="CPU kernels unavailable"):
      assert cpu.targets() is None
    q, k, v, _ = _inputs(2, 8, 8, 2, 16)
    assert not cpu.attention_fits(q, k) and not cpu.rows_fit(q)
    out = ops.attention(q, k, v, causal=False, kernels="auto")
    np.testing.assert_allclose(out, attn_lib.reference_attention(q, k, v, causal=False)[0],
                               atol=1e-5)
  finally:
    cpu.targets.cache_clear()  # later tests build (or load) the real one again


def _softmax_attention(q, k, v, mask, bias):
  """The XLA fast path: the model's masked softmax, our backward."""
  return xla.softmax_attention(masking.masked_softmax, q, k, v, mask, bias)


def _norm(kind, bias, width, kernels="auto"):
  """A `Norm` (random scale and bias) as a pure function of (x, its parameters), and those."""
  module = transformer_lib.Norm(model_config(d_model=width, norm=kind, bias=bias, kernels=kernels),
                                nnx.Rngs(0))
  module.scale[...] = 1 + 0.1 * jax.random.normal(jax.random.key(5), (width,))
  if bias:
    module.bias[...] = 0.1 * jax.random.normal(jax.random.key(6), (width,))
  graph, params = nnx.split(module)
  return lambda x, params: nnx.merge(graph, params)(x), params


def _norm_values_and_grads(norm, params, x, d_y):
  return jax.value_and_grad(lambda x, params: (norm(x, params) * d_y).sum(),
                            argnums=(0, 1))(x, params)


@needs_compiler
@pytest.mark.parametrize("kind,bias,shape", [
    ("layernorm", True, (64, 62, 64)),   # the LEGO default's residual stream: 62 chunks of rows
    ("layernorm", False, (3, 5, 24)),    # rows fewer than a chunk
    ("rmsnorm", False, (2, 70, 512)),    # a last chunk of 12 rows; a wide row
    ("rmsnorm", True, (9, 8)),
])
def test_norm_kernel_equals_autodiff_of_the_jax_norm(kind, bias, shape):
  x = 3 * jax.random.normal(jax.random.key(1), shape) + 1
  d_y = jax.random.normal(jax.random.key(2), shape)
  norm, params = _norm(kind, bias, shape[-1])
  assert "synthstudies_norm_forward" in str(jax.make_jaxpr(norm)(x, params))
  got = _norm_values_and_grads(norm, params, x, d_y)
  jax_norm, _ = _norm(kind, bias, shape[-1], kernels="xla")
  assert "synthstudies" not in str(jax.make_jaxpr(jax_norm)(x, params))
  want = _norm_values_and_grads(jax_norm, params, x, d_y)
  assert got[0] == pytest.approx(float(want[0]), rel=1e-5, abs=1e-3)
  for g, w in zip(jax.tree.leaves(got[1]), jax.tree.leaves(want[1]), strict=True):
    np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)  # x, then the parameters


@needs_compiler
def test_row_kernels_take_float64_parameters_under_x64():
  """With jax_enable_x64 parameters initialise as float64 while activations stay float32: the
  kernels get their parameters cast, as XLA's path casts its result."""
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.key(1), (2, 5, 16), jnp.float32)
    bias = jnp.linspace(-1, 1, 16, dtype=jnp.float64)

    def run(kernels):
      norm, params = _norm("layernorm", True, 16, kernels)
      params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
      return (_norm_values_and_grads(norm, params, x, x),
              ops.bias_gelu(mlp_lib.gelu, x, bias, kernels=kernels).astype(x.dtype))

    got = run("auto")
    want = run("xla")
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    assert g.dtype == w.dtype
    np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


@needs_compiler
@pytest.mark.parametrize("has_bias,shape", [(True, (64, 62, 128)), (False, (3, 5, 24))])
def test_bias_gelu_kernel_equals_autodiff_of_jax_gelu(has_bias, shape):
  y = 3 * jax.random.normal(jax.random.key(1), shape)
  bias = jax.random.normal(jax.random.key(2), shape[-1:]) if has_bias else None
  d_out = jax.random.normal(jax.random.key(3), shape)
  grads = lambda f: jax.value_and_grad(lambda y, b: (f(y, b) * d_out).sum(), (0, 1))(y, bias)
  got = grads(cpu.bias_gelu)
  want = grads(lambda y, b: mlp_lib.gelu(y if b is None else y + b))
  assert got[0] == pytest.approx(float(want[0]), rel=1e-5)
  np.testing.assert_allclose(got[1][0], want[1][0], atol=1e-4, rtol=1e-4)
  if has_bias:
    np.testing.assert_allclose(got[1][1], want[1][1], atol=1e-3, rtol=1e-4)  # 3968 rows summed
  else:
    assert got[1][1] is None


@needs_compiler
def test_gpt2_mlp_takes_the_gelu_kernel_and_matches_the_jax_path():
  mlp = mlp_lib.MLP(model_config(d_model=16, d_ff=32), nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (2, 5, 16))
  assert "synthstudies_bias_gelu_forward" in str(jax.make_jaxpr(lambda x: mlp(x))(x))
  got = mlp(x)[0]
  jax_mlp = mlp_lib.MLP(model_config(d_model=16, d_ff=32, kernels="xla"), nnx.Rngs(0))
  assert "synthstudies" not in str(jax.make_jaxpr(lambda x: jax_mlp(x))(x))
  np.testing.assert_allclose(got, jax_mlp(x)[0], atol=1e-5, rtol=1e-5)


@needs_compiler
def test_row_kernels_are_bit_for_bit_repeatable():
  """Chunks of rows are split over threads; the column sums (scale and bias gradients) add the
  chunks' partial sums in a fixed order, so no result depends on which thread ran which chunk."""
  x = jax.random.normal(jax.random.key(1), (16, 100, 64))
  d_y = jax.random.normal(jax.random.key(2), x.shape)
  norm, params = _norm("layernorm", True, 64)
  bias = jnp.linspace(-1, 1, 64)
  gelu = jax.grad(lambda x, b: (cpu.bias_gelu(x, b) * d_y).sum(), (0, 1))
  step = jax.jit(lambda x: (_norm_values_and_grads(norm, params, x, d_y), gelu(x, bias)))
  first = jax.tree.leaves(step(x))
  for _ in range(3):
    for a, b in zip(first, jax.tree.leaves(step(x))):
      np.testing.assert_array_equal(a, b)


@needs_compiler
def test_norm_takes_the_kernel_only_where_it_fits():
  uses_kernel = lambda x: "synthstudies_norm" in str(jax.make_jaxpr(
      _norm("layernorm", True, x.shape[-1])[0])(x, _norm("layernorm", True, x.shape[-1])[1]))
  x = jnp.ones((2, 3, 16))
  assert uses_kernel(x)
  assert not uses_kernel(jnp.ones((2, 3, 12)))       # width not a whole number of vectors
  assert not uses_kernel(x.astype(jnp.bfloat16))


# -- the constants the C++ restates ---------------------------------------------------------------

def _cpp_constants() -> dict[str, np.float32]:
  """Every `constexpr float kName = <literal>f` of the kernels' C++ source, as float32."""
  source = "".join(path.read_text() for path in pathlib.Path(cpu.__file__).parent.glob("csrc/*"))
  found = re.findall(r"\b(k\w+) = (-?[0-9.]+(?:e[-+]?[0-9]+)?)f\b", source)
  return {name: np.float32(value) for name, value in found}


@pytest.mark.parametrize("cpp_name,python_value", [
    ("kEpsilon", transformer_lib.NORM_EPSILON),
    ("kMaskedLogit", masking.MASKED_LOGIT),
    ("kSqrt2OverPi", mlp_lib.GELU_SQRT_2_OVER_PI),
    ("kCubic", mlp_lib.GELU_CUBIC)])
def test_cpp_constants_equal_the_models(cpp_name, python_value):
  """The model's jnp math defines them; the C++ source restates them, as float32."""
  assert _cpp_constants()[cpp_name] == np.float32(python_value)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_gelu_is_jax_nn_gelu_bit_for_bit(dtype):
  u = (4 * jax.random.normal(jax.random.key(0), (1000,))).astype(dtype)
  np.testing.assert_array_equal(jax.jit(mlp_lib.gelu)(u), jax.jit(jax.nn.gelu)(u))
  np.testing.assert_array_equal(mlp_lib.gelu(u), jax.nn.gelu(u))
