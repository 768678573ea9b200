"""launch.sweep: get_sweep expanded into exact commands, run locally in parallel, finished runs
skipped, results tabulated (CSV, Markdown) and plotted."""
import csv
import os
import subprocess
import sys

import pytest

from launch import results, sweep
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


def test_a_sweep_file_outside_the_configs_runs_the_study_it_names(tmp_path):
  copy = tmp_path / "my_sweeps.py"
  source = open(os.path.join(ROOT, "experiments", "configs", "lego.py")).read()
  copy.write_text(source)
  runs = sweep.expand(f"{copy}:smoke", str(tmp_path / "runs"))
  assert [r.command(python="python")[:4] for r in runs] == 2 * [
      ["python", "-m", "experiments.lego", f"--config={copy}:smoke"]]
  copy.write_text(source.replace('STUDY = "lego"', 'STUDY = "lgo"'))
  with pytest.raises(ValueError, match=r"names no study \(STUDY = 'lgo'\); set STUDY in it to one "
                                       r"of lego, .*, or name the study with --study"):
    sweep.expand(f"{copy}:smoke", str(tmp_path / "runs"))
  assert sweep.expand(f"{copy}:smoke", str(tmp_path / "runs"), study="lego")[0].module == (
      "experiments.lego")


def test_a_sweep_point_with_an_impossible_value_fails_before_any_run(tmp_path):
  sweeps = tmp_path / "sweeps.py"
  sweeps.write_text(open(os.path.join(ROOT, "experiments", "configs", "lego.py")).read()
                    + "\ndef get_sweep(arg):\n  return [{'config': 'smoke', 'learning_rate': -1.0}]\n")
  with pytest.raises(ValueError) as error:
    sweep.expand(f"{sweeps}:any", str(tmp_path / "runs"))
  assert str(error.value) == ("get_sweep: point smoke,learning_rate=-1.0: learning_rate: -1.0; "
                              "allowed: > 0 (finite)")


def test_a_run_is_finished_once_its_final_evaluation_and_checkpoint_are_on_disk(tmp_path):
  run = sweep.expand(SMOKE, str(tmp_path))[0]
  os.makedirs(os.path.join(run.workdir, "checkpoints", "15"))
  log = os.path.join(run.workdir, "metrics.jsonl")
  with open(log, "w") as f:
    f.write('{"step": 30, "eval/accuracy/trained": 0.5}\n')
  assert not run.finished()  # killed between the log's flush and the last checkpoint's commit
  os.makedirs(os.path.join(run.workdir, "checkpoints", "30"))
  assert run.finished()
  with open(log, "a") as f:
    f.write("garbage\n")
  assert not run.finished()  # a damaged log: the rerun names its line
  results.collect([run], str(tmp_path))
  with open(tmp_path / "results.csv") as f:
    assert next(csv.DictReader(f))["status"] == "damaged log"


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
