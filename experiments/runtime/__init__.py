"""What every study's run shares: the training loop (train.py), the command line (entry.py),
checkpoints, the metrics log, sharding, multi-process start-up, preemption, host memory, and
reopening a finished run (restore.py)."""
