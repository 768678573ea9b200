"""The learning-to-execute study: answer-only loss, buckets, smoke run with checkpoints and exact
resume, report files, the sweep, one-line errors for bad knobs."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.configs.programs import get_config, get_sweep
from experiments.programs import ProgramsStudy
from experiments.runtime import train
from experiments.runtime.metric_log import read_jsonl
from launch import sweep
from models.transformer import num_params
from tests.study_checks import assert_loss_touches_only_weighted_tokens
from tests.paths import ROOT

quiet = lambda *_: None


def test_loss_touches_only_the_answer():
  assert_loss_touches_only_weighted_tokens(ProgramsStudy(get_config("smoke")))


def test_buckets_count_exact_answers():
  study = ProgramsStudy(get_config("smoke"))
  batch = study.batch("test", 0, 16)
  vocab = study.model_fields()["num_outputs"]
  perfect = np.eye(vocab)[batch["targets"]] * 10.0
  wrong_rows = np.arange(16) % 2 == 1  # odd rows: the first answer token is wrong
  first = batch["prompt_length"] - 1
  perfect[wrong_rows, first[wrong_rows]] = np.roll(perfect[wrong_rows, first[wrong_rows]], 1, -1)
  metrics = study.summarize(jax.tree.map(np.asarray, study.eval_sums(perfect, batch)))
  assert metrics["exact_match"] == 0.5
  for key, value in study.buckets(metrics).items():
    s, d = (int(x[1:]) for x in key.split("_"))
    rows = (batch["statements"] == s) & (batch["depth"] == d)
    assert value == pytest.approx(1 - wrong_rows[rows].mean())


def test_variants_share_the_parameter_budget():
  counts = {}
  for variant in ("attention=vanilla", "attention=conv_qkv,kernel=5", "attention=lego"):
    config = get_config(variant)
    trainer = train.build_trainer(config, ProgramsStudy(config))
    counts[variant] = num_params(trainer.model(trainer.init()["params"]))
  base = counts["attention=vanilla"]
  assert all(abs(n - base) / base < 0.02 for n in counts.values()), counts


def test_smoke_run_checkpoints_resumes_and_reports(tmp_path):
  config = get_config("smoke")
  config.update(dict(num_steps=20, checkpoint_every=5, eval_every=10, log_every=5))
  straight = train.train_and_evaluate(config, str(tmp_path / "a"), ProgramsStudy(config),
                                      print_fn=quiet)
  first = train.train_and_evaluate(config, str(tmp_path / "b"), ProgramsStudy(config),
                                   print_fn=quiet, stop_at=10)
  assert int(first["state"]["step"]) == 10
  assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == ["10", "5"]
  resumed = train.train_and_evaluate(config, str(tmp_path / "b"), ProgramsStudy(config),
                                     print_fn=quiet)
  jax.tree.map(np.testing.assert_array_equal, straight["state"]["params"],
               resumed["state"]["params"])
  assert straight["metrics"] == resumed["metrics"]
  log = lambda d: [(r["step"], r.get("train/loss")) for r in read_jsonl(d / "metrics.jsonl")]
  assert log(tmp_path / "a") == log(tmp_path / "b")
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "b" / "tensorboard"))
  study = ProgramsStudy(config)
  report = study.report(str(tmp_path / "b"), resumed["metrics"], print_fn=quiet)
  saved = json.loads((tmp_path / "b" / "accuracy_by_bucket.json").read_text())
  assert set(saved["buckets"]) == {f"s{s}_d{d}" for s, d in study.task.cells()}
  assert saved == json.loads(json.dumps(report))
  assert (tmp_path / "b" / "accuracy_by_bucket.png").stat().st_size > 1000


def test_sweeps_expand_to_valid_configs(tmp_path):
  runs = sweep.expand("experiments/configs/programs.py:compare", str(tmp_path))
  assert len(runs) == 15 and all(r.module == "experiments.programs" for r in runs)
  configs = [get_config(r.variant) for r in runs]
  assert {(c.model.attention, c.model.conv_kernel if c.model.attention == "conv_qkv" else 0)
          for c in configs} == {("vanilla", 0), ("conv_qkv", 2), ("conv_qkv", 3), ("conv_qkv", 5),
                                ("lego", 0)}
  assert {c.seed for c in configs} == {0, 1, 2}
  for name in ("smoke", "attention", "kernel", "difficulty"):
    for point in get_sweep(name):
      ProgramsStudy(get_config(point["config"]))


@pytest.mark.parametrize("args,expected", [
    (["--config.task.max_statements=-2"], "task.max_statements: -2"),
    (["--config.task.loop_bound=12"], "task.loop_bound: 12 lets a loop counter reach 11"),
    (["--config.task.constructs=if,while"], "task.constructs: unknown 'while'"),
])
def test_bad_knobs_fail_in_one_line(tmp_path, args, expected):
  result = subprocess.run([sys.executable, "-m", "experiments.programs",
                           "--config=experiments/configs/programs.py:smoke",
                           f"--workdir={tmp_path}", *args], capture_output=True, text=True, cwd=ROOT)
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and expected in lines[0], result.stderr
  assert not os.path.exists(tmp_path / "checkpoints")
