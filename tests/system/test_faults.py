"""Faults beyond test_preemption's: SIGKILL during an evaluation, in the middle of a metrics write and
at random moments, reruns of a finished run, the disk filling up during a checkpoint save, and
damaged checkpoints. After each, rerunning ends with the parameters and the logs (metrics.jsonl and
TensorBoard) of an uninterrupted run: no step missing, none twice."""
import os
import random
import shutil
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from experiments.lego import LegoStudy
from experiments.runtime import train
from tests.paths import ROOT
from tests.study_checks import WALL_CLOCK, lego_smoke, log_records, train_uninterrupted

FIELDS = dict(num_steps=24, log_every=3, eval_every=6, checkpoint_every=4)  # records straddle saves
ARGS = [f"--config.{k}={v}" for k, v in FIELDS.items()]
quiet = lambda *_: None

# The LEGO entry point, holding in the evaluation of step HOLD_AT until the file GATE is gone, or
# leaving half a JSON line and half an event record on disk at the first record of step TEAR_AT (as
# a kill in the middle of writing them would) before hanging: the test acts there.
DRIVER = """
import os, time
from experiments.runtime import entry, train
from experiments.runtime.metric_log import MetricWriter
hold, tear = int(os.environ.get("HOLD_AT", -1)), int(os.environ.get("TEAR_AT", -1))
evaluate, write = train.evaluate, MetricWriter.write
def holding_evaluate(trainer, state, evals):
  if int(state["step"]) == hold:
    print(f"evaluating step {hold}", flush=True)
    while os.path.exists(os.environ["GATE"]):
      time.sleep(0.05)
  return evaluate(trainer, state, evals)
def tearing_write(self, step, scalars, **extra):
  if step == tear:
    self._jsonl.write('{"step": %d, "eval/accur' % step)
    self._events.write(b"\\x40\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01\\x02")
    self.flush()
    print(f"tearing step {step}", flush=True)
    time.sleep(3600)
  write(self, step, scalars, **extra)
train.evaluate, MetricWriter.write = holding_evaluate, tearing_write
entry.run("lego")
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("straight")
  state = train_uninterrupted(lego_smoke(FIELDS), str(workdir))["state"]
  return state, _logs(workdir)


def _logs(workdir):
  """metrics.jsonl without wall-clock fields, and every scalar TensorBoard reads, in its order."""
  records = log_records(workdir)
  events = event_accumulator.EventAccumulator(os.path.join(workdir, "tensorboard"))
  events.Reload()
  scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)]
             for tag in events.Tags()["scalars"] if tag not in WALL_CLOCK}
  return records, scalars


def _start(workdir, env=None):
  """The entry point in a subprocess; a GATE that is never removed holds it for good."""
  env = {"GATE": os.path.join(ROOT, "tests", "no such file"), **(env or {})}
  return subprocess.Popen(
      [sys.executable, "-c", DRIVER, "--config=experiments/configs/lego.py:smoke",
       f"--workdir={workdir}", *ARGS], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env={**os.environ, **env})


def _read_until(proc, prefix: str, finished_ok: bool = False) -> bool:
  """Reads `proc`'s output up to a line starting with `prefix`. If it ends first, the test fails,
  unless `finished_ok` (a rerun of a run already complete prints no step): then False."""
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if line.startswith(prefix):
      return True
  assert finished_ok, f"ended before {prefix!r}: {lines} {proc.stderr.read()}"
  return False


def _kill_at(proc, prefix: str, delay: float = 0.0, finished_ok: bool = False) -> bool:
  """Kills `proc` `delay` seconds after it prints `prefix`; False if it finished without it."""
  printed = _read_until(proc, prefix, finished_ok)
  if printed and delay:
    try:
      proc.wait(delay)
    except subprocess.TimeoutExpired:
      pass
  proc.kill()
  proc.communicate()
  return printed


def _rerun(workdir):
  return train_uninterrupted(lego_smoke(FIELDS), str(workdir))


def _assert_same_run(result, workdir, uninterrupted):
  state, logs = uninterrupted
  jax.tree.map(np.testing.assert_array_equal, result["state"], state)
  records, scalars = _logs(workdir)
  assert [r["step"] for r in records] == [r["step"] for r in logs[0]]
  assert records == logs[0]
  assert scalars == logs[1]


def test_sigkills_during_evaluation_mid_write_and_at_random_then_reruns(tmp_path, uninterrupted):
  gate = tmp_path / "gate"
  gate.touch()
  _kill_at(_start(tmp_path, {"HOLD_AT": "12", "GATE": str(gate)}), "evaluating step 12")
  _kill_at(_start(tmp_path, {"TEAR_AT": "18"}), "tearing step 18")
  rng = random.Random(os.environ.get("FAULT_SEED", 0))
  for _ in range(2):  # random moments: in a step, an evaluation, a write or an async save
    # a kill late in a fast run can come after its last checkpoint: then nothing is left to kill
    if not _kill_at(_start(tmp_path), "step ", delay=rng.uniform(0.0, 1.0), finished_ok=True):
      break
  _assert_same_run(_rerun(tmp_path), tmp_path, uninterrupted)
  for _ in range(2):  # a finished run, rerun: nothing trains and nothing is logged twice
    _assert_same_run(_rerun(tmp_path), tmp_path, uninterrupted)


@pytest.fixture
def small_disk(tmp_path):
  """A 4 MiB filesystem of its own (root may mount one); a file filling it is `ballast`."""
  disk = tmp_path / "disk"
  disk.mkdir()
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                    capture_output=True).returncode:
    pytest.skip("cannot mount a small filesystem here (needs root)")
  yield disk
  subprocess.run(["umount", "-l", str(disk)], check=True)


def test_disk_filling_up_during_a_save_stops_in_one_line_and_the_rerun_resumes(
    tmp_path, small_disk, uninterrupted):
  workdir, gate = small_disk / "run", tmp_path / "gate"
  gate.touch()
  proc = _start(workdir, {"HOLD_AT": "12", "GATE": str(gate)})
  _read_until(proc, "evaluating step 12")
  while not (workdir / "checkpoints" / "8").exists():  # its asynchronous save has committed
    time.sleep(0.1)
  # the disk fills up before the save at step 12 (unbuffered: closing has nothing left to write)
  with open(small_disk / "ballast", "wb", buffering=0) as f:
    with pytest.raises(OSError):
      while True:
        f.write(b"\0" * 4096)
  gate.unlink()
  _, err = proc.communicate()
  assert proc.returncode == 1
  assert err.count("\n") == 1 and "No space left on device" in err, err
  assert "the last complete checkpoint, step 8, is intact" in err, err
  assert max(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit()) == 8
  os.remove(small_disk / "ballast")
  _assert_same_run(_rerun(workdir), workdir, uninterrupted)


def test_damaged_checkpoint_names_the_step_and_moving_it_away_resumes_from_the_previous(
    tmp_path, uninterrupted):
  config = lego_smoke(FIELDS)
  train.train_and_evaluate(config, str(tmp_path), LegoStudy(config), print_fn=quiet, stop_at=12)
  damaged = tmp_path / "checkpoints" / "12"
  files = sorted(p for p in damaged.rglob("*") if p.is_file())
  files[0].unlink()
  files[0].mkdir()  # unreadable even for root
  for path in files[1:]:
    path.write_bytes(path.read_bytes()[:3])  # truncated
  with pytest.raises(train.SetupError) as error:
    _rerun(tmp_path)
  message = str(error.value)
  assert "\n" not in message and "checkpoint 12" in message, message
  assert "move it away to restart from the previous one" in message, message
  shutil.move(damaged, tmp_path / "damaged-12")
  _assert_same_run(_rerun(tmp_path), tmp_path, uninterrupted)
