"""The configuration space a researcher turns: every valid configuration trains two steps,
checkpoints and resumes bit for bit; every invalid one stops before training with one line naming
the field. Configurations are drawn by hypothesis around each study's smoke config; CI draws a few
per study, `CONFIG_EXAMPLES=200 pytest tests/unit/experiments/test_config_space.py` many more."""
import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import experiments
from experiments.configs import arithmetic as arithmetic_config
from experiments.configs import lego as lego_config
from experiments.configs import programs as programs_config
from experiments.runtime import train

EXAMPLES = int(os.environ.get("CONFIG_EXAMPLES", 3))
quiet = lambda *_: None


def model_axes():
  """The model fields, with values on both sides of each rule."""
  return st.fixed_dictionaries(dict(
      attention=st.sampled_from(["vanilla", "lego", "conv_qkv", "sparse"]),
      num_heads=st.sampled_from([1, 2, 3, 4]),
      d_model=st.sampled_from([8, 12, 16]),
      lego_heads=st.sampled_from([(0, 0), (1, 0), (1, 1), (2, 1), (0, 3), (-1, 1)]),
      conv_kernel=st.sampled_from([0, 1, 2, 3]),
      pos_encoding=st.sampled_from(["learned", "sinusoidal", "rotary", "none", "alibi", "xpos"]),
      tied_layers=st.booleans(),
      num_layers=st.sampled_from([0, 1, 2]),
      dtype=st.sampled_from(["float32", "bfloat16", "float16"]),
      norm=st.sampled_from(["layernorm", "rmsnorm", "batchnorm"]),
      mlp=st.sampled_from(["gelu", "gated", "silu", "relu"]),
      bias=st.booleans(),
      experts=st.sampled_from([0, 0, 1, 2]),  # dense half the time: MoE draws cost more
      experts_per_token=st.sampled_from([1, 2, 3])))


# Valid configurations always tried, so that CI trains some whatever hypothesis draws.
VALID_MODEL = dict(attention="lego", num_heads=2, d_model=8, lego_heads=(1, 1), conv_kernel=3,
                   pos_encoding="rotary", tied_layers=True, num_layers=2, dtype="bfloat16",
                   norm="rmsnorm", mlp="gated", bias=False, experts=2, experts_per_token=2)
VALID_RUN = dict(batch_size=4, eval_size=8, mesh=dict(data=-1, fsdp=1, tensor=1))


def train_axes():
  return st.fixed_dictionaries(dict(
      batch_size=st.sampled_from([0, 4, 6, 8]),
      eval_size=st.sampled_from([4, 8, 12]),
      mesh=st.sampled_from([dict(data=-1, fsdp=1, tensor=1), dict(data=1, fsdp=1, tensor=-1),
                            dict(data=2, fsdp=1, tensor=1), dict(data=-1, fsdp=-1, tensor=1)])))


def model_errors(m) -> list[str]:
  """The fields a bad model may be refused on, by the rules, written apart from the code."""
  errors = []
  if m["attention"] not in ("vanilla", "lego", "conv_qkv"):
    errors.append("model.attention")
  if m["pos_encoding"] not in ("learned", "sinusoidal", "rotary", "none", "alibi"):
    errors.append("model.pos_encoding")
  elif m["pos_encoding"] == "rotary" and m["d_model"] // m["num_heads"] % 2:
    errors.append("model.pos_encoding")  # rotary turns pairs of channels: an even head_dim
  if m["d_model"] % m["num_heads"]:
    errors.append("model.num_heads")
  if m["num_layers"] < 1:
    errors.append("model.num_layers")
  if m["dtype"] not in ("float32", "bfloat16"):
    errors.append("model.dtype")
  if m["norm"] not in ("layernorm", "rmsnorm"):
    errors.append("model.norm")
  if m["mlp"] not in ("gelu", "gated", "silu"):
    errors.append("model.mlp")
  if m["experts"] == 1:
    errors.append("model.experts")
  elif m["experts"] and m["experts_per_token"] > m["experts"]:
    errors.append("model.experts_per_token")
  if m["attention"] == "lego" and (min(m["lego_heads"]) < 0 or sum(m["lego_heads"]) > m["num_heads"]):
    errors.append("model.lego_heads")
  if m["attention"] == "conv_qkv" and m["conv_kernel"] < 1:
    errors.append("model.conv_kernel")
  return errors


def train_errors(t) -> list[str]:
  errors = []
  if t["batch_size"] < 1:
    errors.append("batch_size")
  elif t["eval_size"] > t["batch_size"] and t["eval_size"] % t["batch_size"]:
    errors.append("eval_size")
  if list(t["mesh"].values()).count(-1) > 1 or t["mesh"]["data"] > jax.device_count():
    errors.append("mesh")
  return errors


def check(config, study: str, errors: list[str], tmp_path):
  """Trains two steps of study `study` straight and one + one across a checkpoint; or the one-line
  refusal."""
  make_study = experiments.study(study).make_study
  config.update(dict(num_steps=2, warmup_steps=0, log_every=1, eval_every=2, checkpoint_every=1))
  runs = [tmp_path / "straight", tmp_path / "resumed"]
  try:
    straight = train.train_and_evaluate(config, str(runs[0]), make_study(config), print_fn=quiet)
  except ValueError as e:  # SetupError is one
    assert errors, f"refused a valid config: {e}"
    message = str(e)
    assert "\n" not in message and message.startswith(tuple(errors)), (errors, message)
    assert not os.path.exists(runs[0] / "checkpoints" / "1")
    return
  assert not errors, f"trained a config that should fail on {errors}"
  train.train_and_evaluate(config, str(runs[1]), make_study(config), print_fn=quiet, stop_at=1)
  resumed = train.train_and_evaluate(config, str(runs[1]), make_study(config), print_fn=quiet)
  jax.tree.map(np.testing.assert_array_equal, straight["state"], resumed["state"])
  assert straight["metrics"] == resumed["metrics"]


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@example(model=VALID_MODEL, run=VALID_RUN, num_vars=3, train_positions=2, group="s3")
@given(model=model_axes(), run=train_axes(), num_vars=st.sampled_from([0, 2, 3, 27]),
       train_positions=st.sampled_from([1, 2, 3]), group=st.sampled_from(["z2", "z3", "s3", "q8"]))
def test_lego_config_space(tmp_path_factory, model, run, num_vars, train_positions, group):
  config = lego_config.get_config("smoke")
  config.model.update({**model, "d_ff": 2 * model["d_model"]})
  config.update(run)
  config.task.update(dict(num_vars=num_vars, train_positions=train_positions, group=group))
  errors = model_errors(model) + train_errors(run)
  if not 1 <= num_vars <= 26:
    errors.append("task.num_vars")
  elif not 1 <= train_positions <= num_vars:
    errors.append("task.train_positions")
  if group == "q8":
    errors.append("task.group")
  check(config, "lego", errors, tmp_path_factory.mktemp("lego"))


@SETTINGS
@example(model={**VALID_MODEL, "attention": "conv_qkv", "pos_encoding": "alibi", "mlp": "silu",
                "experts": 0}, run=VALID_RUN,
         op="mul", fmt="reverse")
@given(model=model_axes(), run=train_axes(), op=st.sampled_from(["add", "sub", "mul", "div"]),
       fmt=st.sampled_from(["plain", "reverse", "pad,reverse", "index_hints", "backwards"]))
def test_arithmetic_config_space(tmp_path_factory, model, run, op, fmt):
  config = arithmetic_config.get_config("smoke")
  config.model.update({**model, "d_ff": 2 * model["d_model"]})
  config.update(run)
  config.task.update(dict(op=op, format=fmt))
  errors = model_errors(model) + train_errors(run)
  if op == "div":
    errors.append("task.op")
  if fmt == "backwards":
    errors.append("task.format")
  elif "pad" in fmt.split(","):  # padded to task.max_digits, narrower than the eval grid's operands
    errors.append("task.pad_width")
  check(config, "arithmetic", errors, tmp_path_factory.mktemp("arithmetic"))


@SETTINGS
@example(model={**VALID_MODEL, "pos_encoding": "learned"}, run=VALID_RUN, num_vars=2, max_depth=1,
         loop_bound=2, modulus=10)
@given(model=model_axes(), run=train_axes(), num_vars=st.sampled_from([0, 2, 9]),
       max_depth=st.sampled_from([-1, 0, 1]), loop_bound=st.sampled_from([0, 2, 12]),
       modulus=st.sampled_from([1, 10]))
def test_programs_config_space(tmp_path_factory, model, run, num_vars, max_depth, loop_bound,
                               modulus):
  config = programs_config.get_config("smoke")
  config.model.update({**model, "d_ff": 2 * model["d_model"]})
  config.update(run)
  config.task.update(dict(num_vars=num_vars, max_depth=max_depth, loop_bound=loop_bound,
                          modulus=modulus))
  errors = model_errors(model) + train_errors(run)
  if not 1 <= num_vars <= 8:
    errors.append("task.num_vars")
  if max_depth < 0:
    errors.append("task.max_depth")
  if modulus < 2:
    errors += ["task.modulus", "task.ops"]  # '%' needs a divisor below the modulus too
  if not 1 <= loop_bound <= modulus:  # a loop counter must stay inside the value range
    errors.append("task.loop_bound")
  check(config, "programs", errors, tmp_path_factory.mktemp("programs"))


def test_lego_default_ties_its_layers_and_tied_false_unties_them():
  """The default study is one LEGO-attention block applied 12 times (docs/results/lego.md: untied,
  its outcome swung with the seed); `tied=False` is BERT's untied stack of the same shape."""
  count = lambda config: sum(x.size for x in jax.tree.leaves(
      train.build_trainer(config, experiments.study("lego").make_study(config)).init()["params"]))
  tied, untied = lego_config.get_config(), lego_config.get_config("tied=False")
  assert (tied.model.tied_layers, untied.model.tied_layers) == (True, False)
  assert tied.model.num_layers == untied.model.num_layers == 12
  assert (count(tied), count(untied)) == (35_586, 355_906)  # the figures the docs quote
  assert not lego_config.get_config("smoke").model.tied_layers
  assert [p["config"] for p in lego_config.get_sweep("tied")][:2] == ["layers=2,tied=False",
                                                                      "layers=2,tied=True"]


def test_knobs_given_override_the_smoke_preset():
  """`smoke` sets a tiny model through knob defaults, so a knob in the same variant string wins
  (before, `smoke,attention=lego` silently trained vanilla attention)."""
  smoke, lego_smoke = lego_config.get_config("smoke"), lego_config.get_config("smoke,attention=lego")
  assert (smoke.model.attention, smoke.model.num_layers, smoke.model.tied_layers) == ("vanilla", 2,
                                                                                      False)
  assert lego_smoke.model.attention == "lego" and lego_smoke.model.num_layers == 2
  assert lego_config.get_config("smoke,layers=3,tied=True").model.num_layers == 3
  arithmetic = arithmetic_config.get_config("smoke,d_model=16,steps=7")
  assert (arithmetic.model.d_model, arithmetic.model.d_ff, arithmetic.num_steps) == (16, 32, 7)
  programs = programs_config.get_config("smoke,statements=3,batch=8")
  assert (programs.task.max_statements, programs.batch_size, programs.model.d_model) == (3, 8, 32)


def test_knob_values_of_the_wrong_kind_fail_naming_the_knob():
  for variant, message in (("tied=yes", "config variant: tied='yes'; allowed: True or False"),
                           ("layers=2.5", "config variant: layers=2.5; allowed: an integer"),
                           ("seed=True", "config variant: seed=True; allowed: an integer")):
    with pytest.raises(ValueError) as error:
      lego_config.get_config(variant)
    assert str(error.value) == message
  assert arithmetic_config.get_config("smoke,lr=1").learning_rate == 1  # an int where a float goes
  with pytest.raises(ValueError, match=r"lr='fast'; allowed: a number"):
    arithmetic_config.get_config("smoke,lr=fast")
