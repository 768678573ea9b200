"""Two processes on localhost (CPU collectives over jax.distributed) train the smoke config like one.

Each process feeds its half of every global batch; together they must end where a single process
ends (to float tolerance), with process 0 alone writing metrics, and Orbax checkpoints written
collectively that a single process can restore.
"""
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from experiments.configs.lego import get_config
from experiments.lego import LegoStudy
from experiments.runtime import checkpoints as ckpt_lib
from experiments.runtime import train
from experiments.runtime.metric_log import read_jsonl
from tests.paths import ROOT



def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _losses(workdir):
  return [(r["step"], r["train/loss"]) for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))
          if "train/loss" in r]


def test_two_processes_train_like_one(tmp_path):
  address = f"localhost:{_free_port()}"
  procs = [subprocess.Popen(
      [sys.executable, "-m", "experiments.lego", "--config=experiments/configs/lego.py:smoke",
       f"--workdir={tmp_path / 'two'}", f"--coordinator_address={address}", "--num_processes=2",
       f"--process_id={i}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  assert "step 30/30" in outputs[0][0] and "step 30/30" not in outputs[1][0]  # process 0 reports

  config = get_config("smoke")
  single = train.train_and_evaluate(config, str(tmp_path / "one"), LegoStudy(config),
                                    print_fn=lambda *_: None)
  two, one = _losses(tmp_path / "two"), _losses(tmp_path / "one")
  assert [s for s, _ in two] == [s for s, _ in one] == [10, 20, 30]  # one writer, no duplicates
  np.testing.assert_allclose([l for _, l in two], [l for _, l in one], rtol=0, atol=1e-5)

  trainer = train.build_trainer(config, LegoStudy(config))
  checkpoints = ckpt_lib.Checkpoints(str(tmp_path / "two"), every=config.checkpoint_every)
  try:
    assert checkpoints.latest_step() == 30
    restored = checkpoints.restore(trainer.abstract_state)
  finally:
    checkpoints.close()
  diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()),
                                       restored["params"], single["state"]["params"]))
  assert max(diffs) < 1e-5, max(diffs)
