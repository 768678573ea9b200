"""Interventions: patching a run with its own activations changes nothing, an ablated head changes
exactly the layers after it, an edit at some positions changes only what can see them, a zeroed
head equals that head's output projection zeroed, and with no edit the jitted path is the plain one."""
import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.configs.lego import get_config
from experiments.lego import LegoStudy
from models import Transformer, interventions, model_config, probing

LAYERS, HEADS, LENGTH = 3, 4, 62


def _model(**overrides):
  config = model_config(**{**dict(vocab_size=40, num_outputs=5, d_model=32, num_heads=HEADS,
                                  num_layers=LAYERS, d_ff=64, max_len=LENGTH), **overrides})
  return Transformer(config, rngs=nnx.Rngs(0))


def _tokens(batch=4):
  return LegoStudy(get_config("smoke")).batch("test", 0, batch)["inputs"]


ARCHITECTURES = [dict(causal=False, tied_layers=False), dict(causal=False, tied_layers=True),
                 dict(causal=True, tied_layers=False), dict(causal=True, tied_layers=True),
                 dict(attention="lego", lego_heads=(1, 1), tied_layers=True)]


@pytest.mark.parametrize("arch", ARCHITECTURES,
                         ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_patching_a_run_with_its_own_activations_changes_nothing(arch):
  model, tokens = _model(**arch), _tokens()
  logits, clean = interventions.run(model, tokens, capture=True)
  mask = np.zeros(tokens.shape[1], bool)
  mask[::3] = True
  sites = ["embed", "layer_0/head_2/output", "layer_1/mlp", "layer_1/residual",
           f"layer_{LAYERS - 1}/residual"]
  for site in sites:
    for positions in (None, mask):
      edits = {site: interventions.replace(clean[site], positions)}
      patched, probes = interventions.run(model, tokens, edits, capture=True)
      np.testing.assert_array_equal(patched, logits, err_msg=site)
      np.testing.assert_array_equal(probes[site], clean[site])


@pytest.mark.parametrize("arch", ARCHITECTURES[:4], ids=["encoder", "encoder,tied", "decoder",
                                                          "decoder,tied"])
def test_patching_from_another_run_moves_the_output_to_that_run(arch):
  """Patching every position of the last residual stream makes the logits the clean run's; one
  position changes that position's logits, and in a decoder no earlier one."""
  model = _model(**arch)
  clean_tokens, corrupted = _tokens(), _tokens()
  corrupted[:, 5] = (corrupted[:, 5] + 1) % 40
  clean_logits, clean = interventions.run(model, clean_tokens, capture=True)
  corrupted_logits = interventions.run(model, corrupted)
  last = f"layer_{LAYERS - 1}/residual"
  patched = interventions.run(model, corrupted, {last: interventions.replace(clean[last])})
  np.testing.assert_allclose(patched, clean_logits, atol=1e-6)
  only = np.arange(LENGTH) == 20
  patched = np.asarray(interventions.run(model, corrupted,
                                         {last: interventions.replace(clean[last], only)}))
  np.testing.assert_allclose(patched[:, 20], clean_logits[:, 20], atol=1e-6)
  np.testing.assert_array_equal(np.delete(patched, 20, 1), np.delete(corrupted_logits, 20, 1))
  # back: the corrupted run's embeddings at position 5 in the clean run make the corrupted run
  _, dirty = interventions.run(model, corrupted, capture=True)
  back = interventions.run(model, clean_tokens,
                           {"embed": interventions.replace(dirty["embed"], np.arange(LENGTH) == 5)})
  np.testing.assert_allclose(back, corrupted_logits, atol=2e-5)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_ablating_the_association_head_changes_exactly_the_layers_after_it(layer):
  model, tokens = _model(attention="lego", lego_heads=(1, 1), tied_layers=True), _tokens()
  plain_logits, plain = interventions.run(model, tokens, capture=True)
  for ablation in (interventions.zero(), interventions.mean(plain[f"layer_{layer}/head_1/output"])):
    logits, ablated = interventions.run(model, tokens, {f"layer_{layer}/head_1/output": ablation},
                                        capture=True)
    np.testing.assert_array_equal(ablated["embed"], plain["embed"])
    for i in range(LAYERS):
      residual = f"layer_{i}/residual"
      if i < layer:
        np.testing.assert_array_equal(ablated[residual], plain[residual])
      else:
        assert np.abs(ablated[residual] - plain[residual]).max() > 1e-4, residual
    assert np.abs(logits - plain_logits).max() > 1e-4


def test_zeroing_a_head_equals_zeroing_its_output_projection():
  model, tokens = _model(), _tokens()
  ablated = interventions.run(model, tokens, {"layer_1/head_2/output": interventions.zero()})
  reference = copy.deepcopy(model)
  out = reference.layer(1).attn.out
  out[...] = out[...].at[2].set(0.0)
  np.testing.assert_allclose(ablated, reference(tokens), atol=1e-5)
  assert np.abs(ablated - model(tokens)).max() > 1e-4


def test_adding_a_vector_at_some_positions():
  model, tokens = _model(), _tokens()
  _, plain = interventions.run(model, tokens, capture=True)
  delta = jnp.arange(32.0) / 32
  where = np.zeros(tokens.shape, bool)
  where[0, 7] = True
  _, probes = interventions.run(model, tokens, {"layer_0/mlp": interventions.add(delta, where)},
                                capture=True)
  expected = np.asarray(plain["layer_0/mlp"]).copy()
  expected[0, 7] += delta
  np.testing.assert_allclose(probes["layer_0/mlp"], expected, atol=1e-6)
  np.testing.assert_array_equal(probes["layer_0/mlp"][1:], plain["layer_0/mlp"][1:])


@pytest.mark.parametrize("causal", [False, True])
def test_without_edits_the_jitted_path_is_the_plain_forward(causal):
  model, tokens = _model(causal=causal), _tokens()
  graphdef, state = nnx.split(model)
  plain = jax.jit(lambda s, t: nnx.merge(graphdef, s)(t))
  np.testing.assert_array_equal(interventions.run(model, tokens), plain(state, tokens))
  lowered = lambda **kw: jax.jit(lambda s, t: nnx.merge(graphdef, s)(t, **kw)).lower(
      state, tokens).as_text()
  assert lowered() == lowered(interventions={}) == lowered(interventions=None)


def test_the_captured_sites_are_the_probes_and_the_editable_sites():
  model, tokens = _model(), _tokens(2)
  probes = probing.probe(model, tokens)
  names = interventions.site_names(model.config)
  assert set(names) <= set(probes)
  assert probes["layer_2/head_3/output"].shape == (2, LENGTH, 32 // HEADS)
  assert probes["layer_0/mlp"].shape == (2, LENGTH, 32)


def test_an_unknown_site_is_one_clear_error():
  with pytest.raises(ValueError, match="unknown site 'layer_9/residual'; allowed: embed"):
    interventions.run(_model(), _tokens(), {"layer_9/residual": interventions.zero()})
