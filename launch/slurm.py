"""SLURM: a sweep as an sbatch job array (one array task per run), written and optionally submitted.

    python -m launch.slurm --config=experiments/configs/lego.py:depth --workdir=runs/depth \\
        --partition=gpu --gpus_per_node=8 --submit                  # each run: 8 processes, 1 GPU each
    python -m launch.slurm ... --nodes=4 --gpus_per_node=8 --task_per=node   # one process per node

Each array task `srun`s its run's own command line (launch/sweep.py) on --nodes nodes, one process per
GPU or per node; JAX joins them into one multi-host run from SLURM's environment
(experiments/runtime/distributed.py: `--distributed=auto`; SLURM_LOCALID picks each process's GPU).
SIGTERM at a time limit or preemption checkpoints the run and --requeue restarts it where it stopped.
Runs already finished are left out of the array; a second job, after the array, writes the results
table and the study's own sweep report.

GPU nodes need jax's CUDA wheels in the interpreter --python names (by default this one): on storage
the nodes share, `python3 -m venv .venv && .venv/bin/pip install -e '.[cuda]'` (setup.cfg's [cuda]
extra: jax[cuda12] within the jax range, CUDA and cuDNN from pip wheels, so a node needs only the
NVIDIA driver), then `--python=.venv/bin/python`. A GPU job first checks that this jax sees the
node's GPUs, and stops with that install command if not, rather than train on the CPU.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys

from launch import sweep
from tasks.cli import Parser, at_least


@dataclasses.dataclass(frozen=True)
class Resources:
  nodes: int = 1
  gpus_per_node: int = 0      # 0: CPU only
  task_per: str = "gpu"       # "gpu": one process per GPU; "node": one process sees all its GPUs
  cpus_per_task: int = 1
  partition: str | None = None
  time: str | None = None     # e.g. 04:00:00
  max_parallel: int | None = None  # array tasks running at once

  def tasks_per_node(self) -> int:
    return self.gpus_per_node if self.task_per == "gpu" and self.gpus_per_node else 1


def _header(name: str, log: str, res: Resources) -> list[str]:
  lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --output={log}",
           f"#SBATCH --nodes={res.nodes}", f"#SBATCH --ntasks-per-node={res.tasks_per_node()}",
           f"#SBATCH --cpus-per-task={res.cpus_per_task}"]
  if res.gpus_per_node:
    lines.append(f"#SBATCH --gres=gpu:{res.gpus_per_node}")
  if res.partition:
    lines.append(f"#SBATCH --partition={res.partition}")
  if res.time:
    lines.append(f"#SBATCH --time={res.time}")
  return lines


def array_script(runs: list[sweep.Run], indices: list[int], res: Resources, logdir: str,
                 repo: str, python: str) -> str:
  array = ",".join(map(str, indices)) + (f"%{res.max_parallel}" if res.max_parallel else "")
  lines = _header("sweep", os.path.join(logdir, "%A_%a.out"), res)
  lines += [f"#SBATCH --array={array}", "#SBATCH --requeue", "", "set -euo pipefail",
            f"cd {shlex.quote(repo)}"]
  if res.gpus_per_node and res.task_per == "node":
    # JAX would give each process only GPU SLURM_LOCALID; a process per node drives all of them.
    ids = ",".join(map(str, range(res.gpus_per_node)))
    lines.append(f"export JAX_LOCAL_DEVICE_IDS={ids}")
  if res.gpus_per_node:
    lines.append(gpu_check(python))
  lines += ["", 'case "$SLURM_ARRAY_TASK_ID" in']
  for i in indices:
    lines.append(f"  {i}) srun {shlex.join(runs[i].command(python))} ;;")
  lines += ["esac", ""]
  return "\n".join(lines)


def gpu_check(python: str) -> str:
  """A script line: exit with the install command unless `python`'s jax has a GPU backend."""
  return (f"{shlex.quote(python)} -c 'import jax; jax.devices(\"gpu\")' >/dev/null 2>&1 || "
          f"{{ echo \"error: jax sees no GPU in\" {shlex.quote(python)} \"- install this code with "
          f"its CUDA extra: pip install -e '.[cuda]'\" >&2; exit 1; }}")


def collect_script(config_arg: str, workdir: str, metric: str | None, study: str | None,
                   logdir: str, repo: str, python: str) -> str:
  """The job after the array: launch.sweep's tables and the study's own sweep report."""
  command = [python, "-m", "launch.sweep", f"--config={config_arg}", f"--workdir={workdir}",
             "--collect_only", *([f"--metric={metric}"] if metric else []),
             *([f"--study={study}"] if study else [])]
  lines = _header("sweep-results", os.path.join(logdir, "%j-results.out"), Resources())
  lines += ["", "set -euo pipefail", f"cd {shlex.quote(repo)}", shlex.join(command), ""]
  return "\n".join(lines)


def write(config_arg: str, workdir: str, res: Resources, metric: str | None = None,
          study: str | None = None, python: str = sys.executable, entry: str | None = None) -> dict:
  """Writes <workdir>/slurm/{sweep,collect}.sbatch; returns their paths and the array's indices."""
  workdir = os.path.abspath(workdir)
  runs = sweep.expand(config_arg, workdir, study, entry)
  indices = [i for i, run in enumerate(runs) if not run.finished()]
  logdir = os.path.join(workdir, "slurm")
  os.makedirs(logdir, exist_ok=True)  # sbatch does not create the directory of --output
  repo = os.getcwd()
  paths = {"array": os.path.join(logdir, "sweep.sbatch"),
           "collect": os.path.join(logdir, "collect.sbatch")}
  with open(paths["array"], "w") as f:
    f.write(array_script(runs, indices, res, logdir, repo, python))
  with open(paths["collect"], "w") as f:
    f.write(collect_script(config_arg, workdir, metric, study, logdir, repo, python))
  return {**paths, "indices": indices}


def submit(written: dict) -> list[str]:
  """sbatch the array, then the results job after it; returns their job ids."""
  ids = []
  if written["indices"]:
    ids.append(_sbatch(written["array"]))
  after = [f"--dependency=afterany:{ids[0]}"] if ids else []
  ids.append(_sbatch(written["collect"], *after))
  return ids


def _sbatch(path: str, *flags: str) -> str:
  out = subprocess.run(["sbatch", "--parsable", *flags, path], capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(f"sbatch {path}: {out.stderr.strip() or out.stdout.strip()}")
  return out.stdout.strip().split(";")[0]


def main(argv=None) -> int:
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True, help="config file and sweep name, file.py:SWEEP")
  parser.add_argument("--workdir", required=True, help="one subdirectory per run, and the tables")
  parser.add_argument("--metric", default=None, help="metric for the results table and plot")
  parser.add_argument("--study", default=None, help="the study, a name in experiments.STUDIES "
                      "(default: the one whose config file --config is)")
  parser.add_argument("--entry", default=None, help="entry-point module to run (default: the "
                      "study's)")
  parser.add_argument("--nodes", type=at_least(1), default=1)
  parser.add_argument("--gpus_per_node", type=at_least(0), default=0)
  parser.add_argument("--task_per", choices=("gpu", "node"), default="gpu")
  parser.add_argument("--cpus_per_task", type=at_least(1), default=1)
  parser.add_argument("--partition", default=None)
  parser.add_argument("--time", default=None, help="time limit per run, e.g. 04:00:00")
  parser.add_argument("--max_parallel", type=at_least(1), default=None, help="array tasks at once")
  parser.add_argument("--python", default=sys.executable, help="interpreter on the compute nodes")
  parser.add_argument("--submit", action="store_true", help="sbatch the scripts (else only write)")
  args = parser.parse_args(argv)
  res = Resources(nodes=args.nodes, gpus_per_node=args.gpus_per_node, task_per=args.task_per,
                  cpus_per_task=args.cpus_per_task, partition=args.partition, time=args.time,
                  max_parallel=args.max_parallel)
  try:
    written = write(args.config, args.workdir, res, args.metric, args.study, args.python,
                    args.entry)
  except (ValueError, OSError) as e:
    parser.exit(2, f"error: {e}\n")
  print(f"wrote {written['array']} ({len(written['indices'])} runs) and {written['collect']}")
  if args.submit:
    try:
      ids = submit(written)
    except (RuntimeError, FileNotFoundError) as e:
      parser.exit(1, f"error: {e}\n")
    print("submitted jobs " + " ".join(ids))
  return 0


if __name__ == "__main__":
  sys.exit(main())
