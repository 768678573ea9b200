"""Runs a named sweep of the knowledge study and gathers its results (one workdir per variant).

    python -m experiments.knowledge_sweep extraction runs/extraction
    python -m experiments.knowledge_sweep capacity100 runs/capacity100

Writes <root>/summary.json ({variant: results}), <root>/capacity.png (bits stored vs parameters)
and, where the variants ran QA, <root>/extraction.png (P_train / P_test accuracy per variant).
Rerunning resumes: finished variants are read back from their results.json.

    python -m experiments.knowledge_sweep plot capacity.png runs/capacity100 runs/capacity1000

draws the capacity plot of several finished sweeps together.
"""
from __future__ import annotations

import json
import os
import sys

from experiments import entry, host_memory, knowledge, knowledge_plots
from experiments.configs.knowledge import get_config, get_sweep


def sweep(name: str, root: str, print_fn=print) -> dict:
  summary = {}
  for variant in get_sweep(name):
    workdir = os.path.join(root, variant.replace(",", "_").replace("=", "-"))
    done = os.path.join(workdir, "results.json")
    if os.path.exists(done):
      with open(done) as f:
        summary[variant] = json.load(f)
      continue
    print_fn(f"== {name}: {variant}")
    results = knowledge.run(get_config(variant), workdir, print_fn)
    if results is None:  # preempted: the rerun resumes this variant
      return summary
    summary[variant] = results
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  knowledge_plots.capacity(capacity_points(name, summary), os.path.join(root, "capacity.png"))
  if any("qa" in r for r in summary.values()):
    knowledge_plots.extraction(summary, os.path.join(root, "extraction.png"))
  return summary


# what moves a run along a curve, not between curves
SIZE_KNOBS = ("layers", "heads", "head_dim", "people")


def capacity_points(name: str, summary: dict) -> list[dict]:
  """A point per run and precision ({params, bits, label}) for knowledge_plots.capacity; runs whose
  variants differ in more than size (block=llama, experts=8, junk=...) are labelled apart."""
  parts = {variant: set(variant.split(",")) for variant in summary}
  shared = set.intersection(*parts.values()) if parts else set()
  series = {variant: ",".join(sorted(p for p in parts[variant] - shared
                                     if p.partition("=")[0] not in SIZE_KNOBS))
            for variant in summary}
  return [dict(params=r["params"], bits=r[key]["bits"],
               label=" ".join(filter(None, (name, series[variant], precision))))
          for key, precision in (("capacity", "float32"), ("capacity_int8", "int8"),
                                 ("capacity_int4", "int4"))
          for variant, r in summary.items() if key in r]


def plot(path: str, *roots: str) -> None:
  """One capacity plot of several finished sweeps (each root's summary.json)."""
  points = []
  for root in roots:
    summary_path = os.path.join(root, "summary.json")
    if not os.path.exists(summary_path):
      raise ValueError(f"root: {root} has no summary.json (run its sweep to the end first)")
    with open(summary_path) as f:
      points += capacity_points(os.path.basename(os.path.normpath(root)), json.load(f))
  knowledge_plots.capacity(points, path)


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) >= 3 and argv[0] == "plot":
    command = lambda: plot(*argv[1:])
  elif len(argv) == 2:
    host_memory.keep_freed_memory()  # as entry.run does for one experiment
    command = lambda: sweep(*argv, print_fn=lambda s: print(s, flush=True))
  else:
    entry.fail("usage: python -m experiments.knowledge_sweep SWEEP ROOT | plot OUT.png ROOT [ROOT ...]")
  try:
    command()
  except ValueError as e:
    entry.fail(e)


if __name__ == "__main__":
  main()
