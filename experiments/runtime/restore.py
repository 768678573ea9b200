"""Reopen a run from its workdir (for evaluation, probing, notebooks and result tables): its config,
its study and a model holding the parameters of its latest checkpoint.

    run = restore.load("runs/lego", "lego")
    probes = probing.probe(run.model, run.study.batch("test", 0, 8)["inputs"])
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Any

import ml_collections

import experiments
from experiments.runtime import checkpoints as ckpt_lib
from experiments.runtime import train


@dataclasses.dataclass
class Run:
  config: ml_collections.ConfigDict
  study: Any
  model: Any  # models.Transformer
  step: int
  params: Any  # the pure parameter tree `model` holds, as `train.build_trainer(...).model` takes it


def load(workdir: str, study: str, fill_defaults: bool = False, step: int | None = None) -> Run:
  """The run of study `study` (a name in experiments.STUDIES) in `workdir`, at its checkpoint of
  `step` (default: the latest; `steps` lists those kept). With `fill_defaults`,
  fields of the study's default config that the stored config lacks, because they were added after
  it ran, take their default values."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise ValueError(f"workdir: {workdir} holds no run (no config.json)")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  spec = experiments.study(study)
  if fill_defaults:
    _fill_missing(config, spec.get_config())
  study = spec.make_study(config)
  trainer = train.build_trainer(config, study)
  checkpoints = ckpt_lib.Checkpoints(workdir, every=config.checkpoint_every)
  try:
    kept = checkpoints.all_steps()
    if not kept:
      raise ValueError(f"workdir: {workdir} holds no checkpoint yet")
    step = kept[-1] if step is None else step
    if step not in kept:
      raise ValueError(f"step: {step}; allowed: the checkpoints kept in {workdir}, "
                       f"{', '.join(map(str, kept))}")
    state = checkpoints.restore(trainer.abstract_state, step)
  finally:
    checkpoints.close()
  return Run(config, study, trainer.model(state["params"]), step, state["params"])


def steps(workdir: str) -> list[int]:
  """The steps of the checkpoints kept in `workdir`, oldest first."""
  checkpoints = ckpt_lib.Checkpoints(workdir, every=1)
  try:
    return checkpoints.all_steps()
  finally:
    checkpoints.close()


def _fill_missing(config, defaults) -> None:
  for key, value in defaults.items():
    if key not in config:
      config[key] = copy.deepcopy(value)
    elif isinstance(value, ml_collections.ConfigDict) and isinstance(config[key],
                                                                    ml_collections.ConfigDict):
      _fill_missing(config[key], value)
