"""bioD(N, K, C, D, L, T): a knob-by-knob knowledge dataset for capacity studies (Part 3.3).

N people with unique bioS full names; K attributes; each attribute's pool holds D distinct strings of
L tokens over a vocabulary of T value tokens; each person's value of an attribute is C strings drawn
from that pool. A person's text is fixed (one per person, attributes in order):

    [CLS] Tu ##ni Fi ##ko Ze ##do ##ru a0 v17 v3 v3 v9 ; a1 v0 v12 v5 v8 ; ... [SEP]

Batches and packing are those of bioS pretraining (`bio` split).

Junk mixture (Part 3.3's junk data): `junk_share` of the rows of every training batch (of its
tokens, as every bioD biography has the same length) hold junk biographies, the rest the N useful
people seen in shuffled rounds as without junk. A junk biography is a bioD text of a person who is
not one of the N (their names never coincide), with values from the same pools: `junk_people` of
them cycled in shuffled rounds (each seen a handful of times), or with junk_people = 0 a new person
every time (random rows never seen again). Junk text carries person -1: the capacity meter and the
eval read the useful people only. `domain_token` starts every useful biography with `[USEFUL]`
(its kind KIND_DOMAIN: no one's knowledge). Junk rows are a pure function of (seed, step) too.

    python -m tasks.biod --people 3 --attributes 2 --chunks 2 --pool 8 --length 2 --values 16
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from tasks import biography_pools as world
from tasks import rows as rows_lib
from tasks.biography import (KIND_DOMAIN, KIND_NAME, KIND_VALUE, NAME_LEN, NUM_NAMES, Corpus,
                             PackedBiographies, join_pieces, round_permutation)
from tasks.vocab import CLS, SEP, Vocab
from tasks.cli import Parser, at_least, print_json_lines

DOMAIN = "[USEFUL]"
JUNK_PEOPLE, JUNK_ROUNDS = 11, 12  # rng streams of junk people and of their shuffled rounds


@dataclasses.dataclass(frozen=True)
class BioDTask(PackedBiographies):
  people: int = 1000      # N
  attributes: int = 4     # K
  chunks: int = 2         # C
  pool: int = 16          # D
  length: int = 2         # L
  values: int = 32        # T
  bios_per_window: int = 4
  junk_share: float = 0.0   # share of a training batch's rows that hold junk biographies
  junk_people: int = 0      # distinct junk people (0: a new one for every junk biography)
  domain_token: bool = False  # `[USEFUL]` before every useful biography
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
    if not 0.0 <= self.junk_share < 1.0:
      raise ValueError(f"task.junk_share: {self.junk_share}; allowed: [0, 1)")
    if self.junk_people < 0:
      raise ValueError(f"task.junk_people: {self.junk_people}; allowed: >= 0 (0: never repeated)")

  @functools.cached_property
  def vocab(self) -> Vocab:
    pools = world.pools()
    names = [t for key in ("first", "middle", "last") for value in pools[key] for t in value]
    return Vocab([CLS, SEP, ";", *names, *(f"a{k}" for k in range(self.attributes)),
                  *(f"v{t}" for t in range(self.values)), *[DOMAIN] * self.domain_token])

  @property
  def max_bio_len(self) -> int:
    return self.domain_token + NAME_LEN + self.attributes * (2 + self.chunks * self.length)

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
    """Tokens and kinds of useful person p's biography."""
    w = self.world(seed)
    tokens, kinds = self._text(w["names"][p], w["values"][p], w["pools"])
    return ([DOMAIN] + tokens, [KIND_DOMAIN] + kinds) if self.domain_token else (tokens, kinds)

  def _text(self, name: int, values: np.ndarray, pools: np.ndarray) -> tuple[list[str], list[int]]:
    names = world.pools()
    first, rest = divmod(int(name), world.NUM_MIDDLE * world.NUM_LAST)
    middle, last = divmod(rest, world.NUM_LAST)
    tokens = [*names["first"][first], *names["middle"][middle], *names["last"][last]]
    kinds = [KIND_NAME] * len(tokens)
    for k in range(self.attributes):
      chunk_tokens = [f"v{t}" for c in values[k] for t in pools[k, c]]
      tokens += [f"a{k}", *chunk_tokens, ";"]
      kinds += [0] + [KIND_VALUE + k] * len(chunk_tokens) + [0]
    return tokens, kinds

  @functools.lru_cache(maxsize=4)
  def _useful_names(self, seed: int) -> frozenset:
    return frozenset(self.world(seed)["names"].tolist())

  @functools.lru_cache(maxsize=2**16)
  def junk_text(self, seed: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and kinds of junk person j: a name none of the useful people has, fresh values."""
    rng = np.random.default_rng([seed, JUNK_PEOPLE, j])
    name = int(rng.integers(NUM_NAMES))
    while name in self._useful_names(seed):
      name = int(rng.integers(NUM_NAMES))
    values = rng.integers(self.pool, size=(self.attributes, self.chunks))
    tokens, kinds = self._text(name, values, self.world(seed)["pools"])
    return self.vocab.encode(tokens), np.array(kinds, np.int32)

  def junk_rows(self, seed: int, first: int, count: int) -> dict[str, np.ndarray]:
    """`count` windows of the junk stream from window `first` on."""
    slots = (first + np.arange(count))[:, None] * self.bios_per_window + np.arange(
        self.bios_per_window)
    if self.junk_people:
      rounds, at = np.divmod(slots, self.junk_people)
      slots = np.vectorize(lambda r, i: round_permutation(seed, JUNK_ROUNDS, int(r),
                                                          self.junk_people)[i])(rounds, at)
    return self.pack_texts([[(*self.junk_text(seed, int(j)), -1) for j in row] for row in slots],
                           self.window)

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
    junk = round(batch_size * self.junk_share)
    if not junk:
      return self._bio_rows(seed, step * batch_size, batch_size, rows)
    if junk == batch_size:
      raise ValueError(f"task.junk_share: {self.junk_share} leaves no useful row in a batch of "
                       f"{batch_size}; allowed: <= {(batch_size - 1) / batch_size:.4f}")
    useful = batch_size - junk
    useful_rows = lambda part: self._bio_rows(seed, step * useful, useful, part)

    def junk_rows(part):
      start, stop = rows_lib.bounds(part, junk)
      return self.junk_rows(seed, step * junk + start, stop - start)

    return rows_lib.stack([useful_rows, junk_rows], [useful, junk], rows)


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
