"""Plots of the knowledge study (matplotlib, no display needed)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def qa_by_attribute(qa: dict, path: str) -> None:
  attributes = [k.split("/")[1] for k in qa if k.startswith("P_train/")]
  x = np.arange(len(attributes))
  fig, ax = plt.subplots(figsize=(7, 3.5))
  for i, split in enumerate(("P_train", "P_test")):
    ax.bar(x + (i - 0.5) * 0.4, [qa[f"{split}/{a}"] for a in attributes], 0.4, label=split)
  ax.set(xticks=x, ylabel="QA exact match", ylim=(0, 1.02))
  ax.set_xticklabels(attributes, rotation=20)
  ax.legend()
  _save(fig, path)


def probe_heatmap(probe: dict, path: str) -> None:
  acc = np.array(probe["accuracy"])
  fig, ax = plt.subplots(figsize=(7, 3.8))
  image = ax.imshow(acc, vmin=0, vmax=1, cmap="viridis", aspect="auto")
  ax.set(xticks=range(acc.shape[1]), yticks=range(acc.shape[0]),
         title="P-probe accuracy on P_test (rows: position in the biography)")
  ax.set_xticklabels(probe["attributes"], rotation=20)
  ax.set_yticklabels(probe["positions"])
  for (i, j), v in np.ndenumerate(acc):
    ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=7)
  fig.colorbar(image)
  _save(fig, path)


def capacity(points: list[dict], path: str) -> str:
  """Bits stored vs parameters, a marker per run ({params, bits, label}); 1 and 2 bits/param lines.

  Log axes while every point stores more than 0 bits; a point at or below 0 (a quantised model
  that predicts worse than a uniform guess) turns the bits axis symlog, linear within +-10^4 bits
  and drawn through 0 with a line at 0, so it shows at its value. Returns the bits axis' scale."""
  fig, ax = plt.subplots(figsize=(9, 4))
  params = np.array([p["params"] for p in points], float)
  span = np.geomspace(params.min() / 1.5, params.max() * 1.5)
  for ratio, style in ((2, "--"), (1, ":")):
    ax.plot(span, ratio * span, "k" + style, lw=1, label=f"{ratio} bit/param")
  for label in dict.fromkeys(p["label"] for p in points):
    group = [p for p in points if p["label"] == label]
    marker = "x" if label.endswith("int8") else "o"  # int8 sits on float32: keep both visible
    ax.plot([p["params"] for p in group], [p["bits"] for p in group], marker, ms=8, label=label)
  yscale = "log" if all(p["bits"] > 0 for p in points) else "symlog"
  ax.set(xscale="log", xlabel="parameters", ylabel="bits of knowledge stored")
  if yscale == "log":
    ax.set_yscale("log")
  else:
    ax.set_yscale("symlog", linthresh=1e4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("bits stored (symlog; linear in ±10⁴)")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))  # beside: points stay visible
  _save(fig, path)
  return yscale


def extraction(summary: dict, path: str) -> None:
  """Mean QA exact match on P_train and P_test per variant of a sweep ({variant: results})."""
  variants = [v for v, r in summary.items() if "qa" in r]
  x = np.arange(len(variants))
  fig, ax = plt.subplots(figsize=(7, 3.8))
  for i, split in enumerate(("P_train", "P_test")):
    values = [summary[v]["qa"][split] for v in variants]
    bars = ax.bar(x + (i - 0.5) * 0.4, values, 0.4, label=split)
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
  ax.set(xticks=x, ylabel="QA exact match (mean of 6 attributes)", ylim=(0, 1.08))
  ax.set_xticklabels(variants, fontsize=7)
  ax.legend(loc="upper left")
  _save(fig, path)


def _save(fig, path: str) -> None:
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
