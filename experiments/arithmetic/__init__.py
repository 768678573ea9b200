"""The positional arithmetic study: a decoder learns digit-level arithmetic, and is scored on
operand lengths beyond those trained on.

    python -m experiments.arithmetic --config=experiments/configs/arithmetic.py --workdir=runs/add
    python -m experiments.arithmetic --config=experiments/configs/arithmetic.py:smoke --workdir=/tmp/a

study.py (the Study and its accuracy grid), plots.py (the grid's heatmap, and the summary and
figures of docs/results/arithmetic.md from the runs of the config's `figures` sweep), tables.py (that
page's tables, rendered from the summary).
"""
from experiments.arithmetic.study import ArithmeticStudy

__all__ = ["ArithmeticStudy"]
