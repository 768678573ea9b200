"""Attention variants: fast path against reference, conv-QKV's identity kernel against vanilla, the
fixed LEGO patterns against their definitions, and what LEGO attention saves (parameters, FLOPs)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models import Transformer, model_config
from models import attention as attn_lib

VARIANTS = ("vanilla", "lego", "conv_qkv")


def _config(**overrides):
  return model_config(**{**dict(vocab_size=20, num_outputs=3, d_model=32, num_heads=4,
                                num_layers=2, d_ff=64, max_len=16), **overrides})


def _tokens(batch=2, length=16, seed=0, vocab=6):
  return jax.random.randint(jax.random.key(seed), (batch, length), 1, vocab)


KEY_MASK = jnp.arange(16)[None] < jnp.array([[16], [11]])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("causal", [False, True])
def test_fast_path_equals_reference(variant, causal):
  model = Transformer(_config(attention=variant, causal=causal), rngs=nnx.Rngs(0))
  tokens = _tokens()
  fast = model(tokens, key_mask=KEY_MASK)
  reference, probes = model(tokens, key_mask=KEY_MASK, capture=True)
  np.testing.assert_allclose(fast, reference, atol=1e-5, rtol=1e-5)
  assert probes["layer_1/attention"].shape == (2, 4, 16, 16)


def _with_vanilla_params(variant_model, vanilla_model):
  """Copies every parameter the two models share (all but the variant's own)."""
  nnx.update(variant_model, nnx.state(vanilla_model, nnx.Param))
  return variant_model


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("width", [1, 3, 4])
def test_identity_kernel_conv_qkv_is_vanilla_exactly(causal, width):
  vanilla = Transformer(_config(causal=causal), rngs=nnx.Rngs(0))
  conv = Transformer(_config(causal=causal, attention="conv_qkv", conv_kernel=width),
                     rngs=nnx.Rngs(1))
  conv = _with_vanilla_params(conv, vanilla)
  tokens = _tokens()
  real = np.asarray(KEY_MASK)  # padding is zeroed before the convolution; nothing reads it
  np.testing.assert_array_equal(conv(tokens, key_mask=KEY_MASK)[real],
                                vanilla(tokens, key_mask=KEY_MASK)[real])


@pytest.mark.parametrize("causal", [False, True])
def test_conv_qkv_never_reads_the_future_in_a_decoder_nor_padding(causal):
  model = Transformer(_config(causal=causal, attention="conv_qkv", conv_kernel=3),
                      rngs=nnx.Rngs(0))
  before = model(_tokens())
  for block in model.blocks:
    block.attn.conv[...] = jax.random.normal(jax.random.key(3), block.attn.conv.shape)
  assert not np.allclose(model(_tokens()), before)
  a = _tokens(seed=1)
  b = a.at[:, 11:].set(5)
  same = lambda x, y: np.testing.assert_allclose(x[:, :11], y[:, :11], atol=1e-6)
  mask = jnp.arange(16)[None] < 11
  same(model(a, key_mask=mask), model(b, key_mask=mask))
  if causal:
    same(model(a), model(b))


@pytest.mark.parametrize("causal", [False, True])
def test_fixed_patterns_are_their_definitions(causal):
  tokens = _tokens(vocab=4)
  same = np.asarray(tokens[:, :, None] == tokens[:, None, :])
  assoc = np.asarray(attn_lib.association_pattern(tokens, causal=causal, key_mask=KEY_MASK))[:, 0]
  manip = np.asarray(attn_lib.manipulation_pattern(16, causal=causal, key_mask=KEY_MASK))[:, 0]
  for pattern in (assoc, manip):
    np.testing.assert_allclose(pattern.sum(-1)[np.asarray(KEY_MASK)], 1.0, rtol=1e-6)
    assert (pattern[1, :, 11:] == 0).all()  # padded keys get nothing
    if causal:
      assert (np.triu(pattern, k=1) == 0).all()
  assert (assoc[~same] == 0).all()  # association: zero wherever the tokens differ
  if not causal:  # manipulation: the kernel [1, 2, 4, 2, 1] / 10 in the interior, zero elsewhere
    np.testing.assert_allclose(manip[0, 7, 5:10], np.array([1, 2, 4, 2, 1]) / 10, rtol=1e-6)
    assert manip[0, 7, :5].sum() == 0 and manip[0, 7, 10:].sum() == 0


def test_floor_smooths_the_mimicking_targets():
  tokens = _tokens(vocab=4)
  target = np.asarray(attn_lib.association_pattern(tokens, floor=1e-3))[:, 0]
  np.testing.assert_allclose(target.sum(-1), 1.0, rtol=1e-6)
  assert (target > 0).all()


def test_lego_heads_record_the_fixed_patterns():
  config = _config(attention="lego", lego_heads=(1, 2))
  model = Transformer(config, rngs=nnx.Rngs(0))
  tokens = _tokens()
  _, probes = model(tokens, capture=True)
  weights = np.asarray(probes["layer_0/attention"])
  np.testing.assert_array_equal(weights[:, 0], attn_lib.manipulation_pattern(16)[:, 0].repeat(2, 0))
  np.testing.assert_array_equal(weights[:, 1], attn_lib.association_pattern(tokens)[:, 0])
  np.testing.assert_array_equal(weights[:, 2], weights[:, 1])
  assert not np.allclose(weights[:, 3], weights[:, 1])


def test_lego_attention_saves_parameters_and_flops():
  vanilla = attn_lib.cost(_config(), 16)
  lego = attn_lib.cost(_config(attention="lego", lego_heads=(1, 1)), 16)
  d, head_dim = 32, 8
  assert vanilla["params"] - lego["params"] == 2 * 2 * d * head_dim  # Q and K of two heads
  assert lego["flops"] < vanilla["flops"]


@pytest.mark.parametrize("field,value", [("lego_heads", (3, 2)), ("lego_heads", (-1, 1)),
                                         ("conv_kernel", 0)])
def test_bad_variant_config_names_the_field(field, value):
  attention = "lego" if field == "lego_heads" else "conv_qkv"
  with pytest.raises(ValueError, match=f"model.{field}"):
    Transformer(_config(attention=attention, **{field: value}), rngs=nnx.Rngs(0))


def test_lego_layer_of_fixed_heads_only_has_no_query_key_projection(tmp_path):
  """The smoke model has 2 heads and LEGO fixes 2: no zero-size parameter (Orbax refuses to save
  one), and the run trains, checkpoints and resumes bit for bit."""
  from experiments.runtime import train
  from experiments.configs.lego import get_config
  from experiments.lego import LegoStudy
  config = get_config("smoke")
  config.update(dict(num_steps=4, warmup_steps=1, checkpoint_every=2, eval_every=4, log_every=2))
  config.model.attention = "lego"
  model = Transformer(train.resolved_model_config(config, LegoStudy(config)), rngs=nnx.Rngs(0))
  assert all(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert model.blocks[0].attn.qk is None
  quiet = lambda *_: None
  straight = train.train_and_evaluate(config, str(tmp_path / "a"), LegoStudy(config), print_fn=quiet)
  train.train_and_evaluate(config, str(tmp_path / "b"), LegoStudy(config), print_fn=quiet, stop_at=2)
  resumed = train.train_and_evaluate(config, str(tmp_path / "b"), LegoStudy(config), print_fn=quiet)
  jax.tree.map(np.testing.assert_array_equal, straight["state"], resumed["state"])
  _, probes = model(LegoStudy(config).batch("test", 0, 2)["inputs"], capture=True)
  assert probes["layer_0/attention"].shape[1] == 2  # both heads fixed, both recorded
