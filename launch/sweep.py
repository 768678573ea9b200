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

The study is the one whose config file --config names (experiments.STUDIES); a sweep file of its
own (outside experiments/configs/) names its study with --study.
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
from experiments.runtime.metric_log import read_jsonl
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

  def finished(self) -> bool:
    """The run logged its final evaluation (written only once the last step is done)."""
    path = os.path.join(self.workdir, "metrics.jsonl")
    return os.path.exists(path) and any(
        r["step"] == self.num_steps and any(k.startswith("eval/") for k in r)
        for r in read_jsonl(path))


def load_config_module(path: str):
  spec = importlib.util.spec_from_file_location("_sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def study_of(config_file: str, study: str | None = None) -> experiments.StudySpec:
  """Study `study` (a name in experiments.STUDIES), by default the one whose config file it is."""
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
    config = configs.get_config(variant)
    for key, value in point.items():
      set_field(config, key, value)
    label = ",".join(([variant] if variant else []) + [f"{k}={v}" for k, v in point.items()])
    name = f"{i:03d}_" + re.sub(r"[^A-Za-z0-9.=,_-]", "_", label)
    runs.append(Run(name=name, label=label, workdir=os.path.join(root, name), module=module,
                    config_file=config_file, variant=variant, overrides=point,
                    num_steps=config.num_steps))
  return runs


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
  cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  share = max(1, len(cpus) // max(1, workers))

  def launch(index_and_run):
    index, run = index_and_run
    slot = index % workers
    pin = cpus[slot * share:(slot + 1) * share] if len(cpus) >= workers else []
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
