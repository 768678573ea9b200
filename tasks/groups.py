"""Finite groups acting on a finite set of values, as used by LEGO clauses `x = g y`.

`table[g, v]` is the value obtained by applying operator g to value v. For the regular action of a
group on itself (Z_k, S3) the table is the group's multiplication table.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np


@dataclasses.dataclass(frozen=True)
class Group:
  name: str
  operators: tuple[str, ...]  # token naming each group element when it acts (`val`, `not`, `+1`)
  values: tuple[str, ...]     # token naming each value it acts on (`0`, `1`)
  table: np.ndarray           # [num_operators, num_values] int: table[g, v] = g . v

  def __post_init__(self):
    table = np.asarray(self.table)
    if table.shape != (len(self.operators), len(self.values)):
      raise ValueError(f"group {self.name}: table shape {table.shape} does not match "
                       f"{len(self.operators)} operators x {len(self.values)} values")
    if any(sorted(row) != list(range(len(self.values))) for row in table.tolist()):
      raise ValueError(f"group {self.name}: every operator must permute the values")
    if not any((row == np.arange(len(self.values))).all() for row in table):
      raise ValueError(f"group {self.name}: no identity operator")
    if set(self.operators) & set(self.values):
      raise ValueError(f"group {self.name}: operator and value tokens must differ")

  @property
  def identity(self) -> int:
    return int(next(g for g, row in enumerate(self.table) if (row == np.arange(len(row))).all()))

  @property
  def num_values(self) -> int:
    return len(self.values)


def z2() -> Group:
  """The reference LEGO group: identity `val` and flip `not` acting on {0, 1}."""
  return Group("z2", ("val", "not"), ("0", "1"), np.array([[0, 1], [1, 0]]))


def cyclic(k: int) -> Group:
  """Z_k acting on itself by addition: `x = +2 y` means x = y + 2 mod k."""
  table = (np.arange(k)[:, None] + np.arange(k)[None, :]) % k
  return Group(f"z{k}", tuple(f"+{g}" for g in range(k)), tuple(str(v) for v in range(k)), table)


def s3() -> Group:
  """The symmetric group S3 (non-abelian) acting on itself by composition (g . v = g o v).

  Values are written as permutations of 012 (`120` maps 0->1, 1->2, 2->0); operators as words in a
  rotation r and a reflection s.
  """
  perms = [(0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)]
  index = {p: i for i, p in enumerate(perms)}
  compose = lambda g, v: tuple(g[v[i]] for i in range(3))  # (g o v)(i) = g(v(i))
  table = np.array([[index[compose(g, v)] for v in perms] for g in perms])
  return Group("s3", ("e", "r", "rr", "s", "sr", "srr"), tuple("".join(map(str, p)) for p in perms),
               table)


GROUP_NAMES = "z2, z<k> for k in 2..10, s3"


def get_group(name: str) -> Group:
  if name in ("z2", "s3"):
    return z2() if name == "z2" else s3()
  match = re.fullmatch(r"z(\d+)", name)
  if match and 2 < int(match.group(1)) <= 10:
    return cyclic(int(match.group(1)))
  raise ValueError(f"task.group: unknown group {name!r}; allowed: {GROUP_NAMES}")

