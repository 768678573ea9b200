"""A sweep whose runs are SIGKILLed again and again: six tiny LEGO runs on two workers, from a sweep
file outside experiments/configs/, their worker processes killed at seeded random moments (in a step,
an evaluation, a log write or a checkpoint save), the sweep rerun until it finishes. Every run then
ends with the parameters, optimizer state and metrics log of the same run trained uninterrupted (in
one process on the CPUs a worker gets: XLA's threads, and so its float rounding, follow them).

SOAK_KILLS (default 6) sets how many kills land in training workers; SOAK_SEED their moments."""
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from launch import sweep
from tests.paths import ROOT
from tests.study_checks import final_state, log_records

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("SOAK_KILLS", 6))
SEED = int(os.environ.get("SOAK_SEED", 0))

# A researcher's own sweep file: the LEGO config, six seeds of a tiny run whose log records and
# checkpoints straddle each other, so kills land between and inside both.
SWEEP_FILE = """
from experiments.configs.lego import get_config

STUDY = "lego"


def get_sweep(arg):
  return [{"config": f"smoke,seed={seed}", "num_steps": 24, "warmup_steps": 2, "log_every": 3,
           "eval_every": 12, "checkpoint_every": 4, "eval_size": 32} for seed in range(6)]
"""

# The uninterrupted runs of that sweep, one after another in one process.
UNINTERRUPTED = """
import sys
from launch import sweep
from tests.study_checks import train_uninterrupted
for run in sweep.expand(sys.argv[1], sys.argv[2]):
  train_uninterrupted(run.config(), run.workdir)
"""


def _workers(sweep_pid: int) -> list[int]:
  """The sweep's live run processes (its children), from /proc."""
  pids = []
  for name in os.listdir("/proc"):
    if name.isdigit():
      try:
        with open(f"/proc/{name}/stat") as f:
          state, parent = f.read().rsplit(")", 1)[1].split()[:2]
      except OSError:
        continue
      if int(parent) == sweep_pid and state != "Z":
        pids.append(int(name))
  return pids


def _training(pid: int) -> bool:
  """Whether run process `pid` has logged a training step (its sweep log says so)."""
  try:
    with open(f"/proc/{pid}/cmdline") as f:
      workdir = next(a for a in f.read().split("\0") if a.startswith("--workdir="))[10:]
    with open(workdir + ".log") as f:
      return "\nstep " in f.read()
  except (OSError, StopIteration):
    return False


def _kill_workers(proc, rng: random.Random, kills: int) -> int:
  """Kills up to `kills` training workers of sweep `proc`, each a random moment after it has logged
  a step; returns how many kills landed in a live worker."""
  landed = 0
  while landed < kills and proc.poll() is None:
    training = [pid for pid in _workers(proc.pid) if _training(pid)]
    if not training:
      time.sleep(0.05)
      continue
    victim = rng.choice(sorted(training))
    time.sleep(rng.uniform(0.0, 0.5))
    if victim in _workers(proc.pid):
      os.kill(victim, signal.SIGKILL)
      landed += 1
  return landed


def test_a_sweep_killed_again_and_again_ends_as_if_never_killed(tmp_path):
  sweep_file = tmp_path / "my_sweep.py"
  sweep_file.write_text(SWEEP_FILE)
  root = tmp_path / "sweep"
  command = [sys.executable, "-m", "launch.sweep", f"--config={sweep_file}:soak",
             f"--workdir={root}", "--workers=2"]
  straight = subprocess.Popen(  # alongside, on the first worker's CPUs
      [sys.executable, "-c", UNINTERRUPTED, f"{sweep_file}:soak", str(tmp_path / "straight")],
      cwd=ROOT, preexec_fn=lambda: os.sched_setaffinity(0, sweep.worker_cpus(0, 2) or
                                                          os.sched_getaffinity(0)))
  rng, kills, attempts = random.Random(SEED), 0, 0
  while True:
    attempts += 1
    assert attempts <= 3 + KILLS, f"the sweep did not finish in {attempts - 1} attempts"
    with open(tmp_path / f"attempt{attempts}.out", "w") as out:
      proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
      kills += _kill_workers(proc, rng, KILLS - kills)
      proc.wait(timeout=600)
    if proc.returncode == 0:
      break
  print(f"soak: the sweep survived {kills} kills of its workers in {attempts} attempts")
  assert kills == KILLS

  assert straight.wait(timeout=600) == 0
  runs = sweep.expand(f"{sweep_file}:soak", str(root))
  assert len(runs) == 6 and all(r.finished() for r in runs)
  for run in runs:
    config, reference = run.config(), tmp_path / "straight" / run.name
    killed, state = final_state(config, run.workdir), final_state(config, reference)
    jax.tree.map(np.testing.assert_array_equal, killed["params"], state["params"])
    jax.tree.map(np.testing.assert_array_equal, killed["opt_state"], state["opt_state"])
    assert log_records(run.workdir) == log_records(reference), run.name
    assert not os.path.exists(os.path.join(run.workdir, "run.lock"))
