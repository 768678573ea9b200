"""Training, evaluation and the per-study entry points (`python -m experiments.lego`)."""
