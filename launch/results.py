"""A sweep's results: one row per run (status, overrides, final metrics) as CSV and Markdown, and a
plot of one metric across the sweep."""
from __future__ import annotations

import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments.runtime.metric_log import DamagedLog, read_jsonl  # noqa: E402


def final_metrics(workdir: str) -> dict:
  """The last logged value of every metric of a run (empty before its first log)."""
  path = os.path.join(workdir, "metrics.jsonl")
  merged = {}
  for record in read_jsonl(path) if os.path.exists(path) else []:
    merged.update({k: v for k, v in record.items() if "/" in k})
  return merged


def collect(runs, root: str, metric: str | None = None) -> str:
  """Writes results.csv, results.md and <metric>.png under `root`; returns the Markdown path."""
  rows = []
  for run in runs:
    status = "finished" if run.finished() else "incomplete"
    try:
      metrics = final_metrics(run.workdir)
    except DamagedLog:  # the run, rerun, names the line
      metrics, status = {}, "damaged log"
    row = {"run": run.name, "status": status, "config": run.variant or ""}
    row.update({k: v for k, v in run.overrides.items()})
    row.update(metrics)
    rows.append(row)
  swept = [k for k in ("config", *dict.fromkeys(k for r in runs for k in r.overrides))
           if len({str(row.get(k, "")) for row in rows}) > 1]
  metric = metric or next((k for row in rows for k in row if k.startswith("eval/")), None)
  os.makedirs(root, exist_ok=True)
  columns = list(dict.fromkeys(k for row in rows for k in row))
  with open(os.path.join(root, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)
  shown = ["run", "status", *swept, *([metric] if metric else []),
           *(["train/loss"] if metric != "train/loss" else [])]
  lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
  lines += ["| " + " | ".join(_cell(row.get(k, "")) for k in shown) + " |" for row in rows]
  markdown = os.path.join(root, "results.md")
  with open(markdown, "w") as f:
    f.write("\n".join(lines) + "\n")
  if metric:
    plot(rows, swept, metric, os.path.join(root, metric.replace("/", "_") + ".png"))
  return markdown


def plot(rows, swept: list[str], metric: str, path: str) -> None:
  """Metric against the swept field when exactly one numeric field varies, else one bar per run."""
  done = [r for r in rows if metric in r]
  fig, ax = plt.subplots(figsize=(6, 3.5))
  numeric = len(swept) == 1 and all(isinstance(r.get(swept[0]), (int, float)) for r in done)
  if numeric:
    points = sorted((r[swept[0]], r[metric]) for r in done)
    ax.plot([x for x, _ in points], [y for _, y in points], "o-")
    ax.set(xlabel=swept[0])
  else:
    ax.bar(range(len(done)), [r[metric] for r in done])
    ax.set_xticks(range(len(done)), [r["run"] for r in done], rotation=30, ha="right", fontsize=7)
  ax.set(ylabel=metric, title=f"{metric} across the sweep")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _cell(value) -> str:
  return f"{value:.4f}" if isinstance(value, float) else str(value)
