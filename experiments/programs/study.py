"""The learning-to-execute study's Study: a decoder reads a small C program (tasks/programs.py) and
writes what it prints, the loss on the answer only; evaluation is exact-match accuracy on held-out
programs per (statements, nesting depth) bucket.

After training, `accuracy_by_bucket.json` and `accuracy_by_bucket.png` are written to the workdir.
Exact match is teacher-forced: every answer token is the argmax exactly when greedy decoding writes
the whole answer (each step's input is then the right prefix), so no decoding loop is needed, and
every attention variant (conv-QKV and LEGO have no cached decoding path) is scored the same way.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.programs.plots import plot_buckets
from experiments.runtime import train
from tasks.programs import ProgramsTask


class ProgramsStudy:
  def __init__(self, config):
    self.seed = config.seed
    self.task = ProgramsTask(**config.task.to_dict())
    self.rows = self.task.max_statements + 1   # bucket grid: statements x depth
    self.cols = self.task.max_depth + 1

  def model_fields(self):
    size = len(self.task.vocab)
    return {"vocab_size": size, "num_outputs": size, "max_len": self.task.seq_len, "causal": True}

  def batch(self, split, step, batch_size, rows=None):
    return self.task.batch(self.seed, split, step, batch_size, rows)

  def loss(self, logits, batch):
    return train.masked_cross_entropy(logits, batch)

  def eval_sums(self, logits, batch):
    predicted = logits.argmax(-1)
    right = (predicted == batch["targets"]) | (batch["weights"] == 0)
    exact = right.all(-1).astype(jnp.float32)
    cell = jax.nn.one_hot(batch["statements"] * self.cols + batch["depth"], self.rows * self.cols)
    token = ((predicted == batch["targets"]) * batch["weights"]).sum()
    return {"exact": exact @ cell, "count": cell.sum(0), "token_correct": token,
            "tokens": batch["weights"].sum()}

  def summarize(self, sums):
    exact, count = sums["exact"], sums["count"]
    metrics = {"exact_match": float(exact.sum() / max(count.sum(), 1)),
               "token_accuracy": float(sums["token_correct"] / max(sums["tokens"], 1))}
    for index in np.flatnonzero(count):
      s, d = divmod(int(index), self.cols)
      metrics[f"exact/s{s}_d{d}"] = float(exact[index] / count[index])
    grid_e, grid_c = exact.reshape(self.rows, self.cols), count.reshape(self.rows, self.cols)
    for s in np.flatnonzero(grid_c.sum(1)):
      metrics[f"exact/statements_{s}"] = float(grid_e[s].sum() / grid_c[s].sum())
    for d in np.flatnonzero(grid_c.sum(0)):
      metrics[f"exact/depth_{d}"] = float(grid_e[:, d].sum() / grid_c[:, d].sum())
    return metrics

  def headline(self, metrics):
    by_s = " ".join(f"{metrics[k]:.2f}" for k in sorted(metrics) if k.startswith("exact/statements_"))
    return f"exact {metrics['exact_match']:.3f} | by statements {by_s}"

  def buckets(self, metrics) -> dict[str, float]:
    """Exact match per (statements, depth) bucket, keyed `s{S}_d{D}`."""
    return {k[len("exact/"):]: v for k, v in metrics.items()
            if k.startswith("exact/s") and "_d" in k and not k.startswith("exact/statements")}

  def report(self, workdir: str, metrics: dict, print_fn=print) -> dict:
    """Bucket table on stdout; JSON and a plot of accuracy by bucket in the workdir."""
    buckets = self.buckets(metrics)
    result = {"exact_match": metrics["exact_match"], "buckets": buckets, "seed": self.seed,
              "task": {f.name: getattr(self.task, f.name) for f in
                       self.task.__dataclass_fields__.values()}}
    print_fn(f"held-out exact match {metrics['exact_match']:.4f}; by (statements, depth):")
    for s in range(self.task.min_statements, self.task.max_statements + 1):
      row = [f"{buckets[f's{s}_d{d}']:.3f}" if f"s{s}_d{d}" in buckets else "  -  "
             for d in range(self.cols)]
      print_fn(f"  statements {s}: " + " ".join(row))
    if jax.process_index() == 0:
      with open(os.path.join(workdir, "accuracy_by_bucket.json"), "w") as f:
        json.dump(result, f, indent=1)
      plot_buckets({"model": buckets}, os.path.join(workdir, "accuracy_by_bucket.png"))
    return result
