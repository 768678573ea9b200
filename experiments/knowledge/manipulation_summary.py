"""The knowledge-manipulation page's summary and plot (docs/results/knowledge_manipulation.md).

    python -m experiments.knowledge.manipulation_summary --runs=runs/cpu,runs/cpu_lr3e-3
    python -m experiments.knowledge.manipulation_summary      # plot only, from the summary

Gathering reads each run's results.json under a launch.sweep workdir named after its sweep (run
directories are `NNN_<variant>`) into docs/results/data/knowledge_manipulation.json: {"runs",
"command", "seeds", "sweeps": {sweep: {variant: {"params", "finetune_none", "finetune_mixed"}}}}.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np

from experiments import pages
from experiments.configs.manipulation import get_sweep
from experiments.knowledge.manipulation import columns
from experiments.knowledge.plots import _save, plt
from experiments.knowledge.tables import MANIPULATION_HEADLINE
from tasks.manipulation import KINDS

SUMMARY = "knowledge_manipulation.json"
KEPT = ("params", "finetune_none", "finetune_mixed")


def gather(roots: str) -> dict:
  """The summary of finished sweeps (roots joined by commas), each workdir named after its sweep
  (runs/cpu for sweep cpu): run NNN_... is the sweep's variant NNN."""
  sweeps, seeds = {}, set()
  for root in roots.split(","):
    sweep = os.path.basename(os.path.normpath(root))
    variants = get_sweep(sweep)
    runs = sweeps.setdefault(sweep, {})
    for name in sorted(os.listdir(root)):
      path = os.path.join(root, name, "results.json")
      if not os.path.exists(path):
        continue
      with open(path) as f:
        results = json.load(f)
      runs[variants[int(re.match(r"\d+", name)[0])]] = {k: results[k] for k in KEPT if k in results}
      seeds.add(results["config"]["seed"])
    if not runs:
      raise SystemExit(f"error: --runs: {root} holds no finished run (results.json)")
  return {"runs": f"launch.sweep workdirs {roots}", "seeds": sorted(seeds),
          "command": f"python -m experiments.knowledge.manipulation_summary --runs={roots}",
          "sweeps": sweeps}


def p_test(summary: dict, kind: str, sweep: str = MANIPULATION_HEADLINE) -> dict[str, list[float]]:
  """{column: P_test accuracy of each run of the sweep} for one kind."""
  out = {}
  for results in summary["sweeps"][sweep].values():
    for name, (stage, form) in columns(results).items():
      out.setdefault(name, []).append(results[stage][f"P_test/{kind}/{form}"])
  return out


def plot(summary: dict, out: str) -> None:
  """P_test accuracy per kind and column of the headline sweep: bars at the mean over runs, a dot
  per run."""
  fig, ax = plt.subplots(figsize=(7.5, 3.8))
  x = np.arange(len(KINDS))
  names = list(p_test(summary, KINDS[0]))
  for i, name in enumerate(names):
    offset = (i - (len(names) - 1) / 2) * 0.27
    values = [p_test(summary, kind)[name] for kind in KINDS]
    bars = ax.bar(x + offset, [np.mean(v) for v in values], 0.27, label=name)
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
    for j, v in enumerate(values):
      ax.plot([x[j] + offset] * len(v), v, "k.", markersize=4)
  ax.set(xticks=x, ylabel="P_test exact match", ylim=(0, 1.1))
  ax.set_xticklabels(KINDS)
  ax.legend(fontsize=7, loc="upper right")
  _save(fig, os.path.join(out, "knowledge_manipulation.png"))


def main(argv=None):
  pages.summary_command(SUMMARY, gather, plot, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
  main()
