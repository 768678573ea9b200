"""A knowledge sweep's results gathered, once launch.sweep has run it (one workdir per variant).

    python -m launch.sweep --config=experiments/configs/knowledge.py:extraction --workdir=runs/ext

then writes, through `report` (experiments.STUDIES names it), <root>/summary.json ({variant:
results}), <root>/capacity.png (bits stored vs parameters) and, where the variants ran QA,
<root>/extraction.png (P_train / P_test accuracy per variant); `--collect_only` writes them again
from the runs on disk.

    python -m experiments.knowledge.sweep_report plot capacity.png runs/c100 runs/c1000

draws the capacity plot of several finished sweeps together (a ROOT may also be a summary written
by `summary`, e.g. docs/results/data/knowledge_capacity1000_cpu.json: every sweep in it, or
docs/results/data/knowledge_capacity1000_cpu.json:capacity1000_biod_cpu: that one), and

    python -m experiments.knowledge.sweep_report summary docs/results/data/knowledge_X.json \
        runs/c100 runs/c1000

writes the results page's summary of finished sweeps: {"command", "runs", "seeds", "sweeps":
{sweep: {variant: results}}} (results without the config), what experiments/knowledge/tables.py
renders.
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
  return [dict(params=r["params"], bits=_bits(r, key),
               label=" ".join(filter(None, (name, series[variant], precision))))
          for key, precision in (("capacity", "float32"), ("capacity_int8", "int8"),
                                 ("capacity_int4", "int4"))
          for variant, r in summary.items() if key in r]


def _bits(results: dict, key: str) -> float:
  """Bits stored at one precision; a summary may record only bits/param (int8, int4)."""
  cap = results[key]
  return cap["bits"] if "bits" in cap else cap["bits_per_param"] * results["params"]


def _sweeps(root: str) -> dict[str, dict]:
  """{sweep: {variant: results}} of a finished sweep's root, or of a page summary (FILE.json, or
  FILE.json:SWEEP for one of its sweeps)."""
  file, _, name = root.partition(".json:") if ".json:" in root else (root, "", "")
  file = file + ".json" if name else file
  if file.endswith(".json") and os.path.isfile(file):
    with open(file) as f:
      sweeps = json.load(f)["sweeps"]
    if name and name not in sweeps:
      raise ValueError(f"root: {file} has no sweep {name!r}; it has {', '.join(sweeps)}")
    return {name: sweeps[name]} if name else sweeps
  summary_path = os.path.join(root, "summary.json")
  if not os.path.exists(summary_path):
    raise ValueError(f"root: {root} has no summary.json (run its sweep to the end first)")
  with open(summary_path) as f:
    return {os.path.basename(os.path.normpath(root)): json.load(f)}


def plot(path: str, *roots: str) -> None:
  """One capacity plot of several finished sweeps (each root's summary.json, or every sweep of a
  page summary); runs without a measured capacity (stopped, or shared with another sweep) are left
  out."""
  points = []
  for root in roots:
    for name, summary in _sweeps(root).items():
      points += capacity_points(name, {v: r for v, r in summary.items()
                                       if "params" in r and "bits" in r.get("capacity", {})})
  plots.capacity(points, path)


# what a page summary keeps of a run's results.json (the config is the variant's, on the page)
SUMMARY_KEYS = ("params", "capacity", "capacity_int8", "capacity_int4", "qa", "probe")


def summary(path: str, *roots: str) -> dict:
  """The results page's summary of finished sweeps (each root's summary.json), written to `path`."""
  sweeps, seeds = {}, set()
  for root in roots:
    for name, runs in _sweeps(root).items():
      sweeps[name] = {v: {k: r[k] for k in SUMMARY_KEYS if k in r} for v, r in runs.items()}
      seeds |= {r["config"]["seed"] for r in runs.values() if "config" in r}
  data = {"runs": f"launch.sweep workdirs {' '.join(roots)}",
          "command": [f"python -m experiments.knowledge.sweep_report summary {path} "
                      + " ".join(roots)],
          "seeds": sorted(seeds), "sweeps": sweeps}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(data, f, indent=1)
    f.write("\n")
  return data


USAGE = ("usage: python -m experiments.knowledge.sweep_report {plot OUT.png | summary OUT.json} "
         "ROOT [ROOT ...]")


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) < 3 or argv[0] not in ("plot", "summary"):
    entry.fail(USAGE)
  try:
    (plot if argv[0] == "plot" else summary)(*argv[1:])
  except ValueError as e:
    entry.fail(e)


if __name__ == "__main__":
  main()
