"""A knowledge sweep's results gathered, once launch.sweep has run it (one workdir per variant).

    python -m launch.sweep --config=experiments/configs/knowledge.py:extraction --workdir=runs/ext

then writes, through `report` (experiments.STUDIES names it), <root>/summary.json ({variant:
results}), <root>/capacity.png (bits stored vs parameters) and, where the variants ran QA,
<root>/extraction.png (P_train / P_test accuracy per variant); `--collect_only` writes them again
from the runs on disk.

    python -m experiments.knowledge.sweep_report plot capacity.png runs/c100 runs/c1000

draws the capacity plot of several finished sweeps together.
"""
from __future__ import annotations

import json
import os
import sys

from experiments.knowledge import plots
from experiments.runtime import entry


def report(root: str, sweep: str, runs: dict[str, str], print_fn=print) -> dict | None:
  """summary.json and the plots of sweep `sweep` from its runs ({variant: workdir}), once every run
  has its results.json; returns the summary (None while runs are missing)."""
  missing = [variant for variant, workdir in runs.items()
             if not os.path.exists(os.path.join(workdir, "results.json"))]
  if missing:
    print_fn(f"summary.json: waits for {len(missing)} unfinished runs")
    return None
  summary = {}
  for variant, workdir in runs.items():
    with open(os.path.join(workdir, "results.json")) as f:
      summary[variant] = json.load(f)
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  plots.capacity(capacity_points(sweep, summary), os.path.join(root, "capacity.png"))
  if any("qa" in r for r in summary.values()):
    plots.extraction(summary, os.path.join(root, "extraction.png"))
  print_fn(f"summary: {os.path.join(root, 'summary.json')}")
  return summary


# what moves a run along a curve, not between curves
SIZE_KNOBS = ("layers", "heads", "head_dim", "people")


def capacity_points(name: str, summary: dict) -> list[dict]:
  """A point per run and precision ({params, bits, label}) for plots.capacity; runs whose variants
  differ in more than size (block=llama, experts=8, junk=...) are labelled apart."""
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
  plots.capacity(points, path)


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) < 3 or argv[0] != "plot":
    entry.fail("usage: python -m experiments.knowledge.sweep_report plot OUT.png ROOT [ROOT ...]")
  try:
    plot(*argv[1:])
  except ValueError as e:
    entry.fail(e)


if __name__ == "__main__":
  main()
