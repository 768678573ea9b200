"""Every notebook in notebooks/ runs top to bottom (nbclient) as a fresh clone runs it: with no
run of its own to load, each trains a tiny one into a temporary folder first. ENV sets, per
notebook, what keeps it small here.
"""
import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.paths import ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
ENV = {"lego_attention": {"LEGO_EVAL_SENTENCES": "256"}}
# the variables naming the run to load: pointed at nothing (a checkout's runs/ may hold one)
WORKDIRS = ("LEGO_WORKDIR", "ARITH_WORKDIR", "KNOWLEDGE_WORKDIR")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: os.path.basename(p)[:-len(".ipynb")])
def test_notebook_executes(path, tmp_path, monkeypatch):
  name = os.path.basename(path)[:-len(".ipynb")]
  for key in WORKDIRS:
    monkeypatch.setenv(key, str(tmp_path / "no_run"))
  for key, value in ENV.get(name, {}).items():
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
