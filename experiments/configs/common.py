"""Parsing of config-file variant strings: `file.py:smoke,layers=4,tied=True`."""
from __future__ import annotations

import ast


def parse_variant(arg: str | None, presets: tuple[str, ...], knobs: dict) -> tuple[set[str], dict]:
  """Splits `arg` into named presets and `key=value` knob overrides (values as Python literals).

  Unknown presets or knobs fail in one line naming the allowed ones.
  """
  chosen, values = set(), dict(knobs)
  for part in filter(None, (arg or "").split(",")):
    key, eq, raw = part.partition("=")
    key = key.strip()
    if not eq:
      if key not in presets:
        raise ValueError(f"config variant: unknown preset {key!r}; allowed: {', '.join(presets)} "
                         f"or key=value with key in {', '.join(knobs)}")
      chosen.add(key)
      continue
    if key not in knobs:
      raise ValueError(f"config variant: unknown key {key!r}; allowed: {', '.join(knobs)}")
    try:
      values[key] = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
      values[key] = raw.strip()
  return chosen, values
