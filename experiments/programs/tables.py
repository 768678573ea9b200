"""The tables of docs/results/programs.md, rendered from docs/results/data/programs_summary.json
(written by `python -m experiments.programs.plots --runs=...` from the runs of the `compare`
sweep). `python -m experiments.pages` writes them into the page."""
from __future__ import annotations

import numpy as np

SUMMARY = "programs_summary.json"
LABELS = {"vanilla": "vanilla", "conv_qkv k=2": "conv-QKV k = 2", "conv_qkv k=3": "conv-QKV k = 3",
          "conv_qkv k=5": "conv-QKV k = 5", "lego": "LEGO attention"}


def _bucket(key: str) -> str:
  statements, depth = key.split("_")
  return f"{statements[1:]} / {depth[1:]}"


def _keys(models: dict) -> list[str]:
  return sorted({k for s in models.values() for k in s["buckets_mean"]},
                key=lambda k: tuple(int(x[1:]) for x in k.split("_")))


def per_seed(load) -> str:
  """Overall held-out exact match after the last step, each seed, and mean ± sample SD."""
  models = load(SUMMARY)["models"]
  seeds = sorted({s for m in models.values() for s in m["seeds"]})
  lines = ["| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± SD |",
           "| --- | " + " | ".join("---" for _ in seeds) + " | --- |"]
  for name, m in models.items():
    by_seed = dict(zip(m["seeds"], m["exact_match"]))
    cells = [f"{by_seed[s]:.3f}" if s in by_seed else "–" for s in seeds]
    lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells)
                 + f" | {m['mean']:.3f} ± {m['sd']:.3f} |")
  return "\n".join(lines)


def buckets(load) -> str:
  """Held-out exact match per (statements, depth) bucket: mean ± sample SD over the seeds."""
  models = load(SUMMARY)["models"]
  keys = _keys(models)
  lines = ["| model | seeds | " + " | ".join(_bucket(k) for k in keys) + " |",
           "| --- | --- | " + " | ".join("---" for _ in keys) + " |"]
  for name, m in models.items():
    lines.append(f"| {LABELS.get(name, name)} | {', '.join(map(str, m['seeds']))} | "
                 + " | ".join(f"{m['buckets_mean'][k]:.3f} ± {m['buckets_sd'][k]:.3f}"
                              for k in keys) + " |")
  return "\n".join(lines)


def curves(load) -> str:
  """Held-out exact match at every evaluation, mean over seeds."""
  summary = load(SUMMARY)
  runs, models = summary["runs"].values(), summary["models"]
  steps = sorted({int(s) for r in runs for s in r["curve"]})
  lines = ["| model | " + " | ".join(f"step {s:,}" for s in steps) + " |",
           "| --- | " + " | ".join("---" for _ in steps) + " |"]
  for name in models:
    rs = [r for r in runs if r["model"] == name]
    means = [np.mean([r["curve"][str(s)] for r in rs]) for s in steps]
    lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(f"{v:.3f}" for v in means) + " |")
  return "\n".join(lines)


def findings(load) -> str:
  """The published finding (STUDIES.md §1, first version of the LEGO paper), ours, a verdict."""
  models = load(SUMMARY)["models"]
  keys = _keys(models)
  van, k5 = models["vanilla"], models["conv_qkv k=5"]
  lead = [k5["buckets_mean"][k] - van["buckets_mean"][k] for k in keys]
  every_seed = min(k5["exact_match"]) > max(van["exact_match"])

  def seeds(m):
    return " / ".join(f"{x:.3f}" for x in m["exact_match"])

  smaller = "; ".join(f"{LABELS[n]} {models[n]['mean']:.3f} ± {models[n]['sd']:.3f}"
                      for n in ("conv_qkv k=2", "conv_qkv k=3"))
  rows = [
      ("Convolutional QKV shows an edge on learning to execute small C programs (kernel size and "
       "program format unverified)",
       f"conv-QKV k = 5 {seeds(k5)} (mean {k5['mean']:.3f} ± {k5['sd']:.3f}) against vanilla "
       f"{seeds(van)} ({van['mean']:.3f} ± {van['sd']:.3f}), seeds 0 / 1 / 2; "
       f"{'every' if every_seed else 'not every'} k = 5 seed above every vanilla seed; ahead in "
       f"{sum(x > 0 for x in lead)} of {len(lead)} buckets by {min(lead):.2f}–{max(lead):.2f}",
       "holds", "at kernel 5 only: " + smaller + "; small models far from solving the task"),
      ("LEGO attention: equal or better quality in BERT pretraining, fewer FLOPs",
       f"not measured in pretraining; on these programs {models['lego']['mean']:.3f} ± "
       f"{models['lego']['sd']:.3f} (seeds 0 / 1 / 2: {seeds(models['lego'])})", "not run",
       "a different task; the fixed heads take two of four heads here"),
  ]
  lines = ["| published finding | ours | verdict | why it differs |", "| --- | --- | --- | --- |"]
  lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
  return "\n".join(lines)
