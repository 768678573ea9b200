"""The information-flow probe reads a value exactly where (layer, chain position) holds it."""
import numpy as np

from experiments.lego import flow


def _streams(rng, variables: int, layers: int, positions: int, d: int = 16):
  """Layer l holds the value of chain positions <= l along one direction, noise elsewhere."""
  position = rng.integers(1, positions + 1, variables)
  value = rng.integers(0, 2, variables)
  feats = rng.normal(size=(layers + 1, variables, d))
  for layer in range(layers + 1):
    known = position <= layer
    feats[layer, known, 0] += 4.0 * (2 * value[known] - 1)
  return feats, position, value


def test_decodability_finds_the_layer_that_holds_each_position():
  rng = np.random.default_rng(0)
  layers, positions = 3, 4
  accuracy = flow.decodability(_streams(rng, 4000, layers, positions),
                                    _streams(rng, 4000, layers, positions), positions, classes=2)
  assert accuracy.shape == (layers + 1, positions)
  held = np.arange(layers + 1)[:, None] >= np.arange(1, positions + 1)[None]
  assert accuracy[held].min() > 0.97
  assert np.abs(accuracy[~held] - 0.5).max() < 0.08


def test_information_flow_on_a_model_covers_every_layer_and_position():
  from flax import nnx

  from experiments.runtime import train
  from experiments.configs.lego import get_config
  from experiments.lego import LegoStudy
  from models import Transformer
  config = get_config("smoke")
  study = LegoStudy(config)
  model = Transformer(train.resolved_model_config(config, study), rngs=nnx.Rngs(0))
  accuracy = flow.information_flow(model, study, sentences=64)
  assert accuracy.shape == (config.model.num_layers + 1, study.task.num_vars)
  assert ((0 <= accuracy) & (accuracy <= 1)).all()
