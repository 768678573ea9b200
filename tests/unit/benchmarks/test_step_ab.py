"""benchmarks/step_ab.py: arms in separate worker processes taking turns (no timing is asserted)."""
import os

import pytest

from benchmarks import step_ab
from tests.paths import ROOT



@pytest.mark.system  # two worker processes, in turns
def test_two_arms_take_turns_and_their_ratio_is_per_round():
  lines = []
  result = step_ab.measure([("a", ROOT, "experiments/configs/lego.py:smoke"),
                            ("b", ROOT, "experiments/configs/lego.py:smoke,layers=1")],
                           "experiments.lego:LegoStudy", rounds=2, steps=2, warmup_steps=1,
                           print_fn=lines.append)
  assert [len(v) for v in result["ms_per_step"].values()] == [2, 2]
  a, b = result["ms_per_step"]["a"], result["ms_per_step"]["b"]
  assert result["ratios"]["a/b"] == pytest.approx([x / y for x, y in zip(a, b)])
  assert len(lines) == 2 and lines[0].startswith("round 0: a ")


def test_an_arm_that_is_not_a_source_tree_is_named(tmp_path):
  with pytest.raises(SystemExit, match="--arm old: .*not a source tree"):
    step_ab.main(["--arm", "old", str(tmp_path), "x.py", "--arm", "new", ROOT, "x.py"])


def test_arms_need_distinct_names():
  with pytest.raises(SystemExit):
    step_ab.main(["--arm", "a", ROOT, "x.py", "--arm", "a", ROOT, "x.py"])
