"""Real signals to real training processes: SIGTERM checkpoints and exits cleanly, SIGKILL (even in the
middle of a checkpoint save) leaves the last complete checkpoint and a lock that does not block the
rerun, restarts end where an uninterrupted run ends, bit for bit, and a second run on a live run's
workdir is refused."""
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.paths import ROOT
from tests.study_checks import final_state, lego_smoke, train_uninterrupted

FIELDS = dict(num_steps=40, log_every=1, eval_every=40, checkpoint_every=4)
ARGS = [f"--config.{k}={v}" for k, v in FIELDS.items()]

# Runs the LEGO entry point with Orbax's commit step (the rename of a fully written temporary
# directory) hanging at step HANG_AT, so the test can SIGKILL the process in the middle of that save.
HANGING_SAVE = """
import asyncio, os, sys
from orbax.checkpoint._src.path import atomicity
finalize = atomicity.AtomicRenameTemporaryPath.finalize
async def hang_at_one_step(self):
  if self._final_path.name == os.environ["HANG_AT"]:
    print(f"committing checkpoint {self._final_path.name}", flush=True)
    await asyncio.sleep(3600)
  await finalize(self)
atomicity.AtomicRenameTemporaryPath.finalize = hang_at_one_step
from experiments.runtime import entry
entry.run("lego")
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  return train_uninterrupted(lego_smoke(FIELDS), str(tmp_path_factory.mktemp("straight")))["state"]


def _start(workdir, *extra, code=None, env=None):
  head = ["-c", code] if code else ["-m", "experiments.lego"]
  return subprocess.Popen(
      [sys.executable, *head, "--config=experiments/configs/lego.py:smoke",
       f"--workdir={workdir}", *ARGS, *extra],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env={**os.environ, **(env or {})})


def _read_until(proc, prefix: str) -> list[str]:
  """stdout lines up to and including the first that starts with `prefix`."""
  lines = []
  for line in proc.stdout:
    lines.append(line.rstrip("\n"))
    if line.startswith(prefix):
      return lines
  raise AssertionError(f"process ended before printing {prefix!r}: {lines} {proc.stderr.read()}")


def _final_state(workdir):
  return final_state(lego_smoke(FIELDS), workdir)


def _assert_same_state(a, b):
  jax.tree.map(np.testing.assert_array_equal, a["params"], b["params"])
  jax.tree.map(np.testing.assert_array_equal, a["opt_state"], b["opt_state"])


def _run_to_end(workdir):
  proc = _start(workdir)
  out, err = proc.communicate()
  assert proc.returncode == 0, err
  return out


def test_sigterm_saves_and_exits_cleanly_then_resumes_to_the_same_params(tmp_path, uninterrupted):
  proc = _start(tmp_path)
  _read_until(proc, "step 5/")
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate()
  assert proc.returncode == 0, err
  assert "Traceback" not in err
  stopped = [l for l in out.splitlines() if l.startswith("preempted: saved a checkpoint at step ")]
  assert len(stopped) == 1, out
  step = int(stopped[0].split("at step ")[1].split(";")[0])
  assert 5 <= step < FIELDS["num_steps"]
  assert str(step) in os.listdir(tmp_path / "checkpoints")
  assert f"resuming from checkpoint at step {step} in {tmp_path}" in _run_to_end(tmp_path)
  _assert_same_state(_final_state(tmp_path), uninterrupted)


def test_sigkill_in_the_middle_of_a_save_leaves_the_previous_checkpoint(tmp_path, uninterrupted):
  proc = _start(tmp_path, code=HANGING_SAVE, env={"HANG_AT": "8"})
  _read_until(proc, "committing checkpoint 8")
  proc.kill()
  proc.wait()
  entries = os.listdir(tmp_path / "checkpoints")
  assert "4" in entries and "8" not in entries
  assert any(e.startswith("8.orbax-checkpoint-tmp") for e in entries), entries  # half-saved
  out = _run_to_end(tmp_path)
  assert f"resuming from checkpoint at step 4 in {tmp_path}" in out
  assert not any("tmp" in e for e in os.listdir(tmp_path / "checkpoints"))
  _assert_same_state(_final_state(tmp_path), uninterrupted)


def test_sigkills_at_arbitrary_moments_then_restart_end_the_same(tmp_path, uninterrupted):
  # Saves every 4 steps overlap training, so these kills land wherever a save happens to be.
  for kill_after in ("step 6/", "step 11/"):
    proc = _start(tmp_path)
    _read_until(proc, kill_after)
    proc.kill()
    proc.wait()
    assert (tmp_path / "run.lock").exists()  # the killed run's lock does not block the rerun
  _run_to_end(tmp_path)
  assert not (tmp_path / "run.lock").exists()
  _assert_same_state(_final_state(tmp_path), uninterrupted)


def test_a_second_run_on_a_live_runs_workdir_is_refused_naming_the_first(tmp_path, uninterrupted):
  first = _start(tmp_path)
  _read_until(first, "step 5/")
  first.send_signal(signal.SIGSTOP)  # paused, still alive: it cannot end before the second starts
  second = _start(tmp_path)
  _, err = second.communicate()
  first.send_signal(signal.SIGCONT)
  assert second.returncode == 2
  assert err.count("\n") == 1 and err.startswith(
      f"error: workdir: {tmp_path} is in use by the run of pid {first.pid} on host "), err
  out, err = first.communicate()
  assert first.returncode == 0, err
  _assert_same_state(_final_state(tmp_path), uninterrupted)
