"""The LEGO interventions: the corrupted twin changes only the root's value, the clause mask covers
one clause, patching after the last layer gives back the clean predictions and patching identical
embeddings changes nothing, and with no head ablated accuracy is the evaluation's."""
import numpy as np
import pytest

from experiments.configs.lego import get_config
from experiments.lego import LegoStudy, evaluation
from experiments.lego import interventions as lego_interventions
from experiments.runtime import restore, train
from tasks.lego import CLAUSE_LEN


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  config = get_config("smoke,attention=lego")
  config.update(dict(num_steps=2, warmup_steps=1, log_every=2, eval_every=2, checkpoint_every=2))
  train.train_and_evaluate(config, workdir, LegoStudy(config), print_fn=lambda *_: None)
  return restore.load(workdir, "lego")


def test_the_twin_differs_in_the_root_value_and_the_mask_is_one_clause(run):
  batch = run.study.batch("test", 0, 8)
  twin = lego_interventions.corrupt(run.study, batch["inputs"])
  changed = twin != batch["inputs"]
  root = lego_interventions.clause_mask(batch, 1)
  assert (changed.sum(1) == 1).all() and (changed <= root).all()
  for k in range(1, run.study.task.num_vars + 1):
    mask = lego_interventions.clause_mask(batch, k)
    assert (mask.sum(1) == CLAUSE_LEN).all()
    first = np.argmax(mask, 1)
    assert (batch["position"][np.arange(8), first] == k).all()


def test_patching_the_last_layer_restores_and_the_embeddings_of_other_clauses_do_not(run):
  held, passed, clean, corrupted = lego_interventions.patching(run.model, run.study, 256)
  np.testing.assert_allclose(held[-1], clean, atol=1e-6)  # the clean logits at k's token
  np.testing.assert_allclose(held[0, 1:], corrupted[1:], atol=1e-6)  # same tokens: no change
  np.testing.assert_allclose(passed[0, 1:-1], corrupted[2:], atol=1e-6)
  assert np.isnan(passed[:, -1]).all()


def test_head_ablation_baseline_is_the_evaluation(run):
  baseline, ablated = lego_interventions.head_ablation(run.model, run.study, 256)
  chain, _ = evaluation.accuracy_by_position(run.model, run.study, 256, min_count=0)
  np.testing.assert_allclose(baseline, chain, atol=1e-6)
  config = run.model.config
  assert ablated.shape == (config.num_layers, config.num_heads, run.study.task.num_vars)
  with pytest.raises(ValueError, match="ablation: unknown 'half'; allowed: zero, mean"):
    lego_interventions.head_ablation(run.model, run.study, 256, "half")
