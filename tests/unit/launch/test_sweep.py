"""launch.sweep: get_sweep expanded into exact commands, run locally in parallel, finished runs
skipped, results tabulated (CSV, Markdown) and plotted."""
import csv
import os
import subprocess
import sys

import pytest

from launch import sweep
from tests.paths import ROOT

SMOKE = "experiments/configs/lego.py:smoke"


def test_expand_gives_each_run_its_workdir_and_exact_overrides(tmp_path):
  runs = sweep.expand(SMOKE, str(tmp_path))
  assert [r.name for r in runs] == ["000_smoke,model.num_layers=1", "001_smoke,model.num_layers=2"]
  assert runs[1].command(python="python") == [
      "python", "-m", "experiments.lego", "--config=experiments/configs/lego.py:smoke",
      f"--workdir={tmp_path}/001_smoke,model.num_layers=2", "--config.model.num_layers=2"]
  assert all(r.num_steps == 30 and not r.finished() for r in runs)


@pytest.mark.parametrize("config,expected", [
    ("experiments/configs/lego.py:wide", "error: sweep: unknown 'wide'; allowed: smoke, depth"),
    ("experiments/configs/common.py:x", "error: --config: experiments/configs/common.py defines no "
                                        "get_sweep"),
])
def test_bad_sweep_fails_in_one_line(tmp_path, config, expected):
  result = subprocess.run([sys.executable, "-m", "launch.sweep", f"--config={config}",
                           f"--workdir={tmp_path}"], capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(expected), result.stderr


def test_unknown_field_in_a_sweep_point_is_named():
  with pytest.raises(ValueError, match="get_sweep: unknown config field 'model.depth'"):
    sweep.set_field(sweep.load_config_module("experiments/configs/lego.py").get_config("smoke"),
                     "model.depth", 3)


@pytest.mark.system  # parallel training processes
def test_smoke_sweep_runs_in_parallel_skips_finished_and_tabulates(tmp_path):
  command = [sys.executable, "-m", "launch.sweep", f"--config={SMOKE}", f"--workdir={tmp_path}",
             "--workers=2", "--metric=eval/accuracy/trained"]
  first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
  assert first.returncode == 0, first.stderr
  with open(tmp_path / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["run"], r["status"], r["model.num_layers"]) for r in rows] == [
      ("000_smoke,model.num_layers=1", "finished", "1"),
      ("001_smoke,model.num_layers=2", "finished", "2")]
  assert all(0 <= float(r["eval/accuracy/trained"]) <= 1 for r in rows)
  table = (tmp_path / "results.md").read_text().splitlines()
  assert table[0] == "| run | status | model.num_layers | eval/accuracy/trained | train/loss |"
  assert len(table) == 4
  assert (tmp_path / "eval_accuracy_trained.png").stat().st_size > 0
  again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
  assert again.returncode == 0
  assert again.stdout.count(": finished") == 2 and "done " not in again.stdout
