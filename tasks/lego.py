"""LEGO: Learning Equality and Group Operations (Zhang et al., 2022).

A sentence is a chain of n variables written as shuffled clauses, e.g. for Z2:

    [CLS] c = val 0 , n = val p , p = not c , ... [SEP]

The root gets a value (`val 0`), every later variable a group element applied to its parent. The
model classifies, at each clause's first token, the value of the variable that clause defines.

With `graph="tree"` each variable's parent is any earlier variable (a random recursive tree), so
variables share parents and "chain position" is depth + 1: a test-time variant that breaks solutions
relying on the dependency graph being a single chain (shortcuts), with depths still inside the
trained range.

Held-out sentences: every chain has a fingerprint (its variable names in chain order, operators and
root value, independent of clause order); chains whose fingerprint falls in bucket 0 of
`held_out_buckets` belong to the test split and never to train, so no test chain (nor a reshuffling
of it) is ever trained on.

    python -m tasks.lego --num-vars 12 --num 5 --seed 0
"""
from __future__ import annotations

import dataclasses
import functools
import string

import numpy as np

from tasks import rows as rows_lib
from tasks.groups import Group, get_group
from tasks.vocab import CLS, SEP, Vocab
from tasks.cli import Parser, at_least, print_json_lines

LETTERS = tuple(string.ascii_lowercase)
CLAUSE_LEN = 5  # var = op arg ,
SPLITS = {"train": 0, "test": 1}
GRAPHS = ("chain", "tree")


@dataclasses.dataclass(frozen=True)
class Chains:
  """Sentences before rendering to tokens, all [B, n] in chain order (root first)."""
  names: np.ndarray    # letter index of each variable
  ops: np.ndarray      # operator index applied to the parent (identity at the root)
  values: np.ndarray   # value index of each variable
  clause_order: np.ndarray  # clause_order[b, j] = chain index of the j-th written clause
  parents: np.ndarray  # chain index of each variable's parent (-1 at the root)


@dataclasses.dataclass(frozen=True)
class LegoTask:
  num_vars: int = 12
  train_positions: int = 6  # loss on chain positions 1..train_positions
  group: str = "z2"
  shuffle: bool = True
  held_out_buckets: int = 8
  graph: str = "chain"  # or "tree": parents drawn among all earlier variables

  def __post_init__(self):
    if not 1 <= self.num_vars <= len(LETTERS):
      raise ValueError(f"task.num_vars: {self.num_vars} is out of range; allowed: 1..{len(LETTERS)} "
                       "(one letter per variable)")
    if not 1 <= self.train_positions <= self.num_vars:
      raise ValueError(f"task.train_positions: {self.train_positions} is out of range; allowed: "
                       f"1..num_vars={self.num_vars}")
    if self.held_out_buckets < 2:
      raise ValueError(f"task.held_out_buckets: {self.held_out_buckets}; allowed: >= 2")
    get_group(self.group)  # fails early, naming the field, on an unknown group
    if self.graph not in GRAPHS:
      raise ValueError(f"task.graph: unknown {self.graph!r}; allowed: {', '.join(GRAPHS)}")

  @functools.cached_property
  def algebra(self) -> Group:
    return get_group(self.group)

  @functools.cached_property
  def vocab(self) -> Vocab:
    return Vocab([CLS, SEP, "=", ",", *LETTERS, *self.algebra.operators, *self.algebra.values])

  @property
  def seq_len(self) -> int:
    return CLAUSE_LEN * self.num_vars + 2

  @property
  def num_classes(self) -> int:
    return self.algebra.num_values

  # -- sampling ----------------------------------------------------------------------------------

  def sample_chains(self, seed: int, split: str, step: int, batch_size: int) -> Chains:
    """The chains of batch `step` of `split`: a pure function of its arguments."""
    parts = [self._block_chains(seed, split, step, block, count)
             for block, _, count in rows_lib.blocks(batch_size)]
    return Chains(*(np.concatenate(field) for field in zip(*map(dataclasses.astuple, parts))))

  def _block_chains(self, seed: int, split: str, step: int, block: int, count: int) -> Chains:
    """`count` chains from the random stream of one block of rows (see tasks.rows)."""
    if split not in SPLITS:
      raise ValueError(f"split: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    rng = np.random.default_rng([seed, SPLITS[split], step, block])
    want_test = split == "test"
    kept, total = [], 0
    while total < count:
      draw = count * (2 * self.held_out_buckets if want_test else 2)
      chains = self._draw(rng, draw)
      keep = (self._fingerprint_bucket(chains) == 0) == want_test
      kept.append(_select(chains, keep))
      total += int(keep.sum())
    return Chains(*(np.concatenate(parts)[:count] for parts in zip(*(
        dataclasses.astuple(c) for c in kept))))

  def _draw(self, rng: np.random.Generator, count: int) -> Chains:
    n, algebra = self.num_vars, self.algebra
    names = rng.random((count, len(LETTERS))).argsort(axis=1)[:, :n]
    ops = rng.integers(len(algebra.operators), size=(count, n))
    ops[:, 0] = algebra.identity
    values = np.empty((count, n), dtype=np.int64)
    values[:, 0] = rng.integers(algebra.num_values, size=count)
    if self.shuffle:
      clause_order = rng.random((count, n)).argsort(axis=1)
    else:
      clause_order = np.broadcast_to(np.arange(n), (count, n)).copy()
    parents = np.broadcast_to(np.arange(n) - 1, (count, n)).copy()
    if self.graph == "tree":  # drawn last, so chains stay the exact sentences they always were
      parents[:, 1:] = (rng.random((count, n - 1)) * np.arange(1, n)).astype(np.int64)
    rows = np.arange(count)
    for i in range(1, n):
      values[:, i] = algebra.table[ops[:, i], values[rows, parents[:, i]]]
    return Chains(names, ops, values, clause_order, parents)

  def _fingerprint_bucket(self, chains: Chains) -> np.ndarray:
    """Bucket of each chain, from its content in chain order (not its clause order)."""
    code = np.where(np.arange(self.num_vars) == 0, chains.values, chains.ops)
    h = np.zeros(len(code), dtype=np.uint64)
    with np.errstate(over="ignore"):
      for i in range(self.num_vars):
        h = h * np.uint64(1_000_003) + (chains.names[:, i] * 64 + code[:, i]).astype(np.uint64)
      h ^= h >> np.uint64(29)
      h *= np.uint64(0xBF58476D1CE4E5B9)
      h ^= h >> np.uint64(32)
    return (h % np.uint64(self.held_out_buckets)).astype(np.int64)

  # -- rendering ---------------------------------------------------------------------------------

  def render(self, chains: Chains) -> dict[str, np.ndarray]:
    """Token ids, per-token targets, loss weights and chain positions of a set of chains."""
    vocab, algebra, n = self.vocab, self.algebra, self.num_vars
    letter_ids = np.array([vocab.id(c) for c in LETTERS])
    op_ids = np.array([vocab.id(t) for t in algebra.operators])
    value_ids = np.array([vocab.id(t) for t in algebra.values])
    batch = len(chains.names)

    clauses = np.empty((batch, n, CLAUSE_LEN), dtype=np.int32)
    clauses[:, :, 0] = letter_ids[chains.names]
    clauses[:, :, 1] = vocab.id("=")
    clauses[:, :, 2] = op_ids[chains.ops]
    clauses[:, 0, 3] = value_ids[chains.values[:, 0]]
    rows = np.arange(batch)[:, None]
    clauses[:, 1:, 3] = letter_ids[chains.names[rows, chains.parents[:, 1:]]]
    clauses[:, :, 4] = vocab.id(",")
    written = clauses[rows, chains.clause_order].reshape(batch, n * CLAUSE_LEN)

    inputs = np.concatenate([np.full((batch, 1), vocab.id(CLS), np.int32), written,
                             np.full((batch, 1), vocab.id(SEP), np.int32)], axis=1)
    var_slots = 1 + CLAUSE_LEN * np.arange(n)  # token index of each written clause's variable
    position = np.zeros(inputs.shape, np.int32)
    position[:, var_slots] = depths(chains.parents)[rows, chains.clause_order] + 1
    targets = np.zeros(inputs.shape, np.int32)
    targets[:, var_slots] = chains.values[rows, chains.clause_order]
    weights = ((position >= 1) & (position <= self.train_positions)).astype(np.float32)
    parent_offset = np.zeros(inputs.shape, np.int32)
    parent_offset[:, var_slots] = parent_clause_offsets(chains)
    return {"inputs": inputs, "targets": targets, "weights": weights, "position": position,
            "parent_offset": parent_offset}

  def batch(self, seed: int, split: str, step: int, batch_size: int,
            rows: slice | None = None) -> dict[str, np.ndarray]:
    """Rows `rows` (default all) of batch `step`, drawing only the blocks that hold them."""
    return rows_lib.assemble(lambda block, _, count: self.block(seed, split, step, block, count),
                             batch_size, rows)

  def block(self, seed: int, split: str, step: int, block: int,
            count: int) -> dict[str, np.ndarray]:
    """Block `block` of batch `step`, rendered (`count` rows)."""
    return self.render(self._block_chains(seed, split, step, block, count))

  def examples(self, seed: int, split: str, step: int, num: int) -> list[dict]:
    """Readable records: the sentence as the model sees it, each variable's value, the chain."""
    chains = self.sample_chains(seed, split, step, num)
    inputs = self.render(chains)["inputs"]
    records = []
    for b in range(num):
      order = [LETTERS[i] for i in chains.names[b]]
      values = {v: self.algebra.values[x] for v, x in zip(order, chains.values[b])}
      records.append({"text": self.vocab.decode(inputs[b]), "values": values, "order": order})
    return records


def depths(parents: np.ndarray) -> np.ndarray:
  """Distance of each variable from the root; parents come earlier in chain order."""
  depth = np.zeros(parents.shape, np.int32)
  rows = np.arange(len(parents))
  for i in range(1, parents.shape[1]):
    depth[:, i] = depth[rows, parents[:, i]] + 1
  return depth


def parent_clause_offsets(chains: Chains) -> np.ndarray:
  """[B, n] in written order: the parent's written clause index minus the child's (negative: the
  parent's clause stands to the left); 0 at the root."""
  rows = np.arange(len(chains.names))[:, None]
  written_at = np.empty_like(chains.clause_order)  # written clause index of each chain index
  written_at[rows, chains.clause_order] = np.arange(chains.clause_order.shape[1])
  parents = chains.parents[rows, chains.clause_order]  # chain index of each written clause's parent
  offsets = written_at[rows, np.maximum(parents, 0)] - np.arange(parents.shape[1])
  return np.where(parents >= 0, offsets, 0).astype(np.int32)


def _select(chains: Chains, keep: np.ndarray) -> Chains:
  return Chains(*(field[keep] for field in dataclasses.astuple(chains)))


def main(argv=None):
  parser = Parser(description="Print LEGO sentences as JSON lines.")
  parser.add_argument("--num-vars", type=int, default=12)
  parser.add_argument("--num", type=at_least(1), default=5)
  parser.add_argument("--seed", type=at_least(0), default=0)
  parser.add_argument("--split", default="train", choices=sorted(SPLITS))
  parser.add_argument("--step", type=at_least(0), default=0)
  parser.add_argument("--group", default="z2", help="z2, z<k> (k in 3..10) or s3")
  parser.add_argument("--no-shuffle", action="store_true", help="write clauses in chain order")
  parser.add_argument("--graph", default="chain", choices=GRAPHS)
  args = parser.parse_args(argv)
  print_json_lines(parser, lambda: LegoTask(
      num_vars=args.num_vars, train_positions=1, group=args.group, shuffle=not args.no_shuffle,
      graph=args.graph).examples(args.seed, args.split, args.step, args.num))


if __name__ == "__main__":
  main()
