"""Mimicking pretraining: the targets, the KL loss, the stage learning the patterns, and the
pretrain-then-fine-tune run resuming without pretraining again."""
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lego import get_config
from experiments.lego import LegoStudy
from experiments.lego import mimic
from experiments.runtime import train
from models import probing


def _tokens():
  return jnp.asarray(LegoStudy(get_config("smoke")).batch("train", 0, 4)["inputs"])


def test_targets_are_smoothed_row_distributions():
  manipulation, association = mimic.targets(_tokens())
  for target in (manipulation, association):
    assert target.shape == (4, 62, 62)
    np.testing.assert_allclose(target.sum(-1), 1.0, rtol=1e-5)
    assert float(target.min()) > 0


def test_loss_is_zero_exactly_at_the_targets():
  tokens = _tokens()
  manipulation, association = mimic.targets(tokens)
  other = jnp.full_like(manipulation, 1 / 62)
  weights = jnp.stack([manipulation, association, other], axis=1)
  probes = {f"layer_{i}/attention": weights for i in range(2)}
  assert float(mimic.mimic_loss(probes, tokens, 2, heads=(0, 1))) == pytest.approx(0, abs=1e-6)
  swapped = mimic.mimic_loss(probes, tokens, 2, heads=(1, 0))
  assert float(swapped) > 1.0


def test_stage_teaches_the_patterns():
  config = get_config("mimic,smoke")
  config.mimic.update(dict(num_steps=120, warmup_steps=5, log_every=120, learning_rate=1e-2))
  study = LegoStudy(config)
  trainer = train.build_trainer(config, study)
  tokens = study.batch("test", 0, 8)["inputs"]
  scores = lambda params: probing.head_scores(probing.probe(trainer.model(params), tokens), tokens)
  initial = trainer.init()["params"]
  before = scores(initial)
  params = mimic.pretrain(config, study, trainer, print_fn=lambda *_: None)
  after = scores(params)
  for layer in range(2):
    head = f"layer_{layer}"
    assert after[f"{head}/head_0"]["manipulation"] > before[f"{head}/head_0"]["manipulation"] + 0.4
    assert after[f"{head}/head_1"]["association"] > before[f"{head}/head_1"]["association"] + 0.3
  # only what decides where heads look has moved: not values, outputs or MLPs
  for block, start in zip(params["blocks"].values(), initial["blocks"].values()):
    np.testing.assert_array_equal(block["mlp"]["wi"], start["mlp"]["wi"])
    np.testing.assert_array_equal(block["attn"]["out"], start["attn"]["out"])
    np.testing.assert_array_equal(block["attn"]["qkv"][:, 2], start["attn"]["qkv"][:, 2])
    assert not np.allclose(block["attn"]["qkv"][:, :2], start["attn"]["qkv"][:, :2])


@pytest.mark.system  # a whole run
def test_pretrains_once_then_fine_tunes_and_resumes(tmp_path):
  config = get_config("mimic,smoke")
  config.update(dict(num_steps=6, warmup_steps=1, log_every=2, eval_every=6, checkpoint_every=2))
  lines = []
  first = mimic.train_and_evaluate(config, str(tmp_path), LegoStudy(config), lines.append,
                                   stop_at=2)
  assert any(line.startswith("mimic step 10/10") for line in lines)
  plain = train.train_and_evaluate(config, str(tmp_path / "plain"), LegoStudy(config),
                                   print_fn=lambda *_: None, stop_at=2)
  assert not np.allclose(first["state"]["params"]["embed"], plain["state"]["params"]["embed"])
  lines.clear()
  mimic.train_and_evaluate(config, str(tmp_path), LegoStudy(config), lines.append)
  assert lines[0].startswith("resuming") and not any("mimic" in line for line in lines)


def test_needs_the_mimic_section(tmp_path):
  with pytest.raises(train.SetupError, match="mimic"):
    mimic.train_and_evaluate(get_config("smoke"), str(tmp_path), LegoStudy(get_config("smoke")))
