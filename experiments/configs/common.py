"""Parsing of config-file variant strings: `file.py:smoke,layers=4,tied=True`."""
from __future__ import annotations

import ast


def parse_variant(arg: str | None, presets: tuple[str, ...], knobs: dict,
                  preset_knobs: dict[str, dict] | None = None) -> tuple[set[str], dict]:
  """Splits `arg` into named presets and `key=value` knob overrides (values as Python literals).

  A chosen preset's entry in `preset_knobs` replaces those knobs' defaults (smoke: a tiny model);
  knobs given in `arg` override both, so `smoke,attention=lego` is a tiny LEGO-attention model.
  Unknown presets or knobs, or a number or flag knob given another kind of value, fail in one line
  naming the allowed ones.
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
    _check_type(key, given[key], knobs[key])
  values = dict(knobs)
  for preset in presets:
    if preset in chosen:
      values.update((preset_knobs or {}).get(preset, {}))
  return chosen, {**values, **given}


def _check_type(key: str, value, default) -> None:
  """A number or flag knob takes a value of its default's kind (an int where a float goes), so a
  typo fails here naming the knob, not deep in ml_collections' type check of the field it sets."""
  if isinstance(default, bool):
    ok, allowed = isinstance(value, bool), "True or False"
  elif isinstance(default, int):
    ok, allowed = isinstance(value, int) and not isinstance(value, bool), "an integer"
  elif isinstance(default, float):
    ok, allowed = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
  else:
    return
  if not ok:
    raise ValueError(f"config variant: {key}={value!r}; allowed: {allowed}")
