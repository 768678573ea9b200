"""The command line every study shares: --config (an ml_collections file[:variant]) and --workdir."""
from __future__ import annotations

import importlib.util
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

import experiments
from experiments.runtime import distributed, host_memory, sharding, train


def run(name: str, train_fn=None) -> None:
  """Parses flags, trains study `name` (experiments.STUDIES) in the workdir, prints its report.

  `train_fn` replaces `train.train_and_evaluate` (same signature), e.g. to add a pretraining stage;
  it returns {"metrics": what the study's report reads, "preempted": bool, ...}.
  """
  spec = experiments.study(name)
  config_flags.DEFINE_config_file("config", spec.config_file,
                                  "Config file, optionally file.py:variant.", lock_config=True)
  flags.DEFINE_string("workdir", os.path.join("runs", name),
                      "Directory for checkpoints, metrics and plots; rerun to resume.")
  flags.DEFINE_bool("compile_only", False,
                    "Compile the train step for config.mesh and print its per-device memory "
                    "estimate, without training; a mesh without -1 is simulated on CPU devices.")
  flags.DEFINE_enum("distributed", "auto", distributed.MODES,
                    "Multi-process: auto (a SLURM step with several tasks), on (any cluster JAX "
                    "detects, e.g. a TPU pod), off.")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for runs started by hand.")
  flags.DEFINE_integer("num_processes", None, "Processes in a run started by hand.")
  flags.DEFINE_integer("process_id", None, "This process's index in a run started by hand.")

  def main(argv):
    if len(argv) > 1:
      fail(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file it writes at INFO
    host_memory.keep_freed_memory()  # before JAX starts its threads
    config, workdir, FLAGS = flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS
    try:
      if FLAGS.compile_only:
        sharding.simulate_devices(config.mesh)
      distributed.initialize(FLAGS.distributed, FLAGS.coordinator_address, FLAGS.num_processes,
                             FLAGS.process_id)
      study = spec.make_study(config)  # task parameters are checked here
    except ValueError as e:
      fail(e)
    try:
      if FLAGS.compile_only:
        train.compile_only(config, study)
        return
      result = (train_fn or train.train_and_evaluate)(config, workdir, study)
    except train.SetupError as e:
      fail(e)
    except train.RunError as e:
      fail(e, status=1)
    if not result.get("preempted"):  # a preempted run has said where it stopped
      study.report(workdir, result["metrics"])

  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
      fail(_explain_flag_error(argv, e, spec.config_file))

  app.run(main, flags_parser=parse)


def fail(message, status: int = 2):
  """One line on stderr and no traceback: status 2 for a bad value (as argparse), 1 for a fault."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(status)


def _explain_flag_error(argv, error: Exception, default_config_file: str) -> str:
  """One line: the config file's own message, or the unknown --config.FIELD and its siblings."""
  text = str(error).strip()
  if "Error whilst parsing config file" in text:
    return text.splitlines()[-1]
  config_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")),
                    default_config_file)
  try:
    config = load_config(config_arg)
  except Exception as load_error:  # the file itself is broken: say so
    return f"--config={config_arg}: {load_error}"
  for arg in argv:
    if arg.startswith("--config."):
      path = arg[len("--config."):].split("=", 1)[0]
      node = config
      for part in path.split("."):
        if not hasattr(node, "keys") or part not in node:
          allowed = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "(not a section)"
          return f"--config.{path}: unknown field {part!r}; allowed: {allowed}"
        node = node[part]
  return text.splitlines()[0]


def load_config(config_arg: str):
  """Loads `file.py[:variant]` the way the --config flag does (for notebooks and tools)."""
  path, _, variant = config_arg.partition(":")
  spec = importlib.util.spec_from_file_location("_config_module", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant or None)
