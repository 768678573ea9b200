"""The learning-to-execute study: a decoder reads a small C program and writes what it prints.

    python -m experiments.programs --config=experiments/configs/programs.py --workdir=runs/programs
    python -m experiments.programs --config=experiments/configs/programs.py:smoke --workdir=/tmp/p

study.py (the Study), plots.py (accuracy by bucket, and the figures of docs/results/programs.md).
"""
from experiments.programs.study import ProgramsStudy

__all__ = ["ProgramsStudy"]
