"""Head scores through training read every kept checkpoint, each at its own step."""
import json

import jax
import numpy as np
import pytest

from experiments.lego import heads
from experiments.lego.evaluation import layer_best
from experiments.runtime import restore
from tests.study_checks import lego_smoke, train_uninterrupted


@pytest.fixture(scope="module")
def run_with_history(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("lego_heads"))
  config = lego_smoke({"num_steps": 30, "checkpoint_every": 10, "checkpoint_keep": 10,
                       "eval_every": 10})
  train_uninterrupted(config, workdir)
  return workdir


def test_every_checkpoint_is_kept_and_each_restores_its_own_parameters(run_with_history):
  assert restore.steps(run_with_history) == [10, 20, 30]
  params = [restore.load(run_with_history, "lego", step=s).params for s in (10, 30)]
  assert restore.load(run_with_history, "lego").step == 30
  differ = jax.tree.leaves(jax.tree.map(lambda a, b: bool((a != b).any()), *params))
  assert any(differ)


def test_an_unkept_step_is_one_line_naming_the_kept_ones(run_with_history):
  with pytest.raises(ValueError, match=r"step: 15; allowed: .*10, 20, 30"):
    restore.load(run_with_history, "lego", step=15)


def test_history_pairs_each_step_with_its_scores_and_logged_accuracy(run_with_history, tmp_path):
  out = tmp_path / "heads.png"
  heads.main([run_with_history, f"--out={out}", "--sentences=8"])
  data = json.loads((tmp_path / "data" / "heads.json").read_text())
  assert out.exists() and data["steps"] == [10, 20, 30]
  config = lego_smoke({})
  layers, num_heads = config.model.num_layers, config.model.num_heads
  for scores, accuracy in zip(data["scores"], data["accuracy"]):
    assert len(scores) == layers * num_heads
    assert all(0 <= s[p] <= 1 for s in scores.values() for p in heads.PATTERNS)
    assert len(accuracy) == 12
  maxima = layer_best(data["scores"][0], "association")
  assert maxima == [max(data["scores"][0][f"layer_{i}/head_{h}"]["association"]
                        for h in range(num_heads)) for i in range(layers)]
  assert np.isfinite(maxima).all()


def test_attention_targets_find_the_token_a_head_attends_to():
  """A head that looks exactly at each variable's parent definition scores 1 there; one that looks
  at the root's definition scores 1 there and, beyond position 2, 0 on the parent's definition."""
  from experiments.configs.lego import get_config
  from experiments.lego.study import LegoStudy
  batch = LegoStudy(get_config()).batch("test", 0, 16)
  position, offset = batch["position"], batch["parent_offset"]
  b, t = position.shape
  to_parent, to_root = np.zeros((b, t, t)), np.zeros((b, t, t))
  for r in range(b):
    root = int(np.flatnonzero(position[r] == 1)[0])
    for c in np.flatnonzero(position[r]):
      to_parent[r, c, c + 5 * offset[r, c]] = 1
      to_root[r, c, root] = 1
  probes = {"layer_0/head_0/attention": to_parent, "layer_0/head_1/attention": np.zeros((b, t, t)),
            "layer_1/head_0/attention": to_root, "layer_1/head_1/attention": np.zeros((b, t, t))}
  targets = heads.attention_targets(probes, batch, layers=2, heads=2, positions=range(2, 5))
  assert targets["parent definition"] == [[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]  # 2: root = parent
  assert targets["root definition"] == [[1.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
  assert targets["parent mention"] == [[0.0, 0.0]] * 3
