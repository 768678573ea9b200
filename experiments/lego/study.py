"""The LEGO study's Study: an encoder classifies the value of every variable of a shuffled chain;
evaluation is accuracy per chain position, split by where each parent's clause stands."""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.lego import plots
from experiments.runtime import train
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
    """Correct and counted variables per chain position, and per (position, parent offset): where
    the parent's clause stands, in clauses from the child's (index offset + n - 1)."""
    n = self.task.num_vars
    by_position = jax.nn.one_hot(batch["position"], n + 1)[..., 1:]  # [B, T, n]
    by_offset = jax.nn.one_hot(batch["parent_offset"] + n - 1, 2 * n - 1)  # [B, T, 2n - 1]
    correct = (logits.argmax(-1) == batch["targets"]).astype(jnp.float32)
    correct_by_offset = jnp.einsum("btn,bto,bt->no", by_position, by_offset, correct)
    count_by_offset = jnp.einsum("btn,bto->no", by_position, by_offset)
    return {"correct": correct_by_offset.sum(-1), "count": count_by_offset.sum(-1),
            "correct_by_offset": correct_by_offset, "count_by_offset": count_by_offset}

  def summarize(self, sums):
    accuracy = sums["correct"] / np.maximum(sums["count"], 1)
    k = self.task.train_positions
    metrics = {f"accuracy/position_{i + 1}": float(a) for i, a in enumerate(accuracy)}
    metrics["accuracy/trained"] = float(accuracy[:k].mean())
    if k < self.task.num_vars:
      metrics["accuracy/untrained"] = float(accuracy[k:].mean())
    for group, (correct, count) in parent_groups(sums).items():
      for i in range(1, self.task.num_vars):  # position 1, the root, has no parent
        metrics[f"accuracy_parent_{group}/position_{i + 1}"] = float(correct[i] / max(count[i], 1))
    return metrics

  def headline(self, metrics):
    return "acc by position " + " ".join(f"{a:.2f}" for a in self.position_accuracies(metrics))

  def position_accuracies(self, metrics) -> list[float]:
    return [metrics[f"accuracy/position_{i}"] for i in range(1, self.task.num_vars + 1)]

  def report(self, workdir: str, metrics: dict, print_fn=print) -> None:
    """Per-position table on stdout (split by where the parent's clause stands); accuracy-vs-position
    and accuracy-vs-time plots."""
    k = self.task.train_positions
    accs = self.position_accuracies(metrics)
    groups = ("left", "right", "near", "far")
    print_fn("position  trained  accuracy   by parent's clause: " + "  ".join(
        f"{g:>5}" for g in groups))
    for i, a in enumerate(accs, start=1):
      split = "  ".join(f"{metrics.get(f'accuracy_parent_{g}/position_{i}', float('nan')):5.2f}"
                        for g in groups)
      print_fn(f"{i:>8}  {'yes' if i <= k else 'no':>7}  {a:8.4f}   {' ' * 20}{split}")
    if jax.process_index() == 0:
      plots.accuracy_by_position(accs, k, os.path.join(workdir, "accuracy_by_position.png"))
      plots.accuracy_vs_time(os.path.join(workdir, "metrics.jsonl"), self.task.num_vars, k,
                                  os.path.join(workdir, "accuracy_vs_time.png"))


NEAR = 2  # clauses: a parent at most this far from its child is "near"


def parent_groups(sums) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Per-position (correct, count) by where the parent's clause stands: left or right of the
  child's, near (at most NEAR clauses away) or far. A shortcut shows as one group far above another."""
  n = sums["correct_by_offset"].shape[0]
  offset = np.arange(-(n - 1), n)
  groups = {"left": offset < 0, "right": offset > 0, "near": (offset != 0) & (abs(offset) <= NEAR),
            "far": abs(offset) > NEAR}
  return {name: (sums["correct_by_offset"][:, mask].sum(-1), sums["count_by_offset"][:, mask].sum(-1))
          for name, mask in groups.items()}
