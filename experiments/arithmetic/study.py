"""The positional arithmetic study's Study: a decoder learns digit-level arithmetic with the loss on
the answer only; evaluation is exact-match accuracy of greedy decoding in a grid over
(digits of a) x (digits of b), including operand lengths beyond those trained on.

After training, `accuracy_grid.json` and `accuracy_grid.png` are written to the workdir.
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.arithmetic.plots import plot_grid
from experiments.runtime import restore, train
from models import positional as positional_lib
from models.decoding import greedy_generate
from tasks import rows as rows_lib
from tasks.arithmetic import EOS, SPACE, SPLITS, ArithmeticTask

GRID_STEP = 1_000_000  # batch steps of the test split used by the grid, far from the eval set's


class ArithmeticStudy:
  def __init__(self, config):
    self.seed = config.seed
    self.task = ArithmeticTask(**config.task.to_dict())
    name = config.model.pos_encoding
    if name not in positional_lib.ENCODINGS:
      raise ValueError(f"model.pos_encoding: unknown {name!r}; allowed: "
                       f"{', '.join(positional_lib.ENCODINGS)}")
    self.kind = positional_lib.ENCODINGS[name].POSITIONS
    self.grid_digits = max(config.eval.max_digits, self.task.max_digits)
    self.task.check_digits(self.grid_digits)  # e.g. a pad width too small for the grid
    self.samples_per_cell = config.eval.samples_per_cell
    self.abacus_max_offset = config.positions.abacus_max_offset
    # Decoding writes the answer after a prompt buffer as wide as the longest sequence.
    self.grid_len = self.task.seq_len(self.grid_digits)
    self.max_new = self.task.target_len(self.grid_digits)
    self.max_len = config.positions.max_len or self._default_max_len()
    self.space_id = self.task.vocab.id(SPACE)
    self.eos_id = self.task.vocab.id(EOS)
    self.abacus_fn = functools.partial(positional_lib.abacus_positions,
                                       digit_ids=self.task.digit_ids, skip_ids=(self.space_id,),
                                       xp=jnp)

  def _default_max_len(self) -> int:
    decode = self.grid_len + self.max_new
    if self.kind == "abacus":
      return self.abacus_max_offset + self.task.answer_width(self.grid_digits) + 2
    return 2 * decode if self.kind == "random_subset" else decode

  def model_fields(self):
    size = len(self.task.vocab)
    return {"vocab_size": size, "num_outputs": size, "max_len": self.max_len, "causal": True}

  # -- batches -----------------------------------------------------------------------------------

  def batch(self, split, step, batch_size, rows=None, digits=None, length=None):
    length = self.task.batch_length(digits, length)

    def block(index, first, count):
      part = self.task.block(self.seed, split, step, batch_size, index, first, count, digits,
                             length)
      rng = np.random.default_rng([self.seed, SPLITS[split], step, 7, index])
      positions = self.positions(part["inputs"], rng, train=split == "train")
      return part if positions is None else {**part, "positions": positions}

    return rows_lib.assemble(block, batch_size, rows)

  def positions(self, tokens, rng, train: bool):
    """What this encoding reads as `positions` for `tokens` [B, T]; None for token indices."""
    batch, length = tokens.shape
    if self.kind == "random_subset":
      return positional_lib.random_subset_positions(rng, batch, length, self.max_len)
    if self.kind == "random_tags":
      return positional_lib.random_tag_positions(rng, batch, length, self.max_len)
    if self.kind == "abacus":
      offset = rng.integers(0, self.abacus_max_offset + 1, (batch, 1)) if train else 0
      return positional_lib.abacus_positions(tokens, self.task.digit_ids, (self.space_id,), offset)
    return None

  # -- training and teacher-forced evaluation ----------------------------------------------------

  def loss(self, logits, batch):
    return train.masked_cross_entropy(logits, batch)

  def eval_sums(self, logits, batch):
    """Teacher-forced: an example is exact when every answer token is the argmax, which is
    exactly when greedy decoding reproduces the answer."""
    right = (logits.argmax(-1) == batch["targets"]) | (batch["weights"] == 0)
    exact = right.all(-1).astype(jnp.float32)
    d = self.task.max_digits + 1
    cell = jax.nn.one_hot(batch["a_digits"] * d + batch["b_digits"], d * d)
    token = ((logits.argmax(-1) == batch["targets"]) * batch["weights"]).sum()
    return {"exact": exact @ cell, "count": cell.sum(0), "token_correct": token,
            "tokens": batch["weights"].sum()}

  def summarize(self, sums):
    count = np.maximum(sums["count"], 1)
    metrics = {"exact_match": float(sums["exact"].sum() / max(sums["count"].sum(), 1)),
               "token_accuracy": float(sums["token_correct"] / max(sums["tokens"], 1))}
    d = self.task.max_digits + 1
    for index in np.flatnonzero(sums["count"]):
      metrics[f"exact/{index // d}x{index % d}"] = float(sums["exact"][index] / count[index])
    return metrics

  def headline(self, metrics):
    return f"exact {metrics['exact_match']:.3f} | token acc {metrics['token_accuracy']:.3f}"

  # -- the accuracy grid by greedy decoding ------------------------------------------------------

  def accuracy_grid(self, model, digits: int | None = None, samples: int | None = None):
    """[digits, digits] exact-match accuracy of greedy decoding; cell (i, j) = i+1 by j+1 digits."""
    digits, samples = digits or self.grid_digits, samples or self.samples_per_cell
    grid = np.zeros((digits, digits))
    for i in range(digits):
      for j in range(digits):
        step = GRID_STEP + i * 1000 + j
        batch = self.task.batch(self.seed, "test", step, samples, digits=(i + 1, j + 1),
                                length=self.grid_len)
        rng = np.random.default_rng([self.seed, SPLITS["test"], step, 7])
        total = self.grid_len + self.max_new
        kwargs = {}
        if self.kind == "abacus":
          kwargs["position_fn"] = self.abacus_fn
        elif self.kind != "index":
          kwargs["positions"] = self.positions(np.zeros((samples, total), np.int32), rng, False)
        new = greedy_generate(model, batch["inputs"], batch["prompt_length"], self.max_new,
                              eos_id=self.eos_id, **kwargs)
        grid[i, j] = np.mean([_exact(row, target, weight) for row, target, weight in
                              zip(new, batch["targets"], batch["weights"])])
    return grid

  def report(self, workdir: str, metrics: dict, print_fn=print) -> dict:
    """Decodes the accuracy grid from the workdir's latest checkpoint; JSON + heatmap there."""
    model = restore.load(workdir, "arithmetic").model
    grid = self.accuracy_grid(model)
    result = {"op": self.task.op, "format": self.task.format,
              "pos_encoding": model.config.pos_encoding, "train_digits": self.task.max_digits,
              "samples_per_cell": self.samples_per_cell, "seed": self.seed,
              "grid": grid.round(4).tolist(), "teacher_forced": metrics}
    print_fn("exact-match accuracy, rows: digits of a, columns: digits of b")
    for i, row in enumerate(grid, start=1):
      print_fn(f"{i:>3} " + " ".join(f"{x:4.2f}" for x in row))
    if jax.process_index() == 0:
      with open(os.path.join(workdir, "accuracy_grid.json"), "w") as f:
        json.dump(result, f, indent=1)
      plot_grid(grid, self.task.max_digits, os.path.join(workdir, "accuracy_grid.png"),
                title=f"{self.task.op} {self.task.format} / {model.config.pos_encoding}")
    return result


def _exact(new, targets, weights) -> bool:
  answer = targets[weights > 0]
  return bool(np.array_equal(new[:len(answer)], answer))
