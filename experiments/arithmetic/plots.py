"""Plots of the arithmetic study: one run's accuracy grid, and the summary and figures of
docs/results/arithmetic.md from the runs of its sweep.

    XLA_PYTHON_CLIENT_PREALLOCATE=false python -m launch.sweep \
        --config=experiments/configs/arithmetic.py:figures --workdir=runs/arithmetic --workers=19
    python -m experiments.arithmetic.plots --runs=runs/arithmetic   # summary and figures
    python -m experiments.arithmetic.plots                          # figures from the summary

With --runs, every finished run's accuracy_grid.json and eval log (metrics.jsonl) are gathered into
docs/results/data/arithmetic_summary.json (one entry per run: learned_s0 ... abacus_s2 for addition,
plain / reverse / pad / pad_reverse for multiplication); the figures are then drawn from that file.
"""
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments import pages  # noqa: E402

METHODS = ("learned", "random_space", "random_embedding", "randomized", "abacus")
FORMATS = ("plain", "reverse", "pad", "pad_reverse")


def plot_grid(grid, train_digits: int, path: str | None = None, title: str = ""):
  """The accuracy grid as a heatmap, the training range dashed: saved to `path` (and closed), or
  with no path left open for a notebook to show."""
  fig, ax = plt.subplots(figsize=(5.2, 4.4))
  n = len(grid)
  image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower",
                    extent=(0.5, n + 0.5, 0.5, n + 0.5))
  ax.add_patch(plt.Rectangle((0.5, 0.5), train_digits, train_digits, fill=False, ec="white",
                             lw=1.5, ls="--"))
  ticks = range(1, n + 1, max(1, n // 10))
  ax.set(xlabel="digits of b", ylabel="digits of a", title=title, xticks=ticks, yticks=ticks)
  fig.colorbar(image, ax=ax, label="exact match")
  fig.tight_layout()
  if path is not None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
  return fig


def seeds(summary, method):
  return [np.array(r["grid"]) for name, r in sorted(summary.items())
          if name.rsplit("_s", 1)[0] == method]


def addition(summary, path):
  fig, ax = plt.subplots(figsize=(8.0, 3.8))
  for method in METHODS:
    diag = np.array([np.diag(g) for g in seeds(summary, method)])  # [seeds, digits]
    if not len(diag):
      continue
    x = np.arange(1, diag.shape[1] + 1)
    ax.plot(x, diag.mean(0), "o-", ms=3, label=f"{method} ({len(diag)} seeds)")
    ax.fill_between(x, diag.min(0), diag.max(0), alpha=0.15)
  ax.axvspan(0.5, 10.5, color="gray", alpha=0.08, label="trained lengths")
  ax.set(xlabel="digits of a = digits of b", ylabel="exact match (mean, min-max band)",
         ylim=(-0.02, 1.02), title="addition, trained on 1-10 digits")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def multiplication(summary, path):
  fig, axes = plt.subplots(1, len(FORMATS), figsize=(3.0 * len(FORMATS), 3.0))
  for ax, name in zip(axes, FORMATS):
    grid = np.array(summary[name]["grid"])
    n = len(grid)
    ax.imshow(grid, vmin=0, vmax=1, origin="lower", extent=(0.5, n + 0.5, 0.5, n + 0.5))
    for i in range(n):
      for j in range(n):
        ax.text(j + 1, i + 1, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                color="white" if grid[i, j] < 0.6 else "black")
    ax.set(title=f"{name} (mean {grid.mean():.2f})", xlabel="digits of b", ylabel="digits of a",
           xticks=range(1, n + 1), yticks=range(1, n + 1))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)




def run_name(grid: dict) -> str:
  """A run's key in the summary: `<method>_s<seed>` for addition, the format for multiplication."""
  formats = grid["format"].split(",")
  if grid["op"] == "mul":
    return "_".join(formats)
  method = "random_space" if "random_space" in formats else grid["pos_encoding"]
  return f"{method}_s{grid['seed']}"


def gather(root: str) -> dict:
  """Every finished run under `root` (one folder per run, as launch.sweep writes them): its grid
  (accuracy_grid.json) and its eval log as "curve"."""
  summary = {}
  for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "accuracy_grid.json")
    if not os.path.exists(path):
      continue  # unfinished, or not a run
    with open(path) as f:
      run = json.load(f)
    with open(os.path.join(root, name, "metrics.jsonl")) as f:
      run["curve"] = [json.loads(line) for line in f if "eval/exact_match" in line]
    run["workdir"] = name
    summary[run_name(run)] = run
  return summary


def plot(summary: dict, out: str):
  addition(summary, os.path.join(out, "arithmetic_addition_length.png"))
  multiplication(summary, os.path.join(out, "arithmetic_multiplication.png"))


def main(argv=None):
  pages.summary_command("arithmetic_summary.json", gather, plot, argv,
                        description=__doc__.splitlines()[0])


if __name__ == "__main__":
  main()
