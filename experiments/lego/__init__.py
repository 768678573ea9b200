"""The LEGO study: an encoder classifies the value of every variable of a shuffled chain.

    python -m experiments.lego --config=experiments/configs/lego.py --workdir=runs/lego
    python -m experiments.lego --config=experiments/configs/lego.py:smoke --workdir=/tmp/lego
    python -m experiments.lego.mimic --config=experiments/configs/lego.py:mimic --workdir=runs/mimic

study.py (the Study), plots.py (a run's plots), mimic.py (the mimicking pretraining stage),
evaluation.py (finished runs on held-out chains and trees, head scores, the model comparison),
curves.py (the comparison from the runs' logged evaluations), flow.py (the information-flow map),
gradient_precision.py (float32 against float64 gradients), runs.sh (docs/results/lego.md's runs).
"""
from experiments.lego.study import LegoStudy

__all__ = ["LegoStudy"]
