"""The knowledge-manipulation study: a smoke run trains every stage, checkpoints, and a run stopped
in any stage resumes to the uninterrupted run's results; the answer reader; config errors."""
import json
import os

import numpy as np
import pytest

from experiments.configs.manipulation import get_config, get_sweep
from experiments.knowledge import manipulation
from tasks.manipulation import KINDS
from tests.study_checks import assert_loss_touches_only_weighted_tokens

quiet = lambda *_: None


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("manipulation_smoke")
  return workdir, manipulation.run(get_config("smoke"), str(workdir), print_fn=quiet)


def test_smoke_run_reports_every_kind_form_and_stage(smoke_run):
  workdir, results = smoke_run
  for stage in ("finetune_none", "finetune_mixed"):
    for split in ("P_train", "P_test"):
      for kind in KINDS:
        for form in ("direct", "cot"):
          assert 0 <= results[stage][f"{split}/{kind}/{form}"] <= 1
      assert f"{split}/classification/cot_stated" in results[stage]
      assert f"{split}/classification/month_even/direct" in results[stage]
  with open(workdir / "results.json") as f:
    assert json.load(f)["finetune_none"] == results["finetune_none"]
  for stage in ("pretrain", "finetune_none", "finetune_mixed"):
    assert os.path.exists(workdir / stage / "checkpoints")


def test_a_run_stopped_in_each_stage_resumes_to_the_same_results(smoke_run, tmp_path,
                                                                  monkeypatch):
  _, uninterrupted = smoke_run
  whole = manipulation.train.train_and_evaluate
  for stage in ("pretrain", "finetune_mixed"):  # stopped at step 2 of the stage, then resumed
    monkeypatch.setattr(manipulation.train, "train_and_evaluate", lambda c, workdir, *a, **k: whole(
        c, workdir, *a, **k, stop_at=2 if workdir.endswith(stage) else None))
    assert manipulation.run(get_config("smoke"), str(tmp_path), print_fn=quiet) is None
  monkeypatch.setattr(manipulation.train, "train_and_evaluate", whole)
  assert manipulation.run(get_config("smoke"), str(tmp_path), print_fn=quiet) == uninterrupted


def test_the_answer_is_read_after_the_models_own_answer_prompt():
  prompt = [7, 8]
  assert manipulation.stated_answer([3, 4, 7, 8, 5, 1], prompt) == [5, 1]
  assert manipulation.stated_answer([3, 7, 4, 8, 5, 1], prompt) is None


def test_the_finetuning_loss_is_on_the_reply_only():
  config = get_config("smoke")
  study = manipulation.ManipulationFinetune(manipulation.stage_config(config, "mixed"))
  assert_loss_touches_only_weighted_tokens(study)


def test_eval_rows_split_people_and_count_every_kind():
  study = manipulation.ManipulationFinetune(manipulation.stage_config(get_config("smoke"),
                                                                       "mixed"))
  batch = study.batch("test", 0, 64)
  assert batch["is_test"].tolist() == [0] * 32 + [1] * 32
  assert set(batch["example_kind"].tolist()) == set(range(len(KINDS)))
  logits = np.zeros(batch["inputs"].shape + (len(study.task.vocab),), np.float32)
  sums = study.eval_sums(logits, batch)
  assert float(np.asarray(sums["count"]).sum()) == 64


def test_one_pretraining_serves_every_kinds_and_cot_variant():
  base = get_config("smoke")
  for variant in ("smoke,kinds=retrieval", "smoke,cot=mixed"):
    config = get_config(variant)
    assert config.task == base.task and config.model == base.model
    assert manipulation.stage_config(config, "mixed").task != base.task


@pytest.mark.parametrize("variant, field", [("smoke,kinds=sorting", "kinds"),
                                            ("smoke,cot=always", "cot"),
                                            ("smoke,ft_steps=1", "ft_steps")])
def test_bad_variants_name_the_knob(variant, field):
  with pytest.raises(ValueError, match=field):
    get_config(variant)


def test_every_sweep_point_builds():
  from experiments.configs.manipulation import SWEEPS
  for name in SWEEPS:
    for variant in get_sweep(name):
      manipulation.ManipulationPretrain(get_config(variant))


def test_the_page_summary_holds_variants_of_its_sweeps_and_renders():
  from experiments import pages
  from experiments.knowledge import tables
  data = pages.load(tables.MANIPULATION)
  assert data["seeds"] and data["command"] and data["runs"]
  for sweep, runs in data["sweeps"].items():
    assert set(runs) <= set(get_sweep(sweep))
  rows = tables.manipulation_findings(pages.load).splitlines()[2:]
  assert {row.split(" | ")[3] for row in rows} <= {"holds", "partly", "not"}
  assert tables.manipulation_kinds(pages.load).count("\n") == 2 + 2 * len(KINDS)
  tries = pages.load(tables.MANIPULATION_SCALE)["tries"]
  assert all(0 <= t["P_test"] <= 1 for t in tries)
