"""Cloud TPU: the gcloud commands that create a TPU VM (or a queued resource), copy this code to every
worker, install it, and run one config on all workers at once (`--worker=all`). Printed by default
(a dry run); `--run` runs them in order.

    python -m launch.tpu --name=lego --zone=us-central2-b --accelerator=v4-32 \\
        --config=experiments/configs/lego.py:layers=12 --workdir=/mnt/shared/runs/lego
    python -m launch.tpu ... --queued --spot --run

Every worker runs the same command; `--distributed=on` lets JAX find the pod's other hosts, each
feeds its slice of the global batch, and Orbax checkpoints collectively, so --workdir must be storage
that every worker sees (e.g. a gcsfuse-mounted bucket).

The code needs Python >= 3.11 (setup.cfg), newer than Ubuntu 22.04's python3 (3.10) that the
default runtime (tpu-ubuntu2204-base) has, so each worker installs uv, uv installs CPython --python
(3.11 by default) and builds the virtualenv from it, whatever the image's own Python, and the project
goes in with its [tpu] extra (jax[tpu]: libtpu for the jax in setup.cfg's range).
"""
from __future__ import annotations

import shlex
import subprocess
import sys

from launch import sweep
from tasks.cli import Parser

ARCHIVE = "synthstudies.tar.gz"
CODE_DIR = "synthstudies"
UV_INSTALLER = "https://astral.sh/uv/install.sh"  # uv's standalone installer, into ~/.local/bin


def install_command(python: str) -> str:
  """One worker's install: unpack the code, a CPython `python` from uv, a venv, `.[tpu]` in it."""
  return (f"mkdir -p {CODE_DIR} && tar -xzf {ARCHIVE} -C {CODE_DIR} && cd {CODE_DIR} && "
          'export PATH="$HOME/.local/bin:$PATH" && '
          f"(command -v uv >/dev/null || curl -LsSf {UV_INSTALLER} | sh) && "
          f"uv python install {shlex.quote(python)} && rm -rf .venv && "
          f"uv venv --python {shlex.quote(python)} .venv && "
          "uv pip install --python .venv/bin/python -q -e '.[tpu]'")


def commands(args) -> list[list[str]]:
  """The steps, in order, each one command line (argv)."""
  where = [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])
  spot = ["--spot"] if args.spot else []
  if args.queued:
    create = ["gcloud", "compute", "tpus", "queued-resources", "create", args.name,
              f"--node-id={args.name}", f"--accelerator-type={args.accelerator}",
              f"--runtime-version={args.version}", *where, *spot]
    # a queued resource is granted later; the next steps need its VM, so wait for ACTIVE
    wait = ["bash", "-c", "until [ \"$(gcloud compute tpus queued-resources describe "
            f"{shlex.quote(args.name)} {shlex.join(where)} --format='value(state.state)')\" = "
            "ACTIVE ]; do sleep 30; done"]
    steps = [create, wait]
  else:
    steps = [["gcloud", "compute", "tpus", "tpu-vm", "create", args.name,
              f"--accelerator-type={args.accelerator}", f"--version={args.version}", *where,
              *spot]]
  on_all = lambda command: ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.name, *where,
                            "--worker=all", f"--command={command}"]
  config_file = args.config.partition(":")[0]
  train = [".venv/bin/python", "-m", args.entry or sweep.study_of(config_file, args.study).entry,
           f"--config={args.config}", f"--workdir={args.workdir}", "--distributed=on",
           *args.override]
  steps += [
      ["git", "archive", "--format=tar.gz", "-o", ARCHIVE, "HEAD"],
      ["gcloud", "compute", "tpus", "tpu-vm", "scp", ARCHIVE, f"{args.name}:{ARCHIVE}", *where,
       "--worker=all"],
      on_all(install_command(args.python)),
      on_all(f"cd {CODE_DIR} && {shlex.join(train)}"),
  ]
  if args.delete:
    kind = ["queued-resources"] if args.queued else ["tpu-vm"]
    steps.append(["gcloud", "compute", "tpus", *kind, "delete", args.name, *where, "--quiet",
                  *(["--force"] if args.queued else [])])
  return steps


def main(argv=None) -> int:
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--name", required=True, help="TPU VM (and queued resource) name")
  parser.add_argument("--zone", required=True)
  parser.add_argument("--accelerator", required=True, help="accelerator type, e.g. v5litepod-16")
  parser.add_argument("--version", default="tpu-ubuntu2204-base", help="TPU VM runtime version")
  parser.add_argument("--python", default="3.11", help="Python version of the workers' virtualenv "
                      "(uv installs it; setup.cfg's python_requires gives the range)")
  parser.add_argument("--project", default=None)
  parser.add_argument("--queued", action="store_true", help="create through a queued resource")
  parser.add_argument("--spot", action="store_true", help="spot capacity (preemptible)")
  parser.add_argument("--config", required=True, help="config file[:variant] to train")
  parser.add_argument("--workdir", required=True, help="run directory every worker can see")
  parser.add_argument("--study", default=None, help="the study, a name in experiments.STUDIES "
                      "(default: the one whose config file --config is)")
  parser.add_argument("--entry", default=None, help="entry-point module to run (default: the "
                      "study's)")
  parser.add_argument("--override", action="append", default=[],
                      help="extra flag for the training command, e.g. --override=--config.seed=1")
  parser.add_argument("--delete", action="store_true", help="delete the TPU after the run")
  parser.add_argument("--run", action="store_true", help="run the commands (default: print them)")
  args = parser.parse_args(argv)
  try:
    steps = commands(args)
  except ValueError as e:
    parser.exit(2, f"error: {e}\n")
  for step in steps:
    print(shlex.join(step), flush=True)
    if args.run and subprocess.call(step):
      return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
