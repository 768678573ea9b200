"""The knowledge study end to end: smoke run, QA fine-tuning memorises P_train, eval agrees with
greedy generation."""
import json
import os

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from experiments.configs.knowledge import get_config
from experiments.knowledge import stages
from experiments.runtime.metric_log import read_jsonl
from tasks.biography import ATTRIBUTES
from tests.paths import ROOT

quiet = lambda *_: None


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("knowledge_smoke")
  return workdir, stages.run(get_config("smoke"), str(workdir), print_fn=quiet)


@pytest.mark.system  # a whole run
def test_smoke_run_reports_capacity_probes_and_qa(smoke_run):
  tmp_path, results = smoke_run
  cap = results["capacity"]
  assert cap["bits"] < cap["max_bits"] and cap["params"] == results["params"]
  assert abs(cap["bits_per_param"] * cap["params"] - cap["bits"]) < 1e-6 * abs(cap["bits"])
  assert results["capacity_int8"]["p1"] != cap["p1"]  # the weights did change
  assert abs(results["capacity_int8"]["p2"] - cap["p2"]) < 0.05 * cap["p2"]
  probe = results["probe"]
  assert np.shape(probe["accuracy"]) == (1 + len(ATTRIBUTES), len(ATTRIBUTES))
  assert set(results["qa"]) == {f"{s}/{a}" for s in ("P_train", "P_test") for a in ATTRIBUTES} | {
      "P_train", "P_test"}
  with open(tmp_path / "results.json") as f:
    assert json.load(f)["capacity"]["bits"] == cap["bits"]
  for name in ("qa_accuracy.png", "p_probe.png", "pretrain/checkpoints", "finetune/checkpoints"):
    assert os.path.exists(tmp_path / name)


@pytest.mark.system  # a whole run
def test_qa_finetuning_memorises_p_train_and_eval_matches_generation(tmp_path):
  config = get_config("smoke,people=6,exposures=2,qa_epochs=200,lr=0.03")
  config.knowledge.probe_people = 0
  config.knowledge.quantize = False
  results = stages.run(config, str(tmp_path), print_fn=quiet)
  assert results["qa"]["P_train"] == 1.0  # by greedy generation
  last = [r for r in read_jsonl(tmp_path / "finetune" / "metrics.jsonl") if "eval/qa/P_train" in r]
  assert last[-1]["eval/qa/P_train"] == 1.0  # by teacher-forced exact match, in the loop
  assert results["qa"]["P_test"] < 0.5  # nothing about P_test was ever learnt


@pytest.mark.system  # a whole run
def test_notebook_runs_on_the_smoke_checkpoint(smoke_run, monkeypatch):
  workdir, _ = smoke_run
  monkeypatch.setenv("KNOWLEDGE_WORKDIR", str(workdir))
  monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  with open(os.path.join(ROOT, "notebooks", "knowledge_probes.ipynb")) as f:
    notebook = nbformat.read(f, as_version=4)
  NotebookClient(notebook, timeout=300, kernel_name="python3", resources={
      "metadata": {"path": ROOT}}).execute()
  printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                    for o in c.get("outputs", []))
  assert "P_test" in printed and "bits/param" in printed and "sentence 6 end" in printed


def test_a_preempted_stage_ends_the_run_without_results(tmp_path, monkeypatch):
  stop_early = stages.train.train_and_evaluate
  monkeypatch.setattr(stages.train, "train_and_evaluate",
                      lambda *a, **k: stop_early(*a, **k, stop_at=2))
  assert stages.run(get_config("smoke"), str(tmp_path), print_fn=quiet) is None
  assert not os.path.exists(tmp_path / "results.json")


def test_biod_run_measures_the_values_it_memorised(tmp_path):
  config = get_config("smoke,data=biod,people=20,K=2,C=1,D=4,L=1,T=8,exposures=300,lr=0.01")
  results = stages.run(config, str(tmp_path), print_fn=quiet)
  assert "qa" not in results and "probe" not in results
  most = 20 * 2 * 1 * 2  # N K C log2 D bits of values
  assert 0.75 * most < results["capacity"]["value_bits"] <= most
