"""The arithmetic study: answer-only loss, positions per encoding, decoding, the smoke run."""
import json

import numpy as np
import pytest

from experiments.arithmetic import ArithmeticStudy
from experiments.configs.arithmetic import get_config
from experiments.runtime import restore, train
from models.decoding import greedy_generate
from tests.study_checks import assert_loss_touches_only_weighted_tokens

quiet = lambda *_: None


def _study(variant="", **task):
  config = get_config("smoke" + ("," + variant if variant else ""))
  config.task.update(task)
  return config, ArithmeticStudy(config)


def test_loss_touches_only_the_answer():
  assert_loss_touches_only_weighted_tokens(_study()[1])


def test_positions_follow_the_encoding():
  _, study = _study("pos=abacus", format="reverse_operands,reverse")
  train_pos = study.batch("train", 0, 16)["positions"]
  test = study.batch("test", 0, 16)
  digits = np.isin(test["inputs"], study.task.digit_ids)
  assert test["positions"][digits].min() == 1 and (test["positions"][~digits] == 0).all()
  assert train_pos.max() > study.task.max_digits + 1  # training shifts by random offsets
  assert study.max_len > study.abacus_max_offset
  _, study = _study("pos=randomized")
  pos = study.batch("train", 0, 16)["positions"]
  assert (np.diff(pos, axis=1) > 0).all() and pos.max() >= pos.shape[1]
  _, study = _study("pos=learned")
  assert "positions" not in study.batch("train", 0, 4)


def test_pad_width_too_small_for_the_grid_fails_early():
  config = get_config("smoke,format=pad")
  config.task.pad_width = 2  # the smoke grid reaches 3 digits
  with pytest.raises(ValueError, match="task.pad_width: 2 is smaller than an operand"):
    ArithmeticStudy(config)


@pytest.mark.parametrize("pos", ["learned", "abacus"])
def test_decoding_starts_where_teacher_forcing_does(pos):
  config, study = _study(f"pos={pos},format=reverse")
  trainer = train.build_trainer(config, study)
  model = trainer.model(trainer.init()["params"])
  batch = study.batch("test", 0, 8)
  logits = model(batch["inputs"], positions=batch.get("positions"))
  first = np.asarray(logits)[np.arange(8), batch["prompt_length"] - 1].argmax(-1)
  kwargs = {"position_fn": study.abacus_fn} if pos == "abacus" else {}
  new = greedy_generate(model, batch["inputs"], batch["prompt_length"], 3, **kwargs)
  np.testing.assert_array_equal(new[:, 0], first)


def test_smoke_run_writes_grid_json_and_heatmap(tmp_path):
  config, study = _study()
  result = train.train_and_evaluate(config, str(tmp_path), study, print_fn=quiet)
  assert np.isfinite(result["metrics"]["token_accuracy"])
  report = study.report(str(tmp_path), result["metrics"], print_fn=quiet)
  saved = json.loads((tmp_path / "accuracy_grid.json").read_text())
  grid = np.array(saved["grid"])
  assert grid.shape == (3, 3) and ((0 <= grid) & (grid <= 1)).all()
  assert saved["train_digits"] == 2 and report["grid"] == saved["grid"]
  assert (tmp_path / "accuracy_grid.png").stat().st_size > 1000
  model = restore.load(str(tmp_path), "arithmetic").model
  np.testing.assert_array_equal(study.accuracy_grid(model), grid)
