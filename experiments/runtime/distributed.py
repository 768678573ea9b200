"""Joining a multi-process run, before JAX touches any device.

`jax.distributed.initialize` connects the processes (one per host, or one per GPU) so their devices
form one global mesh. Explicit flags win; otherwise a SLURM step with several tasks is detected from
its environment; `--distributed=on` lets JAX detect any cluster it knows (Cloud TPU pods, Open MPI,
Kubernetes, SLURM) and `off` keeps a run single-process whatever the environment says.
"""
from __future__ import annotations

import os

import jax

MODES = ("auto", "on", "off")


def slurm_tasks() -> int:
  """Processes of the SLURM step this process belongs to (1 outside an srun step)."""
  if "SLURM_STEP_NODELIST" not in os.environ:
    return 1
  return int(os.environ.get("SLURM_NTASKS", "1"))


def initialize(mode: str = "auto", coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None) -> bool:
  """Initializes jax.distributed when asked or detected; returns whether it did."""
  if mode not in MODES:
    raise ValueError(f"--distributed: unknown mode {mode!r}; allowed: {', '.join(MODES)}")
  explicit = (coordinator_address, num_processes, process_id)
  if any(v is not None for v in explicit):
    if None in explicit or mode == "off":
      raise ValueError("--coordinator_address, --num_processes and --process_id go together "
                       "(and not with --distributed=off)")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
    return True
  if mode == "on" or (mode == "auto" and slurm_tasks() > 1):
    jax.distributed.initialize()
    return True
  return False
