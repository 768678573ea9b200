"""Plots of the programs study: one run's accuracy by bucket, and the summary and figures of
docs/results/programs.md from the comparison sweep's runs.

    python -m launch.sweep --config=experiments/configs/programs.py:compare --workdir=runs/programs_compare --workers=2
    python -m experiments.programs.plots --runs=runs/programs_compare   # summary and figures
    python -m experiments.programs.plots                                # figures from the summary

With --runs, reads each run's final evaluation (metrics.jsonl), groups runs by model (attention
variant and conv kernel) and writes docs/results/data/programs_summary.json (per model: seeds, exact
match per seed, mean and sample SD over seeds, overall and per bucket); the figures
programs_accuracy_by_bucket.png and programs_learning_curves.png (held-out exact match at every
evaluation, mean ± sample SD over seeds) are drawn from that file. The page's tables are rendered
from it by experiments/programs/tables.py.
"""
import json
import os

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments import pages  # noqa: E402
from experiments.runtime.metric_log import read_jsonl  # noqa: E402


def model_name(config: dict) -> str:
  model = config["model"]
  if model["attention"] == "conv_qkv":
    return f"conv_qkv k={model['conv_kernel']}"
  return model["attention"]


def gather(root: str) -> dict:
  runs = {}
  for name in sorted(os.listdir(root)):
    path = os.path.join(root, name)
    if not os.path.exists(os.path.join(path, "metrics.jsonl")):
      continue
    with open(os.path.join(path, "config.json")) as f:
      config = json.load(f)
    evals = [r for r in read_jsonl(os.path.join(path, "metrics.jsonl")) if "eval/exact_match" in r]
    if not evals or evals[-1]["step"] != config["num_steps"]:
      continue  # unfinished
    final = evals[-1]
    buckets = {k[len("eval/exact/"):]: v for k, v in final.items()
               if k.startswith("eval/exact/s") and not k.startswith("eval/exact/statements")}
    runs[name] = {"model": model_name(config), "seed": config["seed"],
                  "exact_match": final["eval/exact_match"], "buckets": buckets,
                  "curve": {r["step"]: r["eval/exact_match"] for r in evals},
                  "train_seconds": final.get("train_seconds"), "steps": config["num_steps"]}
  return runs


def plot_buckets(curves: dict[str, dict], path: str, errors: dict[str, dict] | None = None,
                 title: str = ""):
  """Exact match per bucket: one group of bars per (statements, depth) bucket, one bar per curve."""
  keys = sorted({k for c in curves.values() for k in c},
                key=lambda k: tuple(int(x[1:]) for x in k.split("_")))
  fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(keys) + 2), 3.8))
  width = 0.8 / len(curves)
  for i, (name, values) in enumerate(curves.items()):
    x = np.arange(len(keys)) + (i - (len(curves) - 1) / 2) * width
    err = [errors[name].get(k, 0) for k in keys] if errors else None
    ax.bar(x, [values.get(k, np.nan) for k in keys], width, yerr=err, capsize=2, label=name)
  ax.set_xticks(range(len(keys)), [k.replace("s", "").replace("_d", "/") for k in keys])
  ax.set(xlabel="bucket: statements / nesting depth", ylabel="held-out exact match",
         ylim=(0, 1.02), title=title)
  ax.legend(fontsize=8, ncol=min(len(curves), 5), loc="upper right")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


ORDER = ("vanilla", "conv_qkv k=2", "conv_qkv k=3", "conv_qkv k=5", "lego")


def plot_curves(runs: dict, models: list[str], path: str):
  """Held-out exact match against training step, one line per model (mean ± std over seeds)."""
  fig, ax = plt.subplots(figsize=(6, 3.8))
  for m in models:
    curves = [r["curve"] for r in runs.values() if r["model"] == m]
    steps = sorted(set.intersection(*(set(c) for c in curves)), key=int)
    values = np.array([[c[s] for s in steps] for c in curves])
    ax.errorbar(steps, values.mean(0), yerr=values.std(0, ddof=1) if len(values) > 1 else None,
                capsize=2, label=m)
  ax.set(xlabel="training step", ylabel="held-out exact match", ylim=(0, 1.02),
         title="mean ± sample SD over seeds 0-2")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


COMMAND = ("python -m launch.sweep --config=experiments/configs/programs.py:compare "
           "--workdir=runs/programs_compare --workers=2")


def bucket_keys(runs: dict) -> list[str]:
  return sorted({k for r in runs.values() for k in r["buckets"]},
                key=lambda k: tuple(int(x[1:]) for x in k.split("_")))


def summarize(runs: dict) -> dict:
  """The summary of docs/results/programs.md: every run, and per model its seeds, overall exact
  match per seed, and mean and sample SD (ddof=1) over seeds, overall and per bucket."""
  models = [m for m in ORDER if any(r["model"] == m for r in runs.values())]
  keys = bucket_keys(runs)
  summary = {"command": COMMAND, "spread": "sample standard deviation over seeds (ddof=1)",
             "runs": runs, "models": {}}
  for m in models:
    rs = sorted((r for r in runs.values() if r["model"] == m), key=lambda r: r["seed"])
    overall = np.array([r["exact_match"] for r in rs])
    per = {k: np.array([r["buckets"][k] for r in rs]) for k in keys}
    summary["models"][m] = {
        "seeds": [r["seed"] for r in rs], "exact_match": [float(x) for x in overall],
        "mean": float(overall.mean()), "sd": float(overall.std(ddof=1)),
        "buckets_mean": {k: float(v.mean()) for k, v in per.items()},
        "buckets_sd": {k: float(v.std(ddof=1)) for k, v in per.items()}}
  return summary


def plot(summary: dict, out: str):
  models = summary["models"]
  plot_buckets({m: s["buckets_mean"] for m, s in models.items()},
               os.path.join(out, "programs_accuracy_by_bucket.png"),
               errors={m: s["buckets_sd"] for m, s in models.items()},
               title="mean ± sample SD over seeds 0-2")
  plot_curves(summary["runs"], list(models), os.path.join(out, "programs_learning_curves.png"))


def main(argv=None):
  pages.summary_command("programs_summary.json", lambda root: summarize(gather(root)), plot, argv,
                        description=__doc__.splitlines()[0])

if __name__ == "__main__":
  main()
