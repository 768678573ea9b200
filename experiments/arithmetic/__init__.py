"""The positional arithmetic study: a decoder learns digit-level arithmetic, and is scored on
operand lengths beyond those trained on.

    python -m experiments.arithmetic --config=experiments/configs/arithmetic.py --workdir=runs/add
    python -m experiments.arithmetic --config=experiments/configs/arithmetic.py:smoke --workdir=/tmp/a

study.py (the Study and its accuracy grid), plots.py (the grid's heatmap and the figures of
docs/results/arithmetic.md), runs.sh (that page's runs).
"""
from experiments.arithmetic.study import ArithmeticStudy

__all__ = ["ArithmeticStudy"]
