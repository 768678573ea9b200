"""The results pages: every table equals its rendering from the committed summaries, the check fails
when a summary's number changes, and every command a page gives names a module that exists, a
config (with its variant and every --config.FIELD) that builds, and a sweep that expands."""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shlex
import shutil

import pytest

import experiments
from experiments import pages
from experiments.runtime import entry
from launch import sweep
from tests.paths import ROOT

PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "results", "*.md")))
COMMAND = re.compile(r"python -m ([\w.]+)([^`\n]*)")


def _commands():
  """(page, module, arguments) of every `python -m ...` on the pages; a code block's lines ending
  in a backslash continue the command."""
  found = []
  for page in PAGES:
    with open(page) as f:
      text = f.read().replace("\\\n", " ")
    for match in COMMAND.finditer(text):
      words = shlex.split(match.group(2).split("#")[0], posix=True)
      found.append((os.path.basename(page), match.group(1), words))
  return found


def test_every_table_equals_its_rendering():
  assert pages.stale_tables() == []


def test_the_check_fails_when_a_summary_number_changes(tmp_path):
  copy = tmp_path / "results"
  shutil.copytree(os.path.join(ROOT, "docs", "results"), copy)
  summaries = sorted(glob.glob(str(copy / "data" / "*.json")))
  assert summaries, "docs/results/data/ holds no summary"
  assert pages.main(["--check", "--pages", str(copy)]) == 0
  changed = False
  for path in summaries:  # the first number of a summary that some table shows
    with open(path) as f:
      original = f.read()
    for number in re.finditer(r"(?<=: )-?\d+\.\d+", original):
      text = original[:number.start()] + "12345.678" + original[number.end():]
      with open(path, "w") as f:
        f.write(text)
      if pages.stale_tables(str(copy)):
        changed = True
        break
      with open(path, "w") as f:
        f.write(original)
    if changed:
      break
  assert changed, "no summary number reaches a table"
  assert pages.main(["--check", "--pages", str(copy)]) == 1


def _config_of(words):
  """The config the command's --config and --config.FIELD=VALUE flags build (or None)."""
  config_arg = next((w.split("=", 1)[1] for w in words if w.startswith("--config=")), None)
  if config_arg is None:
    return None, None
  config = entry.load_config(os.path.join(ROOT, config_arg))
  for word in words:
    if word.startswith("--config."):
      field, _, value = word[len("--config."):].partition("=")
      sweep.set_field(config, field, _literal(value))
  return config_arg, config


def _literal(value: str):
  try:
    return json.loads(value)
  except ValueError:
    return value


@pytest.mark.parametrize("page,module,words", _commands(),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_on_a_page_builds(page, module, words):
  assert importlib.util.find_spec(module) is not None, f"{page}: no module {module}"
  if module in ("launch.sweep", "launch.slurm"):
    config_arg = next(w.split("=", 1)[1] for w in words if w.startswith("--config="))
    study = next((w.split("=", 1)[1] for w in words if w.startswith("--study=")), None)
    assert sweep.expand(os.path.join(ROOT, config_arg), "/tmp/unused", study=study)
    return
  config_arg, config = _config_of(words)
  if config is not None:
    spec = experiments.study_of_config(os.path.join(ROOT, config_arg.partition(":")[0]))
    spec.make_study(config)
