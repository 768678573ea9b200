"""Every command line: a bad value is one line on stderr, exit status 2, no traceback."""
import importlib
import os
import subprocess
import sys

import pytest

from tests.paths import ROOT

LEGO = "--config=experiments/configs/lego.py:smoke"

# (module, argv, words the one line must contain): argparse command lines, called in-process.
ARGPARSE = [
    ("tasks.lego", ["--num-vars", "5", "--num", "-3"], "--num: -3; allowed: >= 1"),
    ("tasks.lego", ["--num-vars", "30"], "num_vars"),
    ("tasks.lego", ["--num", "x"], "invalid int value: 'x'"),
    ("tasks.lego", ["--split", "dev"], "invalid choice: 'dev'"),
    ("tasks.lego", ["--group", "q8"], "unknown group 'q8'"),
    ("tasks.lego", ["--seed", "-1"], "--seed: -1; allowed: >= 0"),
    ("tasks.arithmetic", ["--op", "div"], "op"),
    ("tasks.arithmetic", ["--digits", "0"], "digits"),
    ("tasks.arithmetic", ["--format", "upside_down"], "format"),
    ("tasks.arithmetic", ["--num", "0"], "--num: 0; allowed: >= 1"),
    ("tasks.biography", ["--people", "0"], "--people: 0; allowed: >= 1"),
    ("tasks.biography", ["--multi", "0"], "multi"),
    ("tasks.biod", ["--people", "0"], "--people: 0; allowed: >= 1"),
    ("tasks.biod", ["--attributes", "0"], "attributes"),
    ("tasks.programs", ["--num", "0"], "--num: 0; allowed: >= 1"),
    ("tasks.programs", ["--modulus", "10", "--loop-bound", "20"], "task.loop_bound"),
    ("tasks.programs", ["--constructs", "while"], "constructs"),
    ("launch.sweep", ["--config=experiments/configs/lego.py:nope", "--workdir=/tmp/x"], "nope"),
    ("launch.sweep", ["--config=experiments/configs/lego.py:smoke", "--workdir=/tmp/x",
                      "--workers=0"], "--workers: 0; allowed: >= 1"),
    ("launch.slurm", ["--config=experiments/configs/lego.py:smoke", "--workdir=/tmp/x",
                      "--nodes=0"], "--nodes: 0; allowed: >= 1"),
    ("launch.slurm", ["--workdir=/tmp/x"], "the following arguments are required: --config"),
    ("launch.tpu", ["--name=a", "--zone=z"], "the following arguments are required"),
    ("experiments.lego.evaluation", ["evaluate", "--out=x.json"], "workdirs"),
    ("experiments.lego.evaluation", ["report", "r.json", "--trained=0"], "--trained: 0"),
    ("benchmarks.benchmark", ["--repeats=0"], "--repeats: 0; allowed: >= 1"),
    ("benchmarks.benchmark", ["--d-models=32,64", "--seq-lens=16"], "same number of entries"),
    ("experiments.knowledge.sweep_report", ["only_one"], "usage:"),
]


@pytest.mark.parametrize("module,argv,expected", ARGPARSE)
def test_bad_value_is_one_line_and_status_2(module, argv, expected, capsys):
  with pytest.raises(SystemExit) as exit:
    importlib.import_module(module).main(argv)
  out, err = capsys.readouterr()
  assert exit.value.code == 2
  assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, err
  assert out == ""


# Through `python -m`, as a user runs them: the interpreter's exit status, nothing else on stderr.
@pytest.mark.parametrize("args,expected", [
    (["tasks.lego", "--num-vars", "5", "--num", "-3"], "error: argument --num: -3; allowed: >= 1"),
    (["tasks.biography", "--people", "0"], "error: argument --people: 0; allowed: >= 1"),
    (["experiments.lego", LEGO, "--config.model.attention=lego", "--config.model.lego_heads=(2,1)"],
     "model.lego_heads"),
    (["experiments.lego", LEGO, "--config.mesh.data=3"], "mesh"),
    (["experiments.arithmetic", "--config=experiments/configs/arithmetic.py:smoke",
      "--config.model.num_heads=3"], "model.num_heads"),
    (["experiments.knowledge", "--config=experiments/configs/knowledge.py:smoke",
      "--config.task.people=0"], "people"),
    (["experiments.lego.mimic", "--config=experiments/configs/lego.py:smoke,mimic", "extra"],
     "unexpected arguments"),
])
def test_python_m_exits_2_with_one_line(args, expected, tmp_path):
  result = subprocess.run([sys.executable, "-m", *args, *(
      [f"--workdir={tmp_path}"] if args[0].startswith("experiments") else [])],
      capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 2, result.stderr
  assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
  assert not os.path.exists(tmp_path / "checkpoints")
