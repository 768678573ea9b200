"""Probing: one named map per layer and head, head scores that recognise the fixed patterns, and
probing a checkpoint written by experiments.lego."""
import json

import jax
import numpy as np
import pytest
from flax import nnx

from experiments.runtime import restore, train
from experiments.configs.lego import get_config
from experiments.lego import LegoStudy
from models import Transformer, model_config, probing

quiet = lambda *_: None


def _model(**overrides):
  config = model_config(**{**dict(vocab_size=40, num_outputs=2, d_model=32, num_heads=4,
                                  num_layers=3, d_ff=64, max_len=62), **overrides})
  return Transformer(config, rngs=nnx.Rngs(0))


def _lego_tokens(batch=4):
  return LegoStudy(get_config("smoke")).batch("test", 0, batch)["inputs"]


@pytest.mark.parametrize("tied", [False, True])
def test_probe_returns_one_map_per_layer_and_head(tied):
  tokens = _lego_tokens()
  probes = probing.probe(_model(tied_layers=tied), tokens)
  maps = sorted(k for k in probes if k.endswith("/attention"))
  assert maps == sorted(f"layer_{i}/head_{h}/attention" for i in range(3) for h in range(4))
  for name in maps:
    assert probes[name].shape == (4, 62, 62)
    np.testing.assert_allclose(probes[name].sum(-1), 1.0, rtol=1e-5)
  for i in range(3):
    assert probes[f"layer_{i}/residual"].shape == (4, 62, 32)
  assert probes["logits"].shape == (4, 62, 2)


def test_head_scores_recognise_the_fixed_lego_heads():
  tokens = _lego_tokens()
  model = _model(attention="lego", lego_heads=(1, 1))
  scores = probing.head_scores(probing.probe(model, tokens), tokens)
  assert len(scores) == 12
  for layer in range(3):
    assert scores[f"layer_{layer}/head_0"]["manipulation"] == pytest.approx(1.0)
    assert scores[f"layer_{layer}/head_1"]["association"] == pytest.approx(1.0)
    assert scores[f"layer_{layer}/head_2"]["association"] < 0.3  # near-uniform learned heads
  names = probing.name_heads(scores)
  assert names["layer_0/head_0"] == "manipulation" and names["layer_0/head_1"] == "association"
  assert names["layer_0/head_2"] == "other"


def test_probe_a_checkpoint_from_experiments_lego(tmp_path):
  config = get_config("smoke")
  config.update(dict(num_steps=4, warmup_steps=1, log_every=2, eval_every=4, checkpoint_every=2))
  result = train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  run = restore.load(str(tmp_path), "lego")
  assert run.step == 4
  tokens = run.study.batch("test", 0, 2)["inputs"]
  trained = result["trainer"].model(result["state"]["params"])
  np.testing.assert_allclose(run.model(tokens), trained(tokens), atol=1e-6)
  jax.tree.map(np.testing.assert_array_equal, run.params, result["state"]["params"])
  scores = probing.head_scores(probing.probe(run.model, tokens), tokens)
  assert set(scores) == {f"layer_{i}/head_{h}" for i in range(2) for h in range(2)}


def test_restore_fills_fields_added_after_a_run(tmp_path):
  config = get_config("smoke")
  config.update(dict(num_steps=2, warmup_steps=1, log_every=2, eval_every=2, checkpoint_every=2))
  train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  stored = json.loads((tmp_path / "config.json").read_text())
  del stored["model"]["dtype"], stored["task"]
  (tmp_path / "config.json").write_text(json.dumps(stored))
  run = restore.load(str(tmp_path), "lego", fill_defaults=True)
  assert run.config.model.dtype == "float32" and run.config.task.num_vars == 12


def test_restore_says_when_a_workdir_holds_no_run(tmp_path):
  with pytest.raises(ValueError, match="holds no run"):
    restore.load(str(tmp_path), "lego")
