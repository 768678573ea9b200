"""Every notebook in notebooks/ runs top to bottom (nbclient), each on a tiny checkpoint.

A notebook reads the workdir of the run it shows from an environment variable; CHECKPOINTS says, per
notebook, how to make a tiny run for it and which variables to set. A notebook not listed runs as it
is, so it must train whatever it needs itself, in well under a minute.
"""
import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

import experiments
from experiments.runtime import train
from tests.paths import ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
quiet = lambda *_: None


def _train(study: str, variant: str, workdir: str, **fields) -> None:
  spec = experiments.study(study)
  config = spec.get_config(variant)
  config.update(fields)
  train.train_and_evaluate(config, workdir, spec.make_study(config), print_fn=quiet)


def _lego(workdir):
  _train("lego", "smoke", workdir)
  return {"LEGO_WORKDIR": workdir, "LEGO_EVAL_SENTENCES": "256"}


def _arithmetic(workdir):
  _train("arithmetic", "smoke,pos=abacus,format=reverse_operands+reverse", workdir,
         num_steps=10, eval_every=10, checkpoint_every=10)
  return {"ARITH_WORKDIR": workdir}


CHECKPOINTS = {"lego_attention": _lego, "arithmetic_positions": _arithmetic}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: os.path.basename(p)[:-len(".ipynb")])
def test_notebook_executes(path, tmp_path, monkeypatch):
  name = os.path.basename(path)[:-len(".ipynb")]
  if name in CHECKPOINTS:
    for key, value in CHECKPOINTS[name](str(tmp_path / "run")).items():
      monkeypatch.setenv(key, value)
  monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
  monkeypatch.setenv("TMPDIR", str(tmp_path))  # what a notebook puts in the temp folder goes with it
  with open(path) as f:
    notebook = nbformat.read(f, as_version=4)
  NotebookClient(notebook, timeout=170, kernel_name="python3",
                 resources={"metadata": {"path": ROOT}}).execute()
  errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "error"]
  assert not errors
