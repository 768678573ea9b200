"""The knowledge study ("Physics of LMs" 3.1 / 3.3): a GPT-2-style decoder learns bioS (or bioD)
biographies; its stored knowledge is measured in bits, probed, and extracted by QA.

    python -m experiments.knowledge --config=experiments/configs/knowledge.py --workdir=runs/k
    python -m experiments.knowledge --config=experiments/configs/knowledge.py:smoke --workdir=/tmp/k
    python -m launch.sweep --config=experiments/configs/knowledge.py:capacity100 --workdir=runs/c100

study.py (the Studies and the report), stages.py (pretraining, capacity, probes, fine-tuning, QA),
capacity.py (the capacity meter), quantize.py (int8 / int4 weights), probes.py (P-probing),
plots.py, sweep_report.py (a sweep's summary.json and capacity plots, after launch.sweep's runs).
"""
from experiments.knowledge.study import BioDStudy, KnowledgeStudy, make_study

__all__ = ["BioDStudy", "KnowledgeStudy", "make_study"]
