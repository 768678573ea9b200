"""The capacity meter against hand-computed cases, and int8 / int4 quantisation."""
import math

import jax
import numpy as np
import pytest

from experiments.configs.knowledge import get_config
from experiments.knowledge import capacity, stages
from experiments.knowledge.quantize import quantize_int4, quantize_int8
from experiments.knowledge.study import make_study
from experiments.runtime import train
from tasks.biod import BioDTask
from tasks.biography import KIND_NAME, NAME_LEN, NUM_NAMES, BioSTask, attribute_space_bits

S0_BITS = math.log2(2 * (12 * 28 * 200) * 200 * 300 * 100 * 263)


def test_attribute_space_matches_the_published_count():
  assert abs(S0_BITS - 47.59) < 0.01
  assert abs(attribute_space_bits(True) - S0_BITS) < 1e-9
  assert abs(attribute_space_bits(False) - (S0_BITS - 1)) < 1e-9


def test_perfect_model_reaches_the_formula_maximum():
  n = 1000
  result = capacity.bits_stored(np.full(n, math.log(n)), np.zeros(n), S0_BITS)
  by_hand = n * math.log2((NUM_NAMES - n) / n) + n * S0_BITS
  assert abs(result["bits"] - by_hand) < 1e-6 * by_hand
  assert abs(capacity.max_bits(n, S0_BITS) - by_hand) < 1e-6 * by_hand
  assert abs(by_hand / n - (math.log2(159_999_000 / 1000) + 47.59)) < 0.01  # ~64.9 bits a person


def test_uniform_model_stores_about_nothing():
  n = 1000
  result = capacity.bits_stored(np.full(n, math.log(NUM_NAMES)), np.full(n, S0_BITS * math.log(2)),
                                S0_BITS)
  assert abs(result["bits"]) < 0.01  # n * log2(1 - n / N0) = -0.009 bits
  assert result["bits"] < 0


def test_person_losses_sum_the_right_tokens():
  task = BioSTask(people=12, multi=1)
  rows = task.person_rows(0, np.arange(12))
  name, value, gender = capacity.person_losses(np.ones(rows["targets"].shape), rows["person"],
                                               rows["kind"], 12)
  first_name_at = [np.flatnonzero(k == KIND_NAME)[0] for k in rows["kind"]]
  np.testing.assert_array_equal(name, NAME_LEN + np.array(first_name_at))  # prefix words count
  assert max(first_name_at) > 0
  corpus = task.corpus(0)
  expected = [(corpus.kinds[p, 0] >= 2).sum() for p in range(12)]
  np.testing.assert_array_equal(value, expected)
  assert gender.all()


def test_measure_with_oracle_and_uniform_token_losses():
  """A model paying ln N on the first token only (and nothing else) is at the maximum."""
  task = BioSTask(people=50)
  first = lambda rows: (np.arange(rows["kind"].shape[1]) == 0)[None] * math.log(50)
  oracle = capacity.measure(lambda rows: np.broadcast_to(first(rows), rows["kind"].shape), task, 0,
                            num_params=100)
  assert abs(oracle["bits"] - oracle["max_bits"]) < 1e-6 * oracle["max_bits"]
  assert abs(oracle["bits_per_param"] - oracle["bits"] / 100) < 1e-12
  clueless = capacity.measure(lambda rows: np.full(rows["targets"].shape, 9.0), task, 0, 100)
  assert clueless["bits"] < 0


def test_biod_value_space():
  task = BioDTask(people=20, attributes=3, chunks=2, pool=16)
  np.testing.assert_allclose(task.value_space_bits(np.zeros(20, bool)), 3 * 2 * 4)


def test_int8_quantisation_is_per_channel_and_close():
  w = jax.random.normal(jax.random.key(0), (64, 8)) * np.linspace(0.01, 10, 8)
  params = {"w": w, "b": jax.numpy.arange(8.0) / 3}
  q = quantize_int8(params)
  np.testing.assert_array_equal(q["b"], params["b"])  # vectors stay float
  scale = np.abs(np.asarray(w)).max(0) / 127
  steps = np.asarray(q["w"]) / scale
  np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # on each column's int8 grid
  assert (np.abs(steps) <= 127.001).all()
  assert (np.abs(np.asarray(q["w"]) - np.asarray(w)) <= scale / 2 + 1e-6).all()
  assert len(np.unique(steps[:, 0].round())) > 20


@pytest.mark.parametrize("group_size", [None, 8, 24])
def test_int4_rounds_each_weight_to_its_group_grid_within_half_a_step(group_size):
  w = jax.random.normal(jax.random.key(1), (40, 6)) * np.linspace(0.01, 10, 6)
  params = {"w": w, "b": jax.numpy.arange(6.0) / 3}
  q = quantize_int4(params, group_size)
  np.testing.assert_array_equal(q["b"], params["b"])
  w, q = np.asarray(w), np.asarray(q["w"])
  size = group_size or len(w)
  for start in range(0, len(w), size):  # the last group of 24 is 16 rows
    block, got = w[start:start + size], q[start:start + size]
    scale = np.abs(block).max(0) / 7
    steps = got / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)  # on the group's 15-level grid
    assert (np.abs(steps) <= 7.0001).all()
    assert (np.abs(got - block) <= scale / 2 + 1e-6).all()
    np.testing.assert_allclose(np.abs(steps).max(0), 7, rtol=1e-5)  # each group its own scale


def test_capacity_meter_runs_on_an_int4_model():
  """The meter reads an int4-quantised model: lower capacity than float32, unlike int8's."""
  config = get_config("smoke,data=biod,people=20,K=2,C=1,D=4,L=1,T=8,exposures=2")
  study = make_study(config)
  trainer = train.build_trainer(config, study)
  params = trainer.init()["params"]
  measure = stages.capacity_meter(trainer)
  full = measure(params, study.task, 0)
  int4 = measure(quantize_int4(params), study.task, 0)
  assert int4["params"] == full["params"] and int4["max_bits"] == full["max_bits"]
  assert int4["p1"] != full["p1"] and np.isfinite(int4["bits"])
