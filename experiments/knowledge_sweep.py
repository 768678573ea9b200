"""Runs a named sweep of the knowledge study and gathers its results (one workdir per variant).

    python -m experiments.knowledge_sweep extraction runs/extraction
    python -m experiments.knowledge_sweep capacity100 runs/capacity100

Writes <root>/summary.json ({variant: results}), <root>/capacity.png (bits stored vs parameters)
and, where the variants ran QA, <root>/extraction.png (P_train / P_test accuracy per variant).
Rerunning resumes: finished variants are read back from their results.json.
"""
from __future__ import annotations

import json
import os
import sys

from experiments import knowledge, knowledge_plots
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
  points = [dict(params=r["params"], bits=r["capacity"]["bits"], label=f"{name} float32")
            for r in summary.values()]
  points += [dict(params=r["params"], bits=r["capacity_int8"]["bits"], label=f"{name} int8")
             for r in summary.values() if "capacity_int8" in r]
  knowledge_plots.capacity(points, os.path.join(root, "capacity.png"))
  if any("qa" in r for r in summary.values()):
    knowledge_plots.extraction(summary, os.path.join(root, "extraction.png"))
  return summary


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) != 2:
    sys.exit("usage: python -m experiments.knowledge_sweep SWEEP ROOT")
  try:
    sweep(*argv, print_fn=lambda s: print(s, flush=True))
  except ValueError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  main()
