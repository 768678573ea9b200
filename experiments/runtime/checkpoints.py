"""Orbax checkpoints of the train state, and the guard that a workdir holds the same model.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a run killed
mid-save leaves the previous checkpoint intact and the half-written one is ignored on restart.
Every process of a multi-process run calls save and restore: Orbax writes collectively (each process
its own shards), so the workdir must be on storage all hosts share.
"""
from __future__ import annotations

import contextlib
import json
import os

import jax
import ml_collections
from absl import logging
import orbax.checkpoint as ocp

# Orbax logs each exception of its background threads before raising it in the caller's, where the
# train loop reports it in one line.
logging.get_absl_logger().addFilter(lambda record: "raised an exception" not in record.getMessage())

# Sections of the config that define what a checkpoint contains; the rest may change on resume.
IDENTITY_SECTIONS = ("model", "task")


class Checkpoints:
  def __init__(self, workdir: str, every: int, keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    # Every `every` steps, plus the saves the loop forces (end, preemption); Orbax's default policy
    # would also save the very first step of a fresh run.
    policy = ocp.checkpoint_managers.AnySavePolicy([
        ocp.checkpoint_managers.FixedIntervalPolicy(every),
        ocp.checkpoint_managers.PreemptionCheckpointingPolicy()])
    # The `keep` newest checkpoints stay; older ones are deleted (what `max_to_keep` did, which
    # Orbax deprecates in favour of a preservation policy).
    options = ocp.CheckpointManagerOptions(
        save_decision_policy=policy,
        preservation_policy=ocp.checkpoint_managers.LatestN(n=keep),
        create=True, cleanup_tmp_directories=True)
    if os.path.exists(self.directory) and not os.path.isdir(self.directory):
      raise ValueError(f"workdir: {self.directory} is a file, not a directory of checkpoints; "
                       "move it away and rerun")
    with _orbax_quiet():
      self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def restore(self, abstract_state, step: int | None = None):
    step = self.latest_step() if step is None else step
    try:
      with _orbax_quiet():
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # Orbax raises many types; the user needs one line.
      reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
      raise ValueError(f"workdir: checkpoint {step} in {self.directory} cannot be restored "
                       f"({reason}); move it away to restart from the previous one") from None

  def due(self, step: int) -> bool:
    """Whether `save(step, ...)` without force writes a checkpoint."""
    return self.manager.should_save(step)

  def save(self, step: int, state, force: bool = False) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


@contextlib.contextmanager
def _orbax_quiet():
  """Orbax logs an error for each unreadable file it meets; a bad checkpoint is reported once."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.FATAL)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


def check_workdir_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Record the config in the workdir, or fail in one line if it holds a different model or task."""
  path = os.path.join(workdir, "config.json")
  current = json.loads(config.to_json())
  if os.path.exists(path):
    stored = _read_config(path)
    for section in IDENTITY_SECTIONS:
      old, new = stored.get(section, {}), current.get(section, {})
      for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
          raise ValueError(f"{section}.{key}: workdir {workdir} holds a run with {old.get(key)!r}, "
                           f"this config asks {new.get(key)!r}; use a new workdir")
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(current, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _read_config(path: str) -> dict:
  """The config a workdir's run recorded; one line naming the file if it is damaged."""
  try:
    with open(path) as f:
      stored = json.load(f)
    if not isinstance(stored, dict) or not all(isinstance(stored.get(s, {}), dict)
                                               for s in IDENTITY_SECTIONS):
      raise ValueError("not a config")
  except ValueError as e:  # bad JSON or bytes that are no text
    raise ValueError(f"workdir: {path} is damaged ({e}); if this command started the run, delete "
                     "the file and rerun (it is written again), else use a new workdir") from None
  return stored
