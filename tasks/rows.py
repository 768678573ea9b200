"""Any rows of a batch, drawn without drawing the rest.

A multi-host run feeds each process only its own rows of the global batch, so every generator is a
function of (seed, split, step, rows): `batch(..., rows=slice(a, b))` equals `batch(...)[a:b]`.
Generators whose rows are indexed streams (biographies, QA pairs) just index them. Generators that
draw at random do it in blocks of BLOCK_ROWS rows, each from its own random stream, and a process
draws only the blocks that hold its rows.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

BLOCK_ROWS = 8
Batch = dict[str, np.ndarray]


def bounds(rows: slice | None, batch_size: int) -> tuple[int, int]:
  """[start, stop) of `rows` (None: all) in a batch of `batch_size`."""
  if rows is None:
    return 0, batch_size
  start, stop, stride = rows.indices(batch_size)
  if stride != 1 or stop <= start:
    raise ValueError(f"rows: {rows}; allowed: a non-empty contiguous slice of {batch_size} rows")
  return start, stop


def blocks(batch_size: int, rows: slice | None = None) -> Iterator[tuple[int, int, int]]:
  """(block, first row, row count) of each block holding some of `rows`."""
  start, stop = bounds(rows, batch_size)
  for block in range(start // BLOCK_ROWS, -(-stop // BLOCK_ROWS)):
    first = block * BLOCK_ROWS
    yield block, first, min(BLOCK_ROWS, batch_size - first)


def assemble(draw_block: Callable[[int, int, int], Batch], batch_size: int,
             rows: slice | None = None) -> Batch:
  """Rows `rows` of a batch whose block b is draw_block(b, first row, row count)."""
  start, stop = bounds(rows, batch_size)
  parts = [draw_block(*block) for block in blocks(batch_size, rows)]
  offset = start // BLOCK_ROWS * BLOCK_ROWS
  return {k: np.concatenate([p[k] for p in parts])[start - offset:stop - offset] for k in parts[0]}


def split(rows: slice | None, sizes: list[int]) -> list[slice | None]:
  """Where `rows` of a batch stacked from parts of `sizes` rows fall in each part (None: not)."""
  start, stop = bounds(rows, sum(sizes))
  out, first = [], 0
  for size in sizes:
    lo, hi = max(start, first) - first, min(stop, first + size) - first
    out.append(slice(lo, hi) if lo < hi else None)
    first += size
  return out


def stack(parts: list[Callable[[slice], Batch]], sizes: list[int], rows: slice | None) -> Batch:
  """Rows `rows` of the batch stacking part i (sizes[i] rows, drawn by parts[i](its rows))."""
  drawn = [draw(r) for draw, r in zip(parts, split(rows, sizes)) if r is not None]
  return {k: np.concatenate([d[k] for d in drawn]) for k in drawn[0]}
