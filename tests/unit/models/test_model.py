"""Shapes, masks, the fast attention path (values and gradients) against the reference, probes,
weight tying, the config's validation, and the layout of models/: only models/ops.py picks a
backend."""
import ast
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models import Transformer, masking, model_config, ops
from models import attention as attn_lib
from models.kernels import cpu, xla
from models.transformer import num_params


def _model(**overrides):
  config = model_config(**{**dict(vocab_size=20, num_outputs=3, d_model=32, num_heads=4,
                                  num_layers=3, d_ff=64, max_len=16), **overrides})
  return Transformer(config, rngs=nnx.Rngs(0))


def _tokens(batch=2, length=16, seed=0):
  return jax.random.randint(jax.random.key(seed), (batch, length), 1, 20)


@pytest.mark.parametrize("causal", [False, True])
def test_output_shapes_and_probes(causal):
  model = _model(causal=causal)
  tokens = _tokens()
  assert model(tokens).shape == (2, 16, 3)
  logits, probes = model(tokens, capture=True)
  assert logits.shape == (2, 16, 3)
  for layer in range(3):
    weights = probes[f"layer_{layer}/attention"]
    assert weights.shape == (2, 4, 16, 16)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert probes[f"layer_{layer}/residual"].shape == (2, 16, 32)
    if causal:
      assert float(jnp.triu(weights, k=1).max()) == 0.0


@pytest.mark.parametrize("causal", [False, True])
def test_fast_attention_equals_reference(causal):
  q, k, v = (jax.random.normal(jax.random.key(i), (3, 10, 4, 8)) for i in range(3))
  key_mask = jnp.arange(10)[None] < jnp.array([[10], [7], [3]])
  fast = ops.attention(q, k, v, causal=causal, key_mask=key_mask, kernels="auto")
  ref, _ = attn_lib.reference_attention(q, k, v, causal=causal, key_mask=key_mask)
  np.testing.assert_allclose(fast, ref, atol=1e-5, rtol=1e-5)
  model = _model(causal=causal)
  tokens = _tokens()
  np.testing.assert_allclose(model(tokens), model(tokens, capture=True)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernels", ["auto", "xla", "jax_nn"])
def test_fast_attention_gradients_equal_autodiff_of_the_reference(causal, kernels):
  """softmax_attention's hand-written backward (and the jax.nn path's) against jax.grad."""
  q, k, v, d_out = (jax.random.normal(jax.random.key(i), (3, 10, 4, 8)) for i in range(4))
  key_mask = jnp.arange(10)[None] < jnp.array([[10], [7], [3]])
  bias = -jax.random.uniform(jax.random.key(5), (3, 4, 10, 10))  # per-example, per-head (ALiBi's)

  def loss(attend):
    return lambda q, k, v, bias: (attend(q, k, v, causal=causal, key_mask=key_mask, bias=bias)
                                  * d_out).sum()

  fast = jax.grad(loss(functools.partial(ops.attention, kernels=kernels)),
                  argnums=(0, 1, 2, 3))(q, k, v, bias)
  reference = jax.grad(loss(lambda *a, **kw: attn_lib.reference_attention(*a, **kw)[0]),
                       argnums=(0, 1, 2, 3))(q, k, v, bias)
  for name, got, want in zip(("q", "k", "v", "bias"), fast, reference):
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("bias_batch", [1, 5])
def test_attention_in_batch_chunks_equals_one_call(monkeypatch, bias_batch):
  """The CPU path's uneven batch chunks (1, 2, 2 of 5) against one call: outputs and gradients,
  with a per-example key mask and a bias per example or shared by the batch."""
  q, k, v, d_out = (jax.random.normal(jax.random.key(i), (5, 6, 2, 4)) for i in range(4))
  key_mask = jnp.arange(6)[None] < jnp.array([[6], [4], [2], [6], [5]])
  bias = -jax.random.uniform(jax.random.key(5), (bias_batch, 2, 6, 6))

  def grads():
    loss = lambda q, k, v, bias: (ops.attention(
        q, k, v, causal=True, key_mask=key_mask, bias=bias, kernels="auto") * d_out).sum()
    return jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(q, k, v, bias)

  monkeypatch.setattr(xla, "CPU_BATCH_CHUNKS", 1)
  whole = grads()
  monkeypatch.setattr(xla, "CPU_BATCH_CHUNKS", 3)
  monkeypatch.setattr(xla, "MIN_SCORES_PER_CHUNK", 1)
  chunked = grads()
  forward = jax.make_jaxpr(lambda: ops.attention(q, k, v, causal=True, bias=bias,
                                                 kernels="auto"))()
  assert [e.primitive.name for e in forward.eqns].count("custom_vjp_call") == 3
  for got, want in zip(jax.tree.leaves(chunked), jax.tree.leaves(whole)):
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-6)


def test_softmax_attention_sums_the_bias_gradient_over_broadcast_axes():
  q, k, v = (jax.random.normal(jax.random.key(i), (2, 6, 3, 4)) for i in range(3))
  bias = jnp.zeros((1, 3, 6, 6))  # shared by the batch
  attend = functools.partial(xla.softmax_attention, masking.masked_softmax, q, k, v, None)
  full = jax.grad(lambda b: attend(b).sum())(jnp.broadcast_to(bias, (2, 3, 6, 6)))
  shared = jax.grad(lambda b: attend(b).sum())(bias)
  assert shared.shape == bias.shape
  np.testing.assert_allclose(shared, full.sum(0, keepdims=True), atol=1e-6)


def test_causal_decoder_ignores_the_future():
  model = _model(causal=True)
  a = _tokens(seed=1)
  b = a.at[:, 10:].set(5)
  np.testing.assert_allclose(model(a)[:, :10], model(b)[:, :10], atol=1e-6)
  assert not np.allclose(model(a)[:, 10:], model(b)[:, 10:])


def test_encoder_sees_both_directions():
  model = _model(causal=False)
  a = _tokens(seed=1)
  b = a.at[:, 10:].set(5)
  assert not np.allclose(model(a)[:, :10], model(b)[:, :10])


def test_tied_layers_share_one_block():
  untied, tied = _model(), _model(tied_layers=True)
  block = sum(x.size for x in jax.tree.leaves(nnx.state(untied.blocks[0], nnx.Param)))
  assert num_params(untied) - num_params(tied) == 2 * block
  _, probes = tied(_tokens(), capture=True)
  assert {f"layer_{i}/attention" for i in range(3)} <= set(probes)


def test_parameters_carry_logical_axes():
  model = _model()
  specs = nnx.get_partition_spec(nnx.state(model, nnx.Param))
  assert tuple(specs["blocks"][0]["attn"]["qkv"].get_value()) == ("embed", None, "heads", "head_dim")
  assert tuple(specs["blocks"][0]["mlp"]["wi"].get_value()) == ("embed", "mlp")
  assert tuple(specs["embed"].get_value()) == ("vocab", "embed")


def _expected_stds(config):
  """Each parameter's initial std as the config states it (models.transformer.model_config)."""
  d, f, layers = config.d_model, config.d_ff, config.num_layers
  if config.init_std is None:
    kernel = {"qkv": d, "qk": d, "v": d, "out": d, "wi": d, "wo": f, "head": d}
    kernels = {name: fan_in ** -0.5 for name, fan_in in kernel.items()}
  else:
    residual = config.init_std / (2 * layers) ** 0.5
    kernels = {name: config.init_std for name in ("qkv", "qk", "v", "wi", "head")}
    kernels.update(out=residual, wo=residual)
  embed = d ** -0.5 if config.embed_std is None else config.embed_std
  return {**kernels, "embed": embed, "table": config.pos_std}


@pytest.mark.parametrize("overrides", [
    dict(), dict(d_model=128, d_ff=512), dict(attention="lego", num_heads=4),
    dict(init_std=0.02, embed_std=0.02), dict(init_std=0.05, embed_std=1.0, pos_std=0.1)])
def test_initial_stds_are_what_the_config_says(overrides):
  model = _model(**{**dict(vocab_size=200, num_outputs=64, max_len=256, num_layers=4), **overrides})
  expected = _expected_stds(model.config)
  seen = set()
  for path, value in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(nnx.state(model,
                                                                                     nnx.Param))):
    name = str(path[-1].key)
    if value.ndim < 2:
      continue  # norms (ones), biases (zeros)
    assert float(value.std()) == pytest.approx(expected[name], rel=0.1), (path, value.shape)
    seen.add(name)
  assert {"qkv" if "qkv" in seen else "qk", "out", "wi", "wo", "embed", "table", "head"} <= seen


@pytest.mark.parametrize("field,value", [("attention", "sparse"), ("pos_encoding", "xyz"),
                                         ("num_heads", 5), ("init_std", 0.0), ("embed_std", -1.0),
                                         ("pos_std", 0.0), ("pos_std", None), ("kernels", None),
                                         ("kernels", "cpu")])
def test_bad_model_config_names_the_field(field, value):
  with pytest.raises(ValueError, match=f"model.{field}"):
    _model(**{field: value})


def test_kernels_switch_takes_its_values_and_names_them_when_wrong():
  for kernels in ops.KERNELS:
    _model(kernels=kernels)
  with pytest.raises(ValueError) as error:
    _model(kernels="jax")
  assert str(error.value) == ("model.kernels: unknown 'jax'; allowed: auto, xla, jax_nn, cudnn")


def _loss_grad(model, tokens):
  graphdef, params = nnx.split(model, nnx.Param)
  loss = lambda p: nnx.merge(graphdef, p)(tokens).sum()
  return jax.jit(jax.grad(loss)), params


def test_gradient_wall_keeps_gradients_and_stops_recomputation(monkeypatch):
  """Where XLA:CPU differentiates the norms, each residual add sits behind a gradient wall (one
  conditional in the backward): the gradients are those of the plain add (to float
  reassociation). The norm kernel's backward needs none."""
  model, tokens = _model(num_layers=4, causal=True), _tokens()
  if cpu.targets() is not None:
    grad, params = _loss_grad(model, tokens)
    assert " conditional(" not in grad.lower(params).compile().as_text()
  model = _model(num_layers=4, causal=True, kernels="xla")
  grad, params = _loss_grad(model, tokens)
  hlo = grad.lower(params).compile().as_text()
  assert hlo.count(" conditional(") == 2 * 4
  walled = grad(params)
  monkeypatch.setattr(ops, "residual_add", lambda x, y, kernels: x + y)
  plain_grad, _ = _loss_grad(model, tokens)
  assert " conditional(" not in plain_grad.lower(params).compile().as_text()
  same = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # fusion order
  jax.tree.map(same, walled, plain_grad(params))


def test_gradient_wall_is_the_identity_and_propagates_nan():
  x = jnp.arange(6.0).reshape(2, 3)
  np.testing.assert_array_equal(xla.gradient_wall(x), x)
  _, vjp = jax.vjp(xla.gradient_wall, x)
  np.testing.assert_array_equal(vjp(2 * x)[0], 2 * x)
  assert np.isnan(vjp(x.at[0, 0].set(jnp.nan))[0]).all()


def _matmul_transposed(x, kernel_t):
  return x @ kernel_t.T


@pytest.mark.parametrize("shape", [(6, 8), (2, 3, 8)])
@pytest.mark.parametrize("dense, matmul, kernel_shape", [
    (xla.dense, jnp.matmul, (8, 5)),
    (xla.dense_transposed, _matmul_transposed, (5, 8))])
def test_dense_gradients_equal_autodiff_of_the_matmul(shape, dense, matmul, kernel_shape):
  x = jax.random.normal(jax.random.key(0), shape)
  kernel = jax.random.normal(jax.random.key(1), kernel_shape)
  d_y = jax.random.normal(jax.random.key(2), shape[:-1] + (5,))
  y, vjp = jax.vjp(dense, x, kernel)
  want_y, want_vjp = jax.vjp(matmul, x, kernel)
  np.testing.assert_allclose(y, want_y, rtol=1e-6)
  for got, want in zip(vjp(d_y), want_vjp(d_y)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention", ["vanilla", "lego"])
def test_every_projection_through_dense_keeps_the_model_gradients(monkeypatch, attention):
  model, tokens = _model(num_layers=2, causal=attention == "vanilla", attention=attention), _tokens()
  grad, params = _loss_grad(model, tokens)
  dense_grads = grad(params)
  monkeypatch.setattr(ops, "dense", jnp.matmul)
  monkeypatch.setattr(ops, "dense_transposed", _matmul_transposed)
  plain_grad, _ = _loss_grad(model, tokens)
  same = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  jax.tree.map(same, dense_grads, plain_grad(params))


MODELS = pathlib.Path(ops.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
  """The modules a file imports, `from a import b` as both a and a.b."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def test_only_ops_reaches_the_kernels_and_picks_a_backend():
  """The model files import no kernel and ask nothing of the backend; the kernels import no model
  module."""
  model_files = [p for p in MODELS.glob("*.py") if p.name != "ops.py"]
  assert {p.name for p in model_files} >= {"transformer.py", "attention.py", "mlp.py", "moe.py",
                                           "positional.py", "decoding.py"}
  for path in model_files:
    assert not any(name.startswith("models.kernels") for name in _imports(path)), path.name
    source = path.read_text()
    for word in ("default_backend", "device_count", "devices("):
      assert word not in source, (path.name, word)
  for path in (MODELS / "kernels").glob("*.py"):
    reached = {name for name in _imports(path) if name.startswith("models")}
    assert all(name.startswith("models.kernels") for name in reached), (path.name, reached)
