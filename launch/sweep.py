"""Sweeps: a config file's `get_sweep(arg)` expanded into runs, run locally, then tabulated and plotted.

    python -m launch.sweep --config=experiments/configs/lego.py:depth --workdir=runs/depth --workers=2
    python -m launch.sweep --config=experiments/configs/lego.py:smoke --workdir=/tmp/sweep --dry_run

Each point of the sweep is a dict: "config" (optional) is the variant passed to `get_config`, every
other key a dotted config field and its value (`{"config": "smoke", "model.num_layers": 2}`); a
string is a variant alone (`"smoke,layers=2"` = `{"config": "smoke,layers=2"}`). A run is
the study's own command line with those overrides and its own workdir under --workdir, so any run can
be repeated (or resumed) by hand. Runs already finished are skipped; results go to results.csv,
results.md and a plot of --metric across the sweep (launch/results.py), then to the study's own
sweep report where experiments.STUDIES names one (the knowledge study's summary.json and plots).

The study is the one whose config file --config is (experiments.STUDIES), or the one the file
names in `STUDY = "name"`, so a copy of a study's config file runs that study wherever it lives;
--study overrides both.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import experiments
from experiments.runtime import train
from experiments.runtime.metric_log import DamagedLog, read_jsonl
from launch import results
from tasks.cli import Parser, at_least


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  label: str         # the point: its variant and overrides, e.g. "smoke,model.num_layers=2"
  workdir: str
  module: str        # the study's entry point, e.g. experiments.lego
  config_file: str
  variant: str | None
  overrides: dict
  num_steps: int

  def command(self, python: str = sys.executable) -> list[str]:
    config = self.config_file + (f":{self.variant}" if self.variant else "")
    return [python, "-m", self.module, f"--config={config}", f"--workdir={self.workdir}",
            *(f"--config.{k}={v}" for k, v in self.overrides.items())]

  def config(self):
    """The run's config: the variant's, with the point's fields set."""
    return point_config(load_config_module(self.config_file), self.variant, self.overrides)

  def finished(self) -> bool:
    """The run logged its final evaluation (written only once the last step is done) and, where
    the workdir holds checkpoints, committed the last one (the log reaches the disk first, so a
    kill between the two leaves a run to resume). A damaged log is unfinished (the run, rerun,
    says what is wrong with it)."""
    path = os.path.join(self.workdir, "metrics.jsonl")
    checkpoints = os.path.join(self.workdir, "checkpoints")
    if os.path.isdir(checkpoints) and not os.path.isdir(os.path.join(checkpoints,
                                                                     str(self.num_steps))):
      return False
    try:
      records = read_jsonl(path) if os.path.exists(path) else []
    except DamagedLog:
      return False
    return any(r["step"] == self.num_steps and any(k.startswith("eval/") for k in r)
               for r in records)


def load_config_module(path: str):
  spec = importlib.util.spec_from_file_location("_sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def study_of(config_file: str, study: str | None = None) -> experiments.StudySpec:
  """Study `study` (a name in experiments.STUDIES), by default the config file's own (the study
  registered with it, or the one its STUDY names)."""
  return experiments.study(study) if study else experiments.study_of_config(config_file)


def expand(config_arg: str, root: str, study: str | None = None,
           entry: str | None = None) -> list[Run]:
  """The runs of `file.py:SWEEP`, each config built now so a bad override fails before any run;
  each runs `entry` (default: the study's entry point)."""
  config_file, _, arg = config_arg.partition(":")
  configs = load_config_module(config_file)
  if not hasattr(configs, "get_sweep"):
    raise ValueError(f"--config: {config_file} defines no get_sweep")
  module = entry or study_of(config_file, study).entry
  runs = []
  for i, point in enumerate(configs.get_sweep(arg or None)):
    point = {"config": point} if isinstance(point, str) else dict(point)
    variant = point.pop("config", None)
    label = ",".join(([variant] if variant else []) + [f"{k}={v}" for k, v in point.items()])
    name = f"{i:03d}_" + re.sub(r"[^A-Za-z0-9.=,_-]", "_", label)
    config = point_config(configs, variant, point)
    try:
      train.validate(config)
    except ValueError as e:
      raise ValueError(f"get_sweep: point {label}: {e}") from None
    runs.append(Run(name=name, label=label, workdir=os.path.join(root, name), module=module,
                    config_file=config_file, variant=variant, overrides=point,
                    num_steps=config.num_steps))
  return runs


def point_config(configs, variant: str | None, overrides: dict):
  """A sweep point's config: `configs.get_config(variant)` with the point's fields set."""
  config = configs.get_config(variant)
  for key, value in overrides.items():
    set_field(config, key, value)
  return config


def set_field(config, dotted: str, value) -> None:
  """config.<dotted> = value, for a field that exists (a sweep point's or a command's override)."""
  node, parts = config, dotted.split(".")
  for part in parts:
    if not hasattr(node, "keys") or part not in node:
      raise ValueError(f"get_sweep: unknown config field {dotted!r}")
    if part != parts[-1]:
      node = node[part]
  node[parts[-1]] = value


def run_locally(runs: list[Run], workers: int, print_fn=print) -> list[Run]:
  """Runs the unfinished runs, `workers` at a time, each pinned to its share of the CPUs.

  Returns the runs that failed; each run's output is in <workdir>.log.
  """
  todo = [r for r in runs if not r.finished()]
  for r in runs:
    if r not in todo:
      print_fn(f"skip {r.name}: finished")

  def launch(index_and_run):
    index, run = index_and_run
    pin = worker_cpus(index % workers, workers)
    prefix = (["taskset", "--cpu-list", ",".join(map(str, pin))]
              if pin and shutil.which("taskset") else [])
    os.makedirs(os.path.dirname(run.workdir) or ".", exist_ok=True)
    with open(run.workdir + ".log", "w") as log:
      code = subprocess.call(prefix + run.command(), stdout=log, stderr=subprocess.STDOUT)
    print_fn(f"{'done' if code == 0 else f'FAILED (exit {code})'} {run.name}"
             + ("" if code == 0 else f"; see {run.workdir}.log"))
    return run if code else None

  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    return [r for r in pool.map(launch, enumerate(todo)) if r is not None]


def worker_cpus(slot: int, workers: int) -> list[int]:
  """The CPUs worker `slot` of `workers` runs on: an even share of this process's (none, i.e.
  unpinned, where there are fewer CPUs than workers)."""
  cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  share = max(1, len(cpus) // max(1, workers))
  return cpus[slot * share:(slot + 1) * share] if len(cpus) >= workers else []


def main(argv=None) -> int:
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True, help="config file and sweep name, file.py:SWEEP")
  parser.add_argument("--workdir", required=True, help="one subdirectory per run, and the tables")
  parser.add_argument("--workers", type=at_least(1), default=1, help="runs at a time (CPUs split evenly)")
  parser.add_argument("--metric", default=None, help="metric to tabulate and plot (default: the "
                      "first eval metric of the first run)")
  parser.add_argument("--study", default=None, help="the study, a name in experiments.STUDIES "
                      "(default: the one whose config file --config is)")
  parser.add_argument("--entry", default=None, help="entry-point module to run (default: the "
                      "study's; experiments.lego.mimic: LEGO after the mimicking stage)")
  parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
  parser.add_argument("--collect_only", action="store_true", help="only write the tables and plot")
  args = parser.parse_args(argv)
  config_file, _, sweep = args.config.partition(":")
  try:
    runs = expand(args.config, args.workdir, args.study, args.entry)
    spec = study_of(config_file, args.study)
  except (ValueError, OSError) as e:
    parser.exit(2, f"error: {e}\n")
  if args.dry_run:
    for run in runs:
      print(" ".join(run.command()))
    return 0
  failed = [] if args.collect_only else run_locally(runs, args.workers)
  table = results.collect(runs, args.workdir, args.metric)
  print(f"results: {table}")
  spec.report_sweep(args.workdir, sweep, {run.label: run.workdir for run in runs})
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
