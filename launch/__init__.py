"""Launchers: local sweeps (sweep.py), SLURM job arrays (slurm.py), Cloud TPU VMs and pods (tpu.py)."""
