"""Sharded training on 8 simulated CPU devices equals training on one device.

The 8 devices exist only in a child process (XLA's device count is fixed when JAX starts), which runs
the smoke config on several meshes and reports how far each lands from the one-device run.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.paths import ROOT

MESHES = {
    "one device": dict(data=1, fsdp=1, tensor=1),
    "data parallel": dict(data=8, fsdp=1, tensor=1),
    "fsdp": dict(data=1, fsdp=8, tensor=1),
    "tensor parallel (with data and fsdp)": dict(data=2, fsdp=2, tensor=2),
    "experts, one device": dict(data=1, fsdp=1, tensor=1),
    "expert parallel (with data)": dict(data=2, fsdp=1, tensor=1, expert=4),
}
EXPERTS = dict(experts=4, experts_per_token=2)  # the model of the runs named "expert..."


def _child_env():
  return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT,  # the child imports tests.paths
          "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}


def _worker(workdir: str) -> None:
  """Runs in the child: trains each mesh, prints max |difference| to the one-device run as JSON."""
  import jax
  import numpy as np

  from experiments.runtime import train
  from experiments.configs.lego import get_config
  from experiments.lego import LegoStudy
  from experiments.runtime.metric_log import read_jsonl

  assert jax.device_count() == 8
  runs = {}
  for name, mesh in MESHES.items():
    config = get_config("smoke")
    config.update(dict(num_steps=6, log_every=1, eval_every=6, checkpoint_every=6))
    config.mesh.update(mesh)
    if "expert" in name:
      config.model.update(EXPERTS)
    out = os.path.join(workdir, name.replace(" ", "_"))
    result = train.train_and_evaluate(config, out, LegoStudy(config), print_fn=lambda *_: None)
    params = result["state"]["params"]
    runs[name] = dict(
        losses=[r["train/loss"] for r in read_jsonl(os.path.join(out, "metrics.jsonl"))
                if "train/loss" in r],
        params=jax.tree.map(np.asarray, params), metrics=result["metrics"],
        sharded=sum(any(v.sharding.spec) for v in jax.tree.leaves(params)), devices=len(
            jax.tree.leaves(params)[0].sharding.device_set))
  report = {}
  for name, run in runs.items():
    ref = runs["experts, one device" if "expert" in name else "one device"]
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), run["params"],
                                         ref["params"]))
    report[name] = dict(
        max_param_diff=max(diffs), max_loss_diff=float(np.abs(np.subtract(run["losses"],
                                                                          ref["losses"])).max()),
        losses=run["losses"], same_eval=run["metrics"] == ref["metrics"],
        sharded_params=run["sharded"], devices=run["devices"])
  print(json.dumps(report))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("meshes")
  result = subprocess.run([sys.executable, __file__, str(workdir)], capture_output=True, text=True,
                          cwd=ROOT, env=_child_env())
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", [n for n in MESHES if "one device" not in n])
def test_mesh_trains_like_one_device(report, name):
  run = report[name]
  assert run["devices"] == 8, run
  # data parallel replicates every parameter; fsdp, tensor and expert parallelism split them
  assert (run["sharded_params"] > 0) == (name != "data parallel"), run
  assert run["max_loss_diff"] < 1e-5, run
  assert run["max_param_diff"] < 1e-5, run
  assert run["same_eval"], run


def _cli(workdir, *args):
  return subprocess.run([sys.executable, "-m", "experiments.lego",
                         "--config=experiments/configs/lego.py:smoke", f"--workdir={workdir}", *args],
                        capture_output=True, text=True, cwd=ROOT, env=_child_env())


@pytest.mark.parametrize("args,expected", [
    (["--config.mesh.tensor=4", "--config.mesh.data=2"],
     "error: sharding: params/blocks/0/attn/out dimension 0 ('heads', size 2) is not divisible by "
     "mesh tensor=4; change config.mesh or config.sharding_rules.heads"),
    (["--config.batch_size=20", "--config.eval_size=40"],
     "error: batch_size: 20 is not divisible by the mesh's batch axes data=8; "
     "change it or config.mesh"),
    (["--config.mesh.fsdp=3"],
     "error: mesh: data=-1, fsdp=3, tensor=1, expert=1 does not fit 8 devices (3 does not divide "
     "8)"),
])
def test_mesh_that_does_not_divide_fails_in_one_line(tmp_path, args, expected):
  result = _cli(tmp_path, *args)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [expected], result.stderr


def test_compile_only_prints_the_memory_estimate_for_a_larger_mesh(tmp_path):
  result = subprocess.run([sys.executable, "-m", "experiments.lego",
                           "--config=experiments/configs/lego.py:smoke", f"--workdir={tmp_path}/run",
                           "--compile_only", "--config.mesh.data=2", "--config.mesh.fsdp=2",
                           "--config.mesh.tensor=4", "--config.model.num_heads=4"],
                          capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert lines[0] == ("compiled the train step for mesh data=2, fsdp=2, tensor=4, expert=1 (16 cpu "
                      "devices), batch 32")
  assert lines[1].startswith("memory per device: arguments ") and "temporaries" in lines[1]
  assert not os.path.exists(tmp_path / "run")  # nothing trained, nothing written


if __name__ == "__main__":
  sys.path.insert(0, ROOT)
  _worker(sys.argv[1])
