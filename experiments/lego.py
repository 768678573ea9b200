"""The LEGO study: an encoder classifies the value of every variable of a shuffled chain.

    python -m experiments.lego --config=experiments/configs/lego.py --workdir=runs/lego
    python -m experiments.lego --config=experiments/configs/lego.py:smoke --workdir=/tmp/lego
"""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments import entry, plots, train
from tasks import rows as rows_lib
from tasks.lego import LegoTask


class LegoStudy:
  def __init__(self, config):
    self.seed = config.seed
    self.task = LegoTask(**config.task.to_dict())
    self.curriculum = config.curriculum
    if not 1 <= self.curriculum.min_vars <= self.task.num_vars:
      raise ValueError(f"curriculum.min_vars: {self.curriculum.min_vars} is out of range; "
                       f"allowed: 1..task.num_vars={self.task.num_vars}")

  def model_fields(self):
    return {"vocab_size": len(self.task.vocab), "num_outputs": self.task.num_classes,
            "max_len": self.task.seq_len, "causal": False}

  def batch(self, split, step, batch_size, rows=None):
    if split == "train" and step < self.curriculum.steps:
      return rows_lib.assemble(lambda block, _, count: self._short_chains(step, block, count),
                               batch_size, rows)
    return self.task.batch(self.seed, split, step, batch_size, rows)

  def _short_chains(self, step, block, count):
    """Curriculum: chains of min_vars..n_max variables, n_max growing linearly to num_vars.

    Short chains make finding a parent's clause (the hop every position needs) easy to learn;
    they are padded to the full length so the model sees one shape throughout.
    """
    n, low = self.task.num_vars, self.curriculum.min_vars
    n_max = low + (n - low) * step // self.curriculum.steps
    rng = np.random.default_rng([self.seed, 2, step, block])
    lengths = np.sort(rng.integers(low, n_max + 1, size=count))
    parts = []
    for m in np.unique(lengths):
      task = dataclasses.replace(self.task, num_vars=int(m),
                                 train_positions=min(self.task.train_positions, int(m)))
      part = task.block(self.seed, "train", step, block, int((lengths == m).sum()))
      pad = self.task.seq_len - task.seq_len
      parts.append({k: np.pad(v, ((0, 0), (0, pad))) for k, v in part.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def loss(self, logits, batch):
    return train.masked_cross_entropy(logits, batch)

  def eval_sums(self, logits, batch):
    by_position = jax.nn.one_hot(batch["position"], self.task.num_vars + 1)[..., 1:]  # [B, T, n]
    correct = (logits.argmax(-1) == batch["targets"]).astype(jnp.float32)
    return {"correct": jnp.einsum("btn,bt->n", by_position, correct),
            "count": by_position.sum((0, 1))}

  def summarize(self, sums):
    accuracy = sums["correct"] / np.maximum(sums["count"], 1)
    k = self.task.train_positions
    metrics = {f"accuracy/position_{i + 1}": float(a) for i, a in enumerate(accuracy)}
    metrics["accuracy/trained"] = float(accuracy[:k].mean())
    if k < self.task.num_vars:
      metrics["accuracy/untrained"] = float(accuracy[k:].mean())
    return metrics

  def headline(self, metrics):
    return "acc by position " + " ".join(f"{a:.2f}" for a in self.position_accuracies(metrics))

  def position_accuracies(self, metrics) -> list[float]:
    return [metrics[f"accuracy/position_{i}"] for i in range(1, self.task.num_vars + 1)]

  def report(self, workdir: str, metrics: dict, print_fn=print) -> None:
    """Per-position table on stdout; accuracy-vs-position and accuracy-vs-time plots."""
    k = self.task.train_positions
    accs = self.position_accuracies(metrics)
    print_fn("position  trained  accuracy")
    for i, a in enumerate(accs, start=1):
      print_fn(f"{i:>8}  {'yes' if i <= k else 'no':>7}  {a:8.4f}")
    if jax.process_index() == 0:
      plots.lego_accuracy_by_position(accs, k, os.path.join(workdir, "accuracy_by_position.png"))
      plots.lego_accuracy_vs_time(os.path.join(workdir, "metrics.jsonl"), self.task.num_vars, k,
                                  os.path.join(workdir, "accuracy_vs_time.png"))


def main():
  entry.run(LegoStudy, default_config="lego.py")


if __name__ == "__main__":
  main()
