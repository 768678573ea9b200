"""Plots of the programs study: one run's accuracy by bucket, and the table, summary and figures of
docs/results/programs.md from the comparison sweep's runs.

    python -m launch.sweep --config=experiments/configs/programs.py:compare --workdir=runs/programs_compare --workers=2
    python -m experiments.programs.plots runs/programs_compare docs/results

Reads each run's final evaluation (metrics.jsonl), groups runs by model (attention variant and conv
kernel), and writes programs_summary.json, programs_table.md (mean ± std over seeds per bucket),
programs_accuracy_by_bucket.png and programs_learning_curves.png (held-out exact match at every
evaluation, mean ± std over seeds).
"""
import json
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    values = np.array([[c[s] for s in steps] for c in curves])
    ax.errorbar(steps, values.mean(0), yerr=values.std(0), capsize=2, label=m)
  ax.set(xlabel="training step", ylabel="held-out exact match", ylim=(0, 1.02),
         title="held-out exact match during training (mean ± std over seeds)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(root: str, out: str):
  runs = gather(root)
  models = [m for m in ORDER if any(r["model"] == m for r in runs.values())]
  keys = sorted({k for r in runs.values() for k in r["buckets"]},
                key=lambda k: tuple(int(x[1:]) for x in k.split("_")))
  means, stds, summary = {}, {}, {"runs": runs, "models": {}}
  lines = ["| model | seeds | all | " + " | ".join(k.replace("s", "s=").replace("_d", ", d=")
                                                 for k in keys) + " |",
           "| --- | --- | --- | " + " | ".join("---" for _ in keys) + " |"]
  for m in models:
    rs = [r for r in runs.values() if r["model"] == m]
    overall = np.array([r["exact_match"] for r in rs])
    per = {k: np.array([r["buckets"][k] for r in rs]) for k in keys}
    means[m] = {k: float(v.mean()) for k, v in per.items()}
    stds[m] = {k: float(v.std()) for k, v in per.items()}
    summary["models"][m] = {"seeds": sorted(r["seed"] for r in rs),
                            "exact_match": [float(x) for x in overall],
                            "mean": float(overall.mean()), "std": float(overall.std()),
                            "buckets_mean": means[m], "buckets_std": stds[m]}
    cell = lambda v: f"{v.mean():.3f} ± {v.std():.3f}"
    lines.append(f"| {m} | {len(rs)} | {cell(overall)} | "
                 + " | ".join(cell(per[k]) for k in keys) + " |")
  with open(os.path.join(out, "programs_summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  with open(os.path.join(out, "programs_table.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  plot_buckets(means, os.path.join(out, "programs_accuracy_by_bucket.png"), errors=stds,
               title="held-out exact match by bucket (mean ± std over seeds)")
  plot_curves(runs, models, os.path.join(out, "programs_learning_curves.png"))
  print("\n".join(lines))


if __name__ == "__main__":
  main(*sys.argv[1:3])
