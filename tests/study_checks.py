"""Checks every study's tests share."""
import jax
import numpy as np


def assert_loss_touches_only_weighted_tokens(study):
  """The loss's gradient reaches exactly the tokens whose weight is nonzero (e.g. the answer)."""
  batch = study.batch("train", 0, 8)
  vocab = study.model_fields()["num_outputs"]
  logits = jax.random.normal(jax.random.key(0), batch["inputs"].shape + (vocab,))
  grad = jax.grad(lambda l: study.loss(l, batch)[0])(logits)
  touched = np.abs(np.asarray(grad)).sum(-1) > 0
  np.testing.assert_array_equal(touched, batch["weights"] > 0)


def lego_smoke(fields: dict):
  """The LEGO smoke config with `fields` set: the run the whole-process tests kill and resume."""
  from experiments.configs.lego import get_config
  config = get_config("smoke")
  config.update(fields)
  return config


def train_uninterrupted(config, workdir: str) -> dict:
  """A LEGO run of `config` trained start to end in this process: what a killed run must equal."""
  from experiments.lego import LegoStudy
  from experiments.runtime import train
  return train.train_and_evaluate(config, workdir, LegoStudy(config), print_fn=lambda *_: None)


WALL_CLOCK = ("time", "train_seconds", "steps_per_sec")  # measurements that differ per run


def log_records(workdir) -> list[dict]:
  """A run's metrics.jsonl without its wall-clock fields: what two equal runs share."""
  import os
  from experiments.runtime.metric_log import read_jsonl
  return [{k: v for k, v in r.items() if k not in WALL_CLOCK}
          for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))]


def final_state(config, workdir) -> dict:
  """The train state of a LEGO run's last checkpoint, which must be its final step's."""
  from experiments.lego import LegoStudy
  from experiments.runtime import checkpoints as ckpt_lib
  from experiments.runtime import train
  trainer = train.build_trainer(config, LegoStudy(config))
  checkpoints = ckpt_lib.Checkpoints(str(workdir), every=config.checkpoint_every)
  try:
    assert checkpoints.latest_step() == config.num_steps
    return checkpoints.restore(trainer.abstract_state)
  finally:
    checkpoints.close()
