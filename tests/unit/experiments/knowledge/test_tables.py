"""The knowledge page's tables render from the committed summaries, each run of a summary is a
variant of the named sweep it sits under, and the statistics are the sample ones."""
import statistics

from experiments import pages
from experiments.configs.knowledge import SWEEPS, get_config
from experiments.knowledge import tables

SUMMARIES = (tables.EXTRACTION, tables.CAPACITY, tables.CPU1000, tables.CUTS)


def test_every_summary_run_is_a_variant_of_its_sweep_and_names_its_seeds_and_command():
  for name in SUMMARIES:
    data = pages.load(name)
    assert data["seeds"] and data["command"] and data["runs"]
    for sweep, runs in data["sweeps"].items():
      assert set(runs) <= set(SWEEPS[sweep]), (name, sweep)
      for variant in runs:
        get_config(variant)


def test_the_page_runs_that_used_gpt2_init_carry_it_in_their_sweep():
  for sweep in ("extraction", "capacity100_biod", "capacity1000_biod", "capacity100_biod_lr",
                "capacity100_biod_fast", "capacity1000_biod_fast", "capacity1000_biod_cpu"):
    assert all(get_config(v).model.init_std == 0.02 for v in SWEEPS[sweep]), sweep


def test_arch_table_gives_each_seed_the_mean_and_the_sample_sd():
  text = tables.arch(pages.load)
  assert "| gpt2 | 48 | 51,068 | 12,670 / 22,457 | 0.248 / 0.440 | **0.344** | 0.135 |" in text
  assert round(statistics.stdev([0.2481, 0.4397]), 3) == 0.135  # ddof = 1 (population: 0.096)


def test_findings_table_has_one_word_verdicts():
  rows = tables.findings(pages.load).splitlines()[2:]
  assert {row.split(" | ")[3] for row in rows} <= {"holds", "partly", "not", "not run"}
