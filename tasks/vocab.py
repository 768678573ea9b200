"""A fixed token vocabulary: tokens to ids and back."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

PAD, CLS, SEP = "[PAD]", "[CLS]", "[SEP]"


class Vocab:
  """An ordered list of distinct tokens; id 0 is always [PAD]."""

  def __init__(self, tokens: Iterable[str]):
    self.tokens: tuple[str, ...] = (PAD,) + tuple(t for t in dict.fromkeys(tokens) if t != PAD)
    self._ids = {t: i for i, t in enumerate(self.tokens)}

  def __len__(self) -> int:
    return len(self.tokens)

  def __contains__(self, token: str) -> bool:
    return token in self._ids

  def id(self, token: str) -> int:
    try:
      return self._ids[token]
    except KeyError:
      raise KeyError(f"token {token!r} is not in the vocabulary") from None

  def encode(self, tokens: Sequence[str]) -> np.ndarray:
    return np.array([self.id(t) for t in tokens], dtype=np.int32)

  def decode(self, ids: Iterable[int], skip_pad: bool = True) -> str:
    """Ids back to text, tokens separated by single spaces."""
    return " ".join(self.tokens[i] for i in ids if not (skip_pad and i == 0))
