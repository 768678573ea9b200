"""Parsing of config-file variant strings: `file.py:smoke,layers=4,tied=True`."""
from __future__ import annotations

import ast


def parse_variant(arg: str | None, presets: tuple[str, ...], knobs: dict,
                  preset_knobs: dict[str, dict] | None = None) -> tuple[set[str], dict]:
  """Splits `arg` into named presets and `key=value` knob overrides (values as Python literals).

  A chosen preset's entry in `preset_knobs` replaces those knobs' defaults (smoke: a tiny model);
  knobs given in `arg` override both, so `smoke,attention=lego` is a tiny LEGO-attention model.
  Unknown presets or knobs fail in one line naming the allowed ones.
  """
  chosen, given = set(), {}
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
      given[key] = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
      given[key] = raw.strip()
  values = dict(knobs)
  for preset in presets:
    if preset in chosen:
      values.update((preset_knobs or {}).get(preset, {}))
  return chosen, {**values, **given}
