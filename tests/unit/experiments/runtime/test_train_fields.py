"""The train fields' allowed values, generated from the table the validator reads
(train.TRAIN_BOUNDS): a value just outside any bound (and, for a float, nan or an infinity) stops the
run before its workdir is touched, in one line naming the field and what it allows; the values on
and just inside each bound pass."""
import math

import numpy as np
import pytest

from experiments.configs.lego import get_config
from experiments.lego import LegoStudy
from experiments.runtime import train


def _base():
  """The smoke config without warmup, so that one step (num_steps=1) is a valid run."""
  config = get_config("smoke")
  config.warmup_steps = 0
  return config


def _steps(name):
  """The values next below and next above a value, of the field's kind."""
  if isinstance(train.TRAIN_FIELDS[name], int):
    return (lambda x: x - 1), (lambda x: x + 1)
  return (lambda x: float(np.nextafter(x, -math.inf))), (lambda x: float(np.nextafter(x, math.inf)))


def _limits(name, bound):
  """The bound's ends, of the field's kind (a float field's 0 is 0.0)."""
  kind = type(train.TRAIN_FIELDS[name])
  return tuple(None if end is None else kind(end) for end in bound.limits(_base()))


def outside(name, bound):
  low, high = _limits(name, bound)
  below, above = _steps(name)
  values = [low if bound.low_open else below(low)]
  if high is not None:
    values.append(high if bound.high_open else above(high))
  if isinstance(train.TRAIN_FIELDS[name], float):
    values += [math.nan, math.inf, -math.inf]
  return values


def inside(name, bound):
  low, high = _limits(name, bound)
  below, above = _steps(name)
  values = [above(low) if bound.low_open else low]
  if high is not None:
    values.append(below(high) if bound.high_open else high)
  return values


OUTSIDE = [(n, v) for n, b in train.TRAIN_BOUNDS.items() for v in outside(n, b)]
INSIDE = [(n, v) for n, b in train.TRAIN_BOUNDS.items() for v in inside(n, b)]


def test_every_train_field_declares_what_it_allows():
  assert set(train.TRAIN_BOUNDS) == set(train.TRAIN_FIELDS)
  assert len(OUTSIDE) >= 2 * len(train.TRAIN_FIELDS)


@pytest.mark.parametrize("name,value", OUTSIDE, ids=[f"{n}={v}" for n, v in OUTSIDE])
def test_a_value_just_outside_a_bound_stops_in_one_line(tmp_path, name, value):
  config = _base()
  config[name] = value
  with pytest.raises(train.SetupError) as error:
    train.train_and_evaluate(config, str(tmp_path / "run"), LegoStudy(config))
  message = str(error.value)
  assert "\n" not in message and message.startswith(f"{name}: {value}; allowed: "), message
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name,value", INSIDE, ids=[f"{n}={v}" for n, v in INSIDE])
def test_the_values_on_and_just_inside_each_bound_pass(name, value):
  config = _base()
  config[name] = value
  train.validate(config)


def test_the_messages_say_what_is_allowed():
  config = _base()
  bounds = train.TRAIN_BOUNDS
  assert bounds["steps_per_call"].describe("steps_per_call", config) == ">= 1"
  assert bounds["learning_rate"].describe("learning_rate", config) == "> 0"
  assert bounds["b2"].describe("b2", config) == "0 <= b2 < 1"
  assert bounds["final_lr_ratio"].describe("final_lr_ratio", config) == "0 <= final_lr_ratio <= 1"
  assert (bounds["warmup_steps"].describe("warmup_steps", config)
          == "0 <= warmup_steps < num_steps=30")
