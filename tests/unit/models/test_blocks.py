"""The named blocks (GPT-2, LLaMA's gated MLP with RMSNorm and no biases, and its gateless twin)
against a slow NumPy reference written from their definitions, token by token."""
import jax
import numpy as np
import pytest
from flax import nnx
from scipy.special import erf

from models import Transformer, model_config
from models.transformer import BLOCKS


def _model(block: str, **overrides):
  config = model_config(**{**dict(vocab_size=20, num_outputs=20, d_model=16, num_heads=2,
                                  num_layers=2, d_ff=24, max_len=8, causal=True,
                                  pos_encoding="none"), **BLOCKS[block], **overrides})
  return Transformer(config, rngs=nnx.Rngs(0))


def _norm(x, p, centred):
  if centred:
    x = x - x.mean()
  y = x / np.sqrt((x ** 2).mean() + 1e-6) * p["scale"]
  return y + p["bias"] if "bias" in p else y


def _mlp(x, p, kind):
  up = x @ p["wi"] + p.get("bi", 0.0)
  if kind == "gelu":  # jax.nn.gelu's default: the tanh approximation
    h = 0.5 * up * (1 + np.tanh(np.sqrt(2 / np.pi) * (up + 0.044715 * up ** 3)))
  elif kind == "silu":
    h = up / (1 + np.exp(-up))
  else:
    gate = x @ p["wg"]
    h = gate / (1 + np.exp(-gate)) * up
  return h @ p["wo"].T + p.get("bo", 0.0)


def _reference_logits(model, tokens):
  """The decoder, one token at a time, from the parameters alone."""
  config = model.config
  params = jax.tree.map(lambda a: np.asarray(a, np.float64),
                        nnx.to_pure_dict(nnx.state(model, nnx.Param)))
  centred, heads = config.norm == "layernorm", config.num_heads
  xs = [params["embed"][t] for t in tokens]
  for layer in range(config.num_layers):
    p = params["blocks"][layer]
    qkv = [np.einsum("d,dshk->shk", _norm(x, p["attn_norm"], centred), p["attn"]["qkv"]) for x in xs]
    new = []
    for i, x in enumerate(xs):
      out = np.zeros_like(x)
      for h in range(heads):
        q = qkv[i][0, h]
        scores = np.array([q @ qkv[j][1, h] for j in range(i + 1)]) / np.sqrt(len(q))
        w = np.exp(scores - scores.max())
        w /= w.sum()
        mixed = sum(w[j] * qkv[j][2, h] for j in range(i + 1))
        out += mixed @ p["attn"]["out"][h]
      x = x + out
      new.append(x + _mlp(_norm(x, p["mlp_norm"], centred), p["mlp"], config.mlp))
    xs = new
  head_bias = params.get("head_bias", 0.0)
  return np.stack([_norm(x, params["final_norm"], centred) @ params["head"] + head_bias for x in xs])


@pytest.mark.parametrize("block", list(BLOCKS))
def test_block_equals_the_slow_reference(block):
  model = _model(block)
  tokens = np.array([3, 7, 1, 19, 4, 4, 0, 12])
  np.testing.assert_allclose(model(tokens[None])[0], _reference_logits(model, tokens),
                             rtol=2e-4, atol=2e-5)


def test_llama_blocks_have_no_biases_and_only_the_gated_one_a_gate():
  names = {}
  for block in BLOCKS:
    leaves = jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(nnx.state(_model(block),
                                                                            nnx.Param)))
    names[block] = {str(path[-1].key) for path, _ in leaves}
  assert {"bias", "bi", "bo", "head_bias"} <= names["gpt2"] and "wg" not in names["gpt2"]
  for block in ("llama", "llama_nogate"):
    assert not names[block] & {"bias", "bi", "bo", "head_bias"}
  assert "wg" in names["llama"] and "wg" not in names["llama_nogate"]


def test_gelu_reference_is_the_erf_gelu_up_to_its_tanh_approximation():
  """Guards the reference itself: the tanh form it uses is within 1e-3 of the exact GELU."""
  x = np.linspace(-4, 4, 101)
  p = {"wi": np.eye(1), "wo": np.eye(1)}
  exact = 0.5 * x * (1 + erf(x / np.sqrt(2)))
  np.testing.assert_allclose(_mlp(x[:, None], p, "gelu")[:, 0], exact, atol=1e-3)


@pytest.mark.parametrize("field,value", [
    ("norm", "batchnorm"), ("mlp", "relu"), ("experts", 1), ("experts", -2),
    ("experts_per_token", 3), ("experts_per_token", 0), ("capacity_factor", 0.0),
    ("moe_loss_weight", -0.1)])
def test_bad_block_fields_fail_in_one_line_naming_the_field(field, value):
  overrides = {"experts": 2, field: value} if field.startswith(("experts_", "capacity")) else {
      field: value}
  with pytest.raises(ValueError, match=f"^model.{field}: .*allowed: ") as error:
    _model("gpt2", **overrides)
  assert "\n" not in str(error.value)
