"""The shared train loop on LEGO: masking, learning, exact resume, one-line errors."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.configs.lego import get_config
from experiments.lego import LegoStudy
from experiments.runtime import train
from experiments.runtime.metric_log import read_jsonl
from tests.paths import ROOT

quiet = lambda *_: None


def _smoke(**overrides):
  config = get_config("smoke")
  config.update(overrides)
  return config


def test_loss_is_masked_exactly_to_trained_positions():
  config = _smoke()
  config.task.train_positions = 4
  study = LegoStudy(config)
  batch = study.batch("train", 0, 8)
  logits = jax.random.normal(jax.random.key(0), batch["inputs"].shape + (2,))
  grad = jax.grad(lambda l: study.loss(l, batch)[0])(logits)
  touched = np.abs(np.asarray(grad)).sum(-1) > 0
  np.testing.assert_array_equal(touched, (batch["position"] >= 1) & (batch["position"] <= 4))


def test_training_solves_a_tiny_problem(tmp_path):
  config = get_config("num_vars=2,train_positions=2,layers=2,d_model=32,heads=2,attention=vanilla")
  config.update(dict(batch_size=64, num_steps=400, warmup_steps=50, learning_rate=3e-3,
                     log_every=100, eval_every=400, checkpoint_every=400, eval_size=256))
  result = train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  for i in (1, 2):  # position 2 needs the parent's clause found by content: one real hop
    assert result["metrics"][f"accuracy/position_{i}"] == 1.0


def test_resume_continues_bit_for_bit(tmp_path):
  config = _smoke(num_steps=20, checkpoint_every=5, eval_every=10, log_every=5)
  straight = train.train_and_evaluate(config, str(tmp_path / "a"), LegoStudy(config),
                                      print_fn=quiet)
  first = train.train_and_evaluate(config, str(tmp_path / "b"), LegoStudy(config),
                                   print_fn=quiet, stop_at=7)  # mid-way between two records
  assert int(first["state"]["step"]) == 7
  for _ in range(2):  # the second time, a finished run: nothing more is trained or logged
    resumed = train.train_and_evaluate(config, str(tmp_path / "b"), LegoStudy(config),
                                       print_fn=quiet)
  jax.tree.map(np.testing.assert_array_equal, straight["state"]["params"],
               resumed["state"]["params"])
  jax.tree.map(np.testing.assert_array_equal, straight["state"]["opt_state"],
               resumed["state"]["opt_state"])
  assert straight["metrics"] == resumed["metrics"]
  wall_clock = ("time", "train_seconds", "steps_per_sec")
  log = lambda d: [{k: v for k, v in r.items() if k not in wall_clock}
                   for r in read_jsonl(d / "metrics.jsonl")]
  assert log(tmp_path / "a") == log(tmp_path / "b")  # record at 10 averages steps 6-10 both times


def test_run_writes_tensorboard_metrics_and_checkpoints(tmp_path):
  config = _smoke()
  train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tensorboard"))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["15", "30"]
  records = read_jsonl(tmp_path / "metrics.jsonl")
  assert records[-1]["step"] == 30 and "eval/accuracy/position_12" in records[-2] | records[-1]


def _cli(*args, workdir):
  return subprocess.run([sys.executable, "-m", "experiments.lego",
                         "--config=experiments/configs/lego.py:smoke", f"--workdir={workdir}", *args],
                        capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("args,expected", [
    (["--config.learning_rte=0.1"], "--config.learning_rte: unknown field 'learning_rte'"),
    (["--config.task.train_positions=13"], "task.train_positions: 13 is out of range"),
    (["--config.task.num_vars=27"], "task.num_vars: 27 is out of range"),
    (["--config.task.group=q8"], "task.group: unknown group 'q8'"),
    (["--config.steps_per_call=0"], "steps_per_call: 0; allowed: >= 1"),
    (["--config.learning_rate=-1"], "learning_rate: -1.0; allowed: > 0 (finite)"),
    (["--config.b1=1.0"], "b1: 1.0; allowed: 0 <= b1 < 1 (finite)"),
    (["--config.model.dtype=float8"], "model.dtype: unknown 'float8'; allowed: float32, bfloat16"),
])
def test_bad_input_fails_in_one_line(tmp_path, args, expected):
  result = _cli(*args, workdir=tmp_path)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and expected in lines[0], result.stderr
  assert not os.path.exists(tmp_path / "checkpoints")


def test_workdir_of_another_model_and_corrupt_checkpoint_fail_in_one_line(tmp_path):
  config = _smoke(num_steps=15)
  train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  result = _cli("--config.model.d_model=48", workdir=tmp_path)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f"error: model.d_model: workdir {tmp_path} holds a run with 32, this config asks 48; "
      "use a new workdir"]
  for root, _, files in os.walk(tmp_path / "checkpoints" / "15"):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(3)
  result = _cli(workdir=tmp_path)
  lines = result.stderr.strip().splitlines()
  assert result.returncode != 0 and len(lines) == 1
  assert "checkpoint 15" in lines[0] and "cannot be restored" in lines[0]
  assert os.path.exists(tmp_path / "checkpoints" / "15")  # nothing written is deleted


def test_a_run_from_before_the_width_scaled_init_fails_in_one_line(tmp_path):
  """Runs written with the old GPT-2 init (std 0.02 everywhere, config without embed_std/pos_std)
  restore only under the config they were trained with; the default init says so in one line."""
  config = _smoke(num_steps=15)
  config.model.update(dict(init_std=0.02, embed_std=0.02))
  train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  path = tmp_path / "config.json"
  stored = json.loads(path.read_text())
  del stored["model"]["embed_std"], stored["model"]["pos_std"]
  path.write_text(json.dumps(stored))
  result = _cli(workdir=tmp_path)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f"error: model.init_std: workdir {tmp_path} holds a run with 0.02, this config asks None; "
      "use a new workdir"]


def test_curriculum_pads_short_chains_then_hands_over_to_the_task():
  config = get_config()
  config.curriculum.update(dict(min_vars=2, steps=100))
  study = LegoStudy(config)
  early, late = study.batch("train", 0, 64), study.batch("train", 99, 64)
  for batch in (early, late):
    assert batch["inputs"].shape == (64, 62)
    np.testing.assert_array_equal(batch["weights"] > 0,
                                  (batch["position"] >= 1) & (batch["position"] <= 6))
  assert early["position"].max(1).max() == 2  # step 0: only two-variable chains
  assert late["position"].max(1).max() > 8
  done = study.batch("train", 100, 64)
  expected = study.task.batch(config.seed, "train", 100, 64)
  for key in expected:
    np.testing.assert_array_equal(done[key], expected[key])
  np.testing.assert_array_equal(study.batch("train", 7, 64)["inputs"],
                                study.batch("train", 7, 64)["inputs"])


def test_steps_per_call_equal_single_steps():
  config = _smoke()
  trainer = train.build_trainer(config, LegoStudy(config))
  single, single_metrics = trainer.init(), []
  for step in range(4):
    single, metrics = trainer.train_step(single, trainer.batch("train", step, config.batch_size))
    single_metrics.append(metrics)
  scanned, scanned_metrics = trainer.train_steps(trainer.init(),
                                                 trainer.batches("train", 0, 4, config.batch_size))
  jax.tree.map(np.testing.assert_array_equal, single, scanned)
  for key, values in scanned_metrics.items():
    np.testing.assert_array_equal([m[key] for m in single_metrics], values)


def test_steps_per_call_log_and_resume_like_single_steps(tmp_path):
  # 3 steps per call: calls shorten to end on each log (every 5), eval and checkpoint step; the
  # stop at 7 splits a call, and the resume starts mid-way between two records.
  config = _smoke(num_steps=20, checkpoint_every=5, eval_every=10, log_every=5)
  straight = train.train_and_evaluate(config, str(tmp_path / "a"), LegoStudy(config),
                                      print_fn=quiet)
  config.steps_per_call = 3
  assert list(train.call_schedule(config, 0, 12)) == [(0, 3), (3, 2), (5, 3), (8, 2), (10, 2)]
  train.train_and_evaluate(config, str(tmp_path / "b"), LegoStudy(config), print_fn=quiet,
                           stop_at=7)
  resumed = train.train_and_evaluate(config, str(tmp_path / "b"), LegoStudy(config), print_fn=quiet)
  jax.tree.map(np.testing.assert_array_equal, straight["state"], resumed["state"])
  assert straight["metrics"] == resumed["metrics"]
  wall_clock = ("time", "train_seconds", "steps_per_sec")
  log = lambda d: [{k: v for k, v in r.items() if k not in wall_clock}
                   for r in read_jsonl(d / "metrics.jsonl")]
  assert log(tmp_path / "a") == log(tmp_path / "b")


def _one_line(result, status: int) -> str:
  assert result.returncode == status, result.stderr
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
  return lines[0]


def test_a_diverging_run_stops_in_one_line_naming_the_step_the_checkpoint_and_what_to_try(tmp_path):
  line = _one_line(_cli("--config.learning_rate=1e6", "--config.checkpoint_every=2",
                        "--config.log_every=2", workdir=tmp_path), status=1)
  assert line.startswith("error: loss became nan at step ") and "the run diverged" in line, line
  step = int(line.split("at step ")[1].split()[0])
  latest = max(int(n) for n in os.listdir(tmp_path / "checkpoints") if n.isdigit())
  assert latest < step
  assert f"resume from its last checkpoint, step {latest}" in line, line
  assert "a lower --config.learning_rate (now 1e+06)" in line, line


def test_damaged_workdir_files_are_named_in_one_line(tmp_path):
  config = _smoke(num_steps=15)
  train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  records = (tmp_path / "metrics.jsonl").read_text().splitlines(keepends=True)
  (tmp_path / "metrics.jsonl").write_text("".join(records[:1] + ["{not json\n"] + records[1:]))
  line = _one_line(_cli(workdir=tmp_path), status=2)
  assert line == (f"error: {tmp_path}/metrics.jsonl: line 2 is no metrics record (Expecting "
                  "property name enclosed in double quotes: line 1 column 2 (char 1)); delete or "
                  "repair that line and rerun"), line
  (tmp_path / "metrics_window.json").write_text("[1]")
  with pytest.raises(train.SetupError, match=f"^{tmp_path}/metrics_window.json is damaged .*; "
                                             "delete it and rerun"):
    train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  (tmp_path / "checkpoints").rename(tmp_path / "moved")
  (tmp_path / "checkpoints").write_text("")
  with pytest.raises(train.SetupError, match=f"^workdir: {tmp_path}/checkpoints is a file, not a "
                                             "directory of checkpoints; move it away and rerun$"):
    train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet)
  (tmp_path / "config.json").write_text("{\n")
  line = _one_line(_cli(workdir=tmp_path), status=2)
  assert line.startswith(f"error: workdir: {tmp_path}/config.json is damaged ("), line
  assert line.endswith("if this command started the run, delete the file and rerun (it is written "
                       "again), else use a new workdir"), line


def test_a_workdir_that_is_a_file_is_refused_in_one_line(tmp_path):
  (tmp_path / "run").write_text("")
  line = _one_line(_cli(workdir=tmp_path / "run"), status=2)
  assert line == f"error: workdir: {tmp_path}/run is a file, not a directory; choose another --workdir"
