"""Any rows of any study's batch equal those rows of the whole batch, and drawing them draws only
the blocks that hold them: what lets each process of a multi-host run feed just its own rows."""
import numpy as np
import pytest

import experiments
from tasks import rows as rows_lib
from tasks.lego import LegoTask

BATCH = 20  # blocks of 8, 8 and 4 rows
SLICES = [slice(0, 10), slice(10, 20), slice(3, 5), slice(7, 17), slice(19, 20), slice(0, 20)]


def _study(name: str, variant: str = "smoke", adjust=lambda config: None):
  spec = experiments.study(name)
  config = spec.get_config(variant)
  adjust(config)
  return spec.make_study(config)


STUDIES = {
    **{name: lambda name=name: _study(name) for name in experiments.STUDIES},  # each one's smoke
    "lego_curriculum": lambda: _study(
        "lego", adjust=lambda config: setattr(config.curriculum, "steps", 100)),
    "arithmetic_randomized": lambda: _study("arithmetic", "smoke,pos=randomized"),
    "arithmetic_abacus_scratchpad_text": lambda: _study(
        "arithmetic", "smoke,pos=abacus,format=scratchpad+text"),
    "knowledge_mixed": lambda: _study("knowledge", "smoke,mixed"),
    "biod": lambda: _study("knowledge", "smoke,data=biod,people=30,K=2,C=2,D=8,L=1,T=8"),
    "biod_junk_domain": lambda: _study(
        "knowledge",
        "smoke,data=biod,people=30,K=2,C=2,D=8,L=1,T=8,junk=0.75,junk_exposures=2,domain=True"),
}


@pytest.mark.parametrize("name", STUDIES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_rows_of_a_batch_equal_the_whole_batch_rows(name, split):
  study = STUDIES[name]()
  whole = study.batch(split, 3, BATCH)
  assert all(len(v) == BATCH for v in whole.values())
  for rows in SLICES:
    part = study.batch(split, 3, BATCH, rows)
    assert part.keys() == whole.keys()
    for key in whole:
      np.testing.assert_array_equal(part[key], whole[key][rows], err_msg=f"{name} {key} {rows}")


def test_a_slice_draws_only_the_blocks_holding_it(monkeypatch):
  drawn = []
  block = LegoTask.block
  monkeypatch.setattr(LegoTask, "block", lambda self, *args: drawn.append(args[3]) or block(
      self, *args))
  LegoTask(num_vars=6).batch(0, "train", 0, 64, slice(16, 40))
  assert drawn == [2, 3, 4]


def test_blocks_are_independent_of_the_batch_size():
  """A block's rows depend on its index alone, so a larger batch begins with the smaller one."""
  task = LegoTask(num_vars=6)
  np.testing.assert_array_equal(task.batch(0, "train", 5, 32)["inputs"],
                                task.batch(0, "train", 5, 48)["inputs"][:32])


@pytest.mark.parametrize("rows", [slice(5, 5), slice(0, 10, 2)])
def test_bad_rows_fail_in_one_line(rows):
  with pytest.raises(ValueError, match="rows: .*allowed: a non-empty contiguous slice"):
    rows_lib.bounds(rows, 10)
