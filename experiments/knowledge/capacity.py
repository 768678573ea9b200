"""The knowledge-capacity meter: bits of knowledge a model provably stores ("Physics of LMs" 3.3).

For bioS(N), with p1 the model's summed cross-entropy (nats) over a person's name tokens (and the
words before the name) and p2 over
that person's attribute-value tokens, averaged over people:

    bits >= N log2((N0 - N) / e^p1) + N log2(S0 / e^p2)

N0 = 400 * 400 * 1000 possible names; S0 = 2 * (12 * 28 * 200) * 200 * 300 * 100 * 263 attribute
combinations (the 2 is the gender, counted only for people whose text reveals it). The first term is
the knowledge of which N names exist: a model cannot know which person comes next, so its best
p1 is ln N (the maximum below). The second is the knowledge of each person's attributes.

For bioD(N, K, C, D, L, T) the value term is N log2(D^(K C) / e^p2). The pools themselves (K D
strings of L tokens) are knowledge too; that term is left out, so the figure stays a lower bound
(short by at most K D L log2 T bits, small when N C >> D L).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tasks.biography import KIND_DOMAIN, KIND_GENDER, KIND_NAME, NUM_NAMES

LN2 = np.log(2.0)


def bits_stored(name_loss, value_loss, value_space_bits, names: int = NUM_NAMES) -> dict:
  """The bound from per-person summed losses (nats, arrays [N]) and log2 of each value space."""
  name_loss, value_loss = np.asarray(name_loss, float), np.asarray(value_loss, float)
  n = len(name_loss)
  name_bits = n * np.log2(names - n) - name_loss.sum() / LN2
  value_bits = np.broadcast_to(value_space_bits, (n,)).sum() - value_loss.sum() / LN2
  return {"bits": float(name_bits + value_bits), "name_bits": float(name_bits),
          "value_bits": float(value_bits), "p1": float(name_loss.mean()),
          "p2": float(value_loss.mean())}


def max_bits(people: int, value_space_bits, names: int = NUM_NAMES) -> float:
  """The bound for a model that knows everything learnable: p1 = ln N, p2 = 0."""
  return bits_stored(np.full(people, np.log(people)), np.zeros(people), value_space_bits,
                     names)["bits"]


def person_losses(losses, person, kind, num_people: int):
  """Per-person sums of token losses [B, T] over the name and over value tokens; gender revealed.

  Rows hold one person each (`person_rows`). The name's share is every token up to the end of the
  first mention of the name: words before it ("In fact , ...") are drawn per biography and
  identify the person too, so leaving them out would credit the name term with their information.
  """
  losses, person, kind = np.asarray(losses, float), np.asarray(person), np.asarray(kind)
  sums = lambda mask: np.bincount(person[mask], losses[mask], minlength=num_people)
  up_to_name = np.flip(np.maximum.accumulate(np.flip(kind == KIND_NAME, 1), axis=1), 1)
  name = sums(up_to_name & (person >= 0) & (kind != KIND_DOMAIN))  # a domain token is no one's
  value = sums((kind >= KIND_GENDER) & (person >= 0))  # gender word and attribute values
  gender = np.bincount(person[(kind == KIND_GENDER) & (person >= 0)], minlength=num_people) > 0
  return name, value, gender


def measure(token_losses: Callable[[dict], np.ndarray], task, seed: int, num_params: int,
            batch_size: int = 256, bio: int = 0) -> dict:
  """Capacity of a model over every person of `task` (bioS or bioD), from biography `bio` of each.

  `token_losses(batch)` returns the model's cross-entropy (nats) of each target token, [B, T].
  """
  name = np.zeros(task.people)
  value = np.zeros(task.people)
  gender = np.zeros(task.people, bool)
  for start in range(0, task.people, batch_size):
    ids = np.arange(start, min(start + batch_size, task.people))
    rows = task.person_rows(seed, ids, bio)
    n, v, g = person_losses(token_losses(rows), rows["person"], rows["kind"], task.people)
    name, value, gender = name + n, value + v, gender | g
  space = task.value_space_bits(gender)
  result = bits_stored(name, value, space)
  return {**result, "max_bits": max_bits(task.people, space), "params": num_params,
          "bits_per_param": result["bits"] / num_params}
