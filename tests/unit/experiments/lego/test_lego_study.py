"""The LEGO study's evaluation split by where each parent's clause stands, against a slow
per-sentence reference that reads only the sentence text."""
import numpy as np
import pytest

from experiments.configs.lego import get_config
from experiments.lego.study import NEAR, LegoStudy, parent_groups
from tasks.lego import CLAUSE_LEN
from tests.unit.tasks.test_lego_task import solve


def _reference_counts(study, batch, predictions):
  """{group: (correct, count) per position}, one clause at a time, from the text alone."""
  n = study.task.num_vars
  groups = {g: (np.zeros(n), np.zeros(n)) for g in ("left", "right", "near", "far")}
  for b in range(len(batch["inputs"])):
    text = study.task.vocab.decode(batch["inputs"][b])
    values, order = solve(text)
    body = text.split()[1:-1]
    clauses = [body[i:i + CLAUSE_LEN] for i in range(0, len(body), CLAUSE_LEN)]
    written = {clause[0]: j for j, clause in enumerate(clauses)}
    for j, (var, _, _, parent, _) in enumerate(clauses):
      if parent not in written:
        continue  # the root
      offset = written[parent] - j
      position = order.index(var) + 1
      token = 1 + CLAUSE_LEN * j
      right = study.task.vocab.decode([predictions[b, token]]) == values[var]
      for group, member in (("left", offset < 0), ("right", offset > 0),
                            ("near", abs(offset) <= NEAR), ("far", abs(offset) > NEAR)):
        if member:
          groups[group][0][position - 1] += right
          groups[group][1][position - 1] += 1
  return groups


def test_parent_groups_match_a_per_sentence_reference():
  study = LegoStudy(get_config("smoke"))
  batch = study.batch("test", 0, 48)
  rng = np.random.default_rng(0)
  # Random predictions, biased towards the truth so that every count is informative.
  truth = np.eye(study.task.num_classes)[batch["targets"]]
  logits = truth * rng.random(batch["inputs"].shape)[..., None] * 1.5 + rng.random(truth.shape)
  sums = {k: np.asarray(v) for k, v in study.eval_sums(logits, batch).items()}
  value_ids = [study.task.vocab.id(v) for v in study.task.algebra.values]
  predictions = np.asarray(value_ids)[logits.argmax(-1)]
  expected = _reference_counts(study, batch, predictions)
  got = parent_groups(sums)
  for group in expected:
    np.testing.assert_array_equal(got[group][0], expected[group][0], err_msg=group)
    np.testing.assert_array_equal(got[group][1], expected[group][1], err_msg=group)
  assert 0 < got["left"][0].sum() < got["left"][1].sum()  # neither all right nor all wrong
  metrics = study.summarize(sums)
  position_3 = expected["far"][0][2] / expected["far"][1][2]
  assert metrics["accuracy_parent_far/position_3"] == pytest.approx(position_3)
  assert "accuracy_parent_left/position_1" not in metrics  # the root has no parent
