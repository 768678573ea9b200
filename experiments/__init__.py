"""The studies, by name: each one's Study class, config file and entry module.

    runtime/     the training loop and what every run shares (entry point, checkpoints, logs, ...)
    lego/, arithmetic/, knowledge/, programs/   a package per study: python -m experiments.<name>
    configs/     a config file per study (`get_config(variant)`, `get_sweep(name)`)

Entry points, launch/, benchmarks/ and the tests find a study here. Everything is named by a string
and imported only when asked for, so importing this package imports no study (nor JAX).
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import os


@dataclasses.dataclass(frozen=True)
class StudySpec:
  name: str
  study: str    # "module:attribute", called with the config: the run's Study
  config: str   # the config module (get_config, get_sweep)
  entry: str    # what `python -m` runs to train it
  sweep_report: str | None = None  # "module:function(root, sweep, runs)", run after a sweep's runs

  @property
  def config_file(self) -> str:
    """The config module's file, found without running it."""
    return importlib.util.find_spec(self.config).origin

  def make_study(self, config):
    return _load(self.study)(config)

  def get_config(self, variant: str | None = None):
    return importlib.import_module(self.config).get_config(variant)

  def report_sweep(self, root: str, sweep: str, runs: dict[str, str]) -> None:
    """The study's own analysis over a sweep's runs ({label: workdir}), if it has one."""
    if self.sweep_report:
      _load(self.sweep_report)(root, sweep, runs)


STUDIES = {spec.name: spec for spec in (
    StudySpec("lego", "experiments.lego:LegoStudy", "experiments.configs.lego", "experiments.lego"),
    StudySpec("arithmetic", "experiments.arithmetic:ArithmeticStudy",
              "experiments.configs.arithmetic", "experiments.arithmetic"),
    StudySpec("knowledge", "experiments.knowledge:make_study", "experiments.configs.knowledge",
              "experiments.knowledge", sweep_report="experiments.knowledge.sweep_report:report"),
    StudySpec("manipulation", "experiments.knowledge.manipulation:ManipulationPretrain",
              "experiments.configs.manipulation", "experiments.knowledge.manipulation"),
    StudySpec("programs", "experiments.programs:ProgramsStudy", "experiments.configs.programs",
              "experiments.programs"),
)}


def study(name: str) -> StudySpec:
  if name not in STUDIES:
    raise ValueError(f"study: unknown {name!r}; allowed: {', '.join(STUDIES)}")
  return STUDIES[name]


def study_of_config(path: str) -> StudySpec:
  """The study whose config file `path` is, or whose name the file's `STUDY = "name"` gives (so a
  copy of a study's config file, wherever it lives, runs that study)."""
  for spec in STUDIES.values():
    if os.path.exists(path) and os.path.samefile(path, spec.config_file):
      return spec
  name = _declared_study(path)
  if name not in STUDIES:
    raise ValueError(f"--config: {path} names no study (STUDY = {name!r}); set STUDY in it to one "
                     f"of {', '.join(STUDIES)}, or name the study with --study")
  return STUDIES[name]


def _declared_study(path: str):
  """The value of a config file's module-level `STUDY = "..."`, read without running the file."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in tree.body:
    if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and any(isinstance(t, ast.Name) and t.id == "STUDY" for t in node.targets)):
      return node.value.value
  return None


def _load(target: str):
  module, _, attribute = target.partition(":")
  return getattr(importlib.import_module(module), attribute)
