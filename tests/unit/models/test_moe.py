"""Mixture of experts against a slow reference of the documented rule (models/moe.py): each token
goes to its top-k experts, slots filled first choices first in position order, choices past an
expert's capacity dropped; the output mixes the kept experts by router probability."""
import jax
import numpy as np
import pytest
from flax import nnx

from models import Transformer, model_config
from models import moe as moe_lib


def _reference_route(probs, k, capacity):
  batch, length, experts = probs.shape
  dispatch = np.zeros((batch, length, experts, capacity))
  combine = np.zeros_like(dispatch)
  for b in range(batch):
    filled = [0] * experts
    ranked = [np.argsort(-probs[b, t], kind="stable")[:k] for t in range(length)]
    for choice in range(k):
      for t in range(length):
        e = ranked[t][choice]
        if filled[e] < capacity:
          dispatch[b, t, e, filled[e]] = 1
          combine[b, t, e, filled[e]] = probs[b, t, e]
          filled[e] += 1
  return dispatch, combine


def _probs(shape, seed=0):
  return np.asarray(jax.nn.softmax(3 * jax.random.normal(jax.random.key(seed), shape)))


@pytest.mark.parametrize("k,capacity", [(1, 2), (2, 3), (2, 10), (3, 4)])
def test_routing_follows_the_documented_rule(k, capacity):
  probs = _probs((3, 10, 4))
  dispatch, combine, balance = moe_lib.route(probs, k, capacity)
  want_dispatch, want_combine = _reference_route(probs, k, capacity)
  np.testing.assert_array_equal(dispatch, want_dispatch)
  np.testing.assert_allclose(combine, want_combine, rtol=1e-6)
  kept = want_dispatch.sum()
  assert (kept < 3 * 10 * k) == (capacity < 10)  # small capacities drop some choices
  assert (want_dispatch.sum((1, 3)) <= capacity).all()
  picked = np.zeros(4)
  for row in probs.reshape(-1, 4):
    picked[np.argsort(-row, kind="stable")[:k]] += 1
  want_balance = 4 * np.sum(picked / (30 * k) * probs.mean((0, 1)))
  np.testing.assert_allclose(balance, want_balance, rtol=1e-5)


def test_balance_loss_is_one_when_balanced_and_e_when_one_expert_takes_all():
  uniform = np.full((1, 8, 4), 0.25, np.float32)
  assert float(moe_lib.route(uniform, 1, 8)[2]) == pytest.approx(1.0)
  collapsed = np.tile(np.array([1.0, 0, 0, 0], np.float32), (1, 8, 1))
  assert float(moe_lib.route(collapsed, 1, 8)[2]) == pytest.approx(4.0)


def test_capacity():
  assert moe_lib.expert_capacity(tokens=10, experts=4, k=2, capacity_factor=1.0) == 5
  assert moe_lib.expert_capacity(tokens=10, experts=4, k=1, capacity_factor=1.25) == 4
  assert moe_lib.expert_capacity(tokens=10, experts=2, k=2, capacity_factor=2.0) == 10  # <= T


def _expert(x, p, e, kind):
  up = x @ p["wi"][e] + (p["bi"][e] if "bi" in p else 0)
  if kind == "gated":
    gate = x @ p["wg"][e]
    h = gate / (1 + np.exp(-gate)) * up
  else:
    h = 0.5 * up * (1 + np.tanh(np.sqrt(2 / np.pi) * (up + 0.044715 * up ** 3)))
  return h @ p["wo"][e].T + (p["bo"][e] if "bo" in p else 0)


@pytest.mark.parametrize("mlp,bias,k", [("gated", False, 2), ("gelu", True, 1)])
def test_moe_layer_equals_the_slow_reference(mlp, bias, k):
  config = model_config(d_model=8, d_ff=12, experts=4, experts_per_token=k, capacity_factor=0.75,
                        mlp=mlp, bias=bias)
  layer = moe_lib.MoE(config, nnx.Rngs(1))
  params = jax.tree.map(lambda a: np.asarray(a, np.float64),
                        nnx.to_pure_dict(nnx.state(layer, nnx.Param)))
  x = np.asarray(jax.random.normal(jax.random.key(2), (2, 9, 8)))
  y, _ = layer(x)
  logits = x @ params["router"]
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  capacity = moe_lib.expert_capacity(9, 4, k, 0.75)
  dispatch, _ = _reference_route(probs, k, capacity)
  want = np.zeros_like(x)
  for b, t, e in zip(*np.nonzero(dispatch.sum(-1))):
    want[b, t] += probs[b, t, e] * _expert(x[b, t], params["experts"], e, mlp)
  assert dispatch.sum() < 2 * 9 * k  # some choices were dropped
  np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_expert_weights_carry_the_expert_axis_and_the_model_returns_the_balance_loss():
  config = model_config(vocab_size=20, num_outputs=20, d_model=16, num_heads=2, num_layers=2,
                        d_ff=24, max_len=8, causal=True, experts=4, experts_per_token=2)
  model = Transformer(config, rngs=nnx.Rngs(0))
  specs = nnx.get_partition_spec(nnx.state(model, nnx.Param))
  assert tuple(specs["blocks"][0]["mlp"]["experts"]["wi"].get_value()) == ("expert", "embed",
                                                                            "mlp")
  tokens = jax.random.randint(jax.random.key(0), (2, 8), 0, 20)
  logits, _, balance = model.forward(tokens)
  np.testing.assert_array_equal(logits, model(tokens))
  assert 2.0 <= float(balance) <= 2 * 4  # two layers, each between balanced (1) and collapsed (E)
