"""bioD(N, K, C, D, L, T): a knob-by-knob knowledge dataset for capacity studies (Part 3.3).

N people with unique bioS full names; K attributes; each attribute's pool holds D distinct strings of
L tokens over a vocabulary of T value tokens; each person's value of an attribute is C strings drawn
from that pool. A person's text is fixed (one per person, attributes in order):

    [CLS] Tu ##ni Fi ##ko Ze ##do ##ru a0 v17 v3 v3 v9 ; a1 v0 v12 v5 v8 ; ... [SEP]

Batches and packing are those of bioS pretraining (`bio` split).

    python -m tasks.biod --people 3 --attributes 2 --chunks 2 --pool 8 --length 2 --values 16
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from tasks import biography_pools as world
from tasks.biography import (KIND_NAME, KIND_VALUE, NAME_LEN, NUM_NAMES, Corpus,
                             PackedBiographies, join_pieces)
from tasks.vocab import CLS, SEP, Vocab
from tasks.cli import Parser, at_least, print_json_lines


@dataclasses.dataclass(frozen=True)
class BioDTask(PackedBiographies):
  people: int = 1000      # N
  attributes: int = 4     # K
  chunks: int = 2         # C
  pool: int = 16          # D
  length: int = 2         # L
  values: int = 32        # T
  bios_per_window: int = 4
  multi = 1  # one fixed text per person

  def __post_init__(self):
    for name in ("attributes", "chunks", "pool", "length", "values", "bios_per_window"):
      if getattr(self, name) < 1:
        raise ValueError(f"task.{name}: {getattr(self, name)}; allowed: >= 1")
    if not 2 <= self.people <= NUM_NAMES:
      raise ValueError(f"task.people: {self.people}; allowed: 2..{NUM_NAMES} (distinct full names)")
    if self.length * np.log2(self.values) < np.log2(self.pool):
      raise ValueError(f"task.pool: {self.pool} distinct strings do not exist with "
                       f"length={self.length} over values={self.values}")

  @functools.cached_property
  def vocab(self) -> Vocab:
    pools = world.pools()
    names = [t for key in ("first", "middle", "last") for value in pools[key] for t in value]
    return Vocab([CLS, SEP, ";", *names, *(f"a{k}" for k in range(self.attributes)),
                  *(f"v{t}" for t in range(self.values))])

  @property
  def max_bio_len(self) -> int:
    return NAME_LEN + self.attributes * (2 + self.chunks * self.length)

  @property
  def window(self) -> int:
    return self.bios_per_window * (self.max_bio_len + 1)

  def value_space_bits(self, gender_revealed) -> np.ndarray:
    """log2 of a person's value combinations, D^(K C) (no gender in bioD)."""
    return np.full(np.shape(gender_revealed), self.attributes * self.chunks * np.log2(self.pool))

  @functools.lru_cache(maxsize=4)
  def world(self, seed: int) -> dict[str, np.ndarray]:
    """names [N] (index into first × middle × last), pools [K, D, L], values [N, K, C]."""
    rng = np.random.default_rng([seed, 10])
    names = rng.choice(NUM_NAMES, self.people, replace=False)
    pools = np.stack([self._distinct_strings(rng) for _ in range(self.attributes)])
    values = rng.integers(self.pool, size=(self.people, self.attributes, self.chunks))
    return {"names": names, "pools": pools, "values": values}

  def _distinct_strings(self, rng) -> np.ndarray:
    strings = np.unique(rng.integers(self.values, size=(self.pool, self.length)), axis=0)
    while len(strings) < self.pool:
      more = rng.integers(self.values, size=(self.pool, self.length))
      strings = np.unique(np.concatenate([strings, more]), axis=0)
    return strings[rng.permutation(len(strings))[:self.pool]]

  def text(self, seed: int, p: int) -> tuple[list[str], list[int]]:
    w, pools = self.world(seed), world.pools()
    first, rest = divmod(int(w["names"][p]), world.NUM_MIDDLE * world.NUM_LAST)
    middle, last = divmod(rest, world.NUM_LAST)
    tokens = [*pools["first"][first], *pools["middle"][middle], *pools["last"][last]]
    kinds = [KIND_NAME] * len(tokens)
    for k in range(self.attributes):
      chunk_tokens = [f"v{t}" for c in w["values"][p, k] for t in w["pools"][k, c]]
      tokens += [f"a{k}", *chunk_tokens, ";"]
      kinds += [0] + [KIND_VALUE + k] * len(chunk_tokens) + [0]
    return tokens, kinds

  @functools.lru_cache(maxsize=4)
  def corpus(self, seed: int) -> Corpus:
    tokens = np.zeros((self.people, 1, self.max_bio_len), np.int32)
    kinds = np.zeros(tokens.shape, np.int8)
    for p in range(self.people):
      words, kind = self.text(seed, p)
      tokens[p, 0] = self.vocab.encode(words)
      kinds[p, 0] = kind
    return Corpus(tokens, kinds, np.full((self.people, 1), self.max_bio_len, np.int32))

  def batch(self, seed: int, split: str, step: int, batch_size: int,
            rows: slice | None = None) -> dict[str, np.ndarray]:
    if split != "bio":
      raise ValueError(f"split: unknown split {split!r}; allowed: bio")
    return self._bio_rows(seed, step * batch_size, batch_size, rows)


def main(argv=None):
  parser = Parser(description="Print bioD people as JSON lines.")
  parser.add_argument("--people", type=at_least(1), default=3)
  parser.add_argument("--attributes", type=int, default=4)
  parser.add_argument("--chunks", type=int, default=2)
  parser.add_argument("--pool", type=int, default=16)
  parser.add_argument("--length", type=int, default=2)
  parser.add_argument("--values", type=int, default=32)
  parser.add_argument("--seed", type=at_least(0), default=0)
  args = parser.parse_args(argv)
  def records():
    task = BioDTask(people=max(args.people, 2), attributes=args.attributes, chunks=args.chunks,
                    pool=args.pool, length=args.length, values=args.values)
    return [{"person": p, "text": join_pieces(task.text(args.seed, p)[0])}
            for p in range(args.people)]
  print_json_lines(parser, records)


if __name__ == "__main__":
  main()
