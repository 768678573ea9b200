"""Plots of a LEGO run, saved next to its metrics (matplotlib, no display needed)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments.runtime.metric_log import read_jsonl  # noqa: E402


def accuracy_by_position(accuracies, trained: int, path: str, label: str | None = None):
  fig, ax = plt.subplots(figsize=(6, 3.5))
  positions = range(1, len(accuracies) + 1)
  ax.axvspan(0.5, trained + 0.5, color="tab:green", alpha=0.08, label="trained positions")
  ax.plot(positions, accuracies, "o-", label=label)
  ax.axhline(0.5, color="gray", ls=":", lw=1)
  ax.set(xlabel="chain position", ylabel="test accuracy", ylim=(0, 1.02), xticks=list(positions))
  ax.legend(loc="lower left")
  _save(fig, path)


def accuracy_vs_time(metrics_path: str, num_vars: int, trained: int, path: str):
  records = [r for r in read_jsonl(metrics_path) if "eval/accuracy/position_1" in r]
  fig, ax = plt.subplots(figsize=(6, 3.5))
  minutes = [r["train_seconds"] / 60 for r in records]
  for i in range(1, num_vars + 1):
    ax.plot(minutes, [r[f"eval/accuracy/position_{i}"] for r in records],
            ls="-" if i <= trained else "--", label=f"pos {i}")
  ax.set(xlabel="training time (minutes)", ylabel="test accuracy", ylim=(0, 1.02))
  ax.legend(ncol=2, fontsize=7, loc="lower right")
  _save(fig, path)


def _save(fig, path: str):
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
