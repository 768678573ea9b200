"""The arithmetic notebook runs top to bottom on a tiny checkpoint."""
import os

import nbformat
import pytest
from nbclient import NotebookClient

from experiments import train
from experiments.arithmetic import ArithmeticStudy
from experiments.configs.arithmetic import get_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_notebook_executes(tmp_path, monkeypatch):
  config = get_config("smoke,pos=abacus,format=reverse_operands+reverse")
  config.update(dict(num_steps=10, eval_every=10, checkpoint_every=10))
  train.train_and_evaluate(config, str(tmp_path / "run"), ArithmeticStudy(config),
                           print_fn=lambda *_: None)
  monkeypatch.setenv("ARITH_WORKDIR", str(tmp_path / "run"))
  monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  monkeypatch.setenv("MPLBACKEND", "Agg")
  with open(os.path.join(ROOT, "notebooks", "arithmetic_positions.ipynb")) as f:
    notebook = nbformat.read(f, as_version=4)
  NotebookClient(notebook, timeout=300, kernel_name="python3",
                 resources={"metadata": {"path": ROOT}}).execute()
  outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                    for o in c.outputs)
  assert "predicting" in outputs and "positions 'abacus'" in outputs
