"""docs/results/arithmetic.md's sweep, summary and tables: the sweep carries every override the
figures need, the gathering names runs as the tables read them, the tables use sample SDs."""
import json

import numpy as np

from experiments import pages
from experiments.arithmetic import plots, tables
from experiments.configs.arithmetic import get_config
from launch import sweep


def test_figures_sweep_carries_every_override(tmp_path):
  runs = sweep.expand("experiments/configs/arithmetic.py:figures", str(tmp_path))
  assert len(runs) == 19 and all(r.module == "experiments.arithmetic" for r in runs)
  configs = []
  for run in runs:
    config = get_config(run.variant)
    for field, value in run.overrides.items():
      sweep.set_field(config, field, value)
    configs.append(config)
  assert all(c.model.init_std == 0.02 and c.model.embed_std == 0.02 for c in configs)
  assert all(c.num_steps == 4000 and c.learning_rate == 5e-4 and c.batch_size == 128
             for c in configs)
  add = [c for c in configs if c.task.op == "add"]
  mul = [c for c in configs if c.task.op == "mul"]
  assert len(add) == 15 and {c.seed for c in add} == {0, 1, 2}
  assert {c.model.pos_encoding for c in add} == {"learned", "random_embedding", "randomized",
                                                 "abacus"}
  assert {c.task.format for c in mul} == {"plain", "reverse", "pad", "pad,reverse"}
  assert all(c.task.max_digits == 4 and c.model.num_layers == 6 and c.seed == 0 for c in mul)


def test_gather_names_runs_as_the_tables_read_them(tmp_path):
  for i, (fmt, pos, op, seed) in enumerate([("reverse_operands,reverse,random_space", "learned",
                                             "add", 1), ("pad,reverse", "learned", "mul", 0)]):
    run = tmp_path / f"{i:03d}_x"
    run.mkdir()
    (run / "accuracy_grid.json").write_text(json.dumps(
        {"op": op, "format": fmt, "pos_encoding": pos, "seed": seed, "grid": [[1.0]]}))
    (run / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n'
                                       '{"step": 10, "eval/exact_match": 0.5}\n')
  summary = plots.gather(str(tmp_path))
  assert sorted(summary) == ["pad_reverse", "random_space_s1"]
  assert summary["pad_reverse"]["curve"] == [{"step": 10, "eval/exact_match": 0.5}]


def test_tables_use_the_sample_sd():
  summary = pages.load(tables.SUMMARY)
  regions = [tables._regions(np.array(summary[f"learned_s{s}"]["grid"]))[0] for s in range(3)]
  assert f"| {np.mean(regions):.2f} ± {np.std(regions, ddof=1):.2f} |" in tables.addition(pages.load)
  for render in (tables.findings, tables.addition, tables.reach, tables.multiplication,
                 tables.margin):
    assert render(pages.load).count("\n") >= 2
