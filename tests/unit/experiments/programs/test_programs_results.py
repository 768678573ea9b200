"""docs/results/programs.md's summary and tables: sample SDs over seeds, every seed shown."""
import numpy as np

from experiments import pages
from experiments.programs import plots, tables


def test_summary_spread_is_the_sample_sd():
  summary = pages.load(tables.SUMMARY)
  assert plots.summarize(summary["runs"])["models"] == summary["models"]
  k5 = summary["models"]["conv_qkv k=5"]
  assert k5["sd"] == np.std(k5["exact_match"], ddof=1)
  assert round(k5["sd"], 3) == 0.049  # not the population SD, 0.040


def test_tables_show_every_seed_and_the_sample_sd():
  text = tables.per_seed(pages.load)
  assert "seed 0 | seed 1 | seed 2" in text and "0.477 ± 0.049" in text
  for render in (tables.findings, tables.buckets, tables.curves):
    assert render(pages.load).count("\n") >= 2
