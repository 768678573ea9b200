"""A study's training step in two or more source trees (main against an older commit, say), taking
turns in one run, so that every arm sees the same machine.

    git worktree add /tmp/then dd742ad    # an older commit
    python -m benchmarks.step_ab --arm then /tmp/then experiments/configs/lego.py:tied \
        --arm now . experiments/configs/lego.py --rounds=30 --steps=20

Each arm is a worker process that imports the study from its own tree, builds the trainer as the
entry point does, and on request trains `--steps` steps the way the front door's loop does (a batch
drawn and placed per call, `steps_per_call` steps per compiled call, metrics fetched at the end).
The arms run their blocks in turns, the order reversed every round; per round, the first arm's
time over each other arm's is a ratio, and the median of those is the figure (a ratio above 1: the
other arm is faster). On a shared machine, whose speed drifts within minutes, only such turns give
a like-for-like figure; separate runs of each arm do not.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

_READY = "ready"
# Where a tree keeps its runtime modules (train, entry, host_memory): trees older than
# experiments/runtime/ keep them in experiments/ itself.
RUNTIME_PACKAGES = ("experiments.runtime", "experiments")


def runtime_package(tree: str) -> str | None:
  return next((package for package in RUNTIME_PACKAGES
               if os.path.isfile(os.path.join(tree, *package.split("."), "train.py"))), None)


def worker(tree: str, config_arg: str, study_spec: str) -> None:
  """Serves timed blocks of training steps of `config_arg` in `tree` over stdin/stdout."""
  sys.path.insert(0, tree)
  os.chdir(tree)
  import importlib
  runtime = runtime_package(tree)
  host_memory = importlib.import_module(f"{runtime}.host_memory")
  host_memory.keep_freed_memory()  # before JAX starts its threads, as the entry point does
  import jax
  entry = importlib.import_module(f"{runtime}.entry")
  train = importlib.import_module(f"{runtime}.train")
  config = entry.load_config(config_arg)  # the tree's own loader, as its --config flag reads
  module_name, _, class_name = study_spec.partition(":")
  study = getattr(importlib.import_module(module_name), class_name)(config)
  trainer = train.build_trainer(config, study)
  state = trainer.init()
  per_call = config.get("steps_per_call", 1)
  step = 0
  print(_READY, flush=True)
  for line in sys.stdin:
    start, metrics, first = time.perf_counter(), [], step
    for _ in range(0, int(line), per_call):
      if hasattr(trainer, "train_steps"):
        state, m = trainer.train_steps(
            state, trainer.batches("train", step, per_call, config.batch_size))
      else:  # trees from before steps_per_call: one jitted step per batch
        state, m = trainer.train_step(state, trainer.batch("train", step, config.batch_size))
      metrics.append(m)
      step += per_call
    jax.device_get(metrics)
    print(f"{(time.perf_counter() - start) / (step - first):.6f}", flush=True)


class Arm:
  """One worker process; `block(n)` trains n steps there (whole calls) and returns seconds/step."""

  def __init__(self, name: str, tree: str, config_arg: str, study_spec: str):
    if runtime_package(tree) is None:
      raise SystemExit(f"--arm {name}: {tree!r} is not a source tree of this project "
                       "(no experiments/runtime/train.py)")
    self.name = name
    self.process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--worker", tree, config_arg, study_spec],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree)
    if self.process.stdout.readline().strip() != _READY:
      raise SystemExit(f"--arm {name}: its worker did not start (its error is printed above)")

  def block(self, steps: int) -> float:
    self.process.stdin.write(f"{steps}\n")
    self.process.stdin.flush()
    return float(self.process.stdout.readline())

  def close(self):
    self.process.stdin.close()
    self.process.wait()


def measure(arms: list[tuple[str, str, str]], study_spec: str, rounds: int, steps: int,
            warmup_steps: int, print_fn=print) -> dict:
  """ms/step of each arm per round, and the first arm's time over each other's, per round."""
  workers = [Arm(name, tree, config_arg, study_spec) for name, tree, config_arg in arms]
  try:
    for arm in workers:
      arm.block(warmup_steps)  # compiles
    ms = {arm.name: [] for arm in workers}
    for r in range(rounds):
      for arm in (workers if r % 2 == 0 else workers[::-1]):
        ms[arm.name].append(arm.block(steps) * 1e3)
      print_fn(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in ms.items()) + " ms/step")
  finally:
    for arm in workers:
      arm.close()
  first = workers[0].name
  ratios = {f"{first}/{arm.name}": [a / b for a, b in zip(ms[first], ms[arm.name])]
            for arm in workers[1:]}
  return {"ms_per_step": ms, "ratios": ratios,
          "median_ms_per_step": {k: statistics.median(v) for k, v in ms.items()},
          "median_ratio": {k: statistics.median(v) for k, v in ratios.items()}}


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if argv[:1] == ["--worker"]:
    return worker(*argv[1:])
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--arm", nargs=3, action="append", required=True,
                      metavar=("NAME", "TREE", "CONFIG"),
                      help="a name, a source tree, a config file (with :variant) relative to it")
  parser.add_argument("--study", default="experiments.lego:LegoStudy", help="module:StudyClass")
  parser.add_argument("--rounds", type=int, default=20)
  parser.add_argument("--steps", type=int, default=20, help="steps per arm per round")
  parser.add_argument("--warmup-steps", type=int, default=3)
  parser.add_argument("--out", help="write the figures as JSON here")
  args = parser.parse_args(argv)
  names = [name for name, _, _ in args.arm]
  if len(names) < 2 or len(set(names)) != len(names):
    parser.error(f"--arm: at least two, with distinct names; got {names}")
  result = measure([(n, os.path.abspath(t), c) for n, t, c in args.arm], args.study,
                   args.rounds, args.steps, args.warmup_steps)
  for name, median in result["median_ms_per_step"].items():
    print(f"{name}: median {median:.1f} ms/step")
  for pair, median in result["median_ratio"].items():
    values = result["ratios"][pair]
    print(f"{pair}: median {median:.3f} over {len(values)} rounds "
          f"({min(values):.3f}-{max(values):.3f})")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
