"""The knowledge sweep's report (summary.json and plots after launch.sweep's runs), its capacity
points and its combined plot of several finished sweeps; every named sweep runs under launch.sweep
and launch.slurm."""
import dataclasses
import json
import os
import re

import pytest

from experiments.configs.knowledge import SWEEPS, get_config
from experiments.knowledge import stages, sweep_report
from launch import results as results_lib
from launch import slurm, sweep
from tests.paths import ROOT



def _summary(params, bits):
  return {f"layers={i}": {"params": p, "capacity": {"bits": b}, "capacity_int8": {"bits": b - 1}}
          for i, (p, b) in enumerate(zip(params, bits))}


def test_capacity_points_give_float32_and_int8_per_run():
  points = sweep_report.capacity_points("c100", _summary([10, 20], [5.0, 9.0]))
  assert sorted((p["label"], p["params"], p["bits"]) for p in points) == [
      ("c100 float32", 10, 5.0), ("c100 float32", 20, 9.0), ("c100 int8", 10, 4.0),
      ("c100 int8", 20, 8.0)]


def test_capacity_points_label_the_series_a_sweep_compares():
  summary = {f"people=9,head_dim={8 * l},block={b}": {"params": l, "capacity": {"bits": 1.0}}
             for l in (1, 2) for b in ("gpt2", "llama")}
  assert sorted((p["label"], p["params"]) for p in sweep_report.capacity_points("a", summary)) == [
      ("a block=gpt2 float32", 1), ("a block=gpt2 float32", 2), ("a block=llama float32", 1),
      ("a block=llama float32", 2)]


def test_head_dim_sets_the_width_and_gpt2_init_the_init_a_cpu_curve_uses():
  model = get_config("heads=2,head_dim=48").model
  assert (model.d_model, model.num_heads, model.d_ff) == (96, 2, 384)
  assert get_config("heads=2").model.d_model == 128  # GPT2-l-h: hidden 64h
  assert (model.init_std, model.embed_std) == (None, None)  # width-scaled
  model = get_config("gpt2_init=True").model
  assert (model.init_std, model.embed_std) == (0.02, 0.02)


def test_report_gathers_a_finished_sweep_into_summary_and_plots(tmp_path):
  runs = {}
  for variant, results in _summary([10, 20], [5.0, 9.0]).items():
    runs[variant] = str(tmp_path / variant)
    os.makedirs(runs[variant])
    (tmp_path / variant / "results.json").write_text(json.dumps({**results, "qa": {
        "P_train": 1.0, "P_test": 0.5}}))
  lines = []
  assert sweep_report.report(str(tmp_path / "root"), "c100", {**runs, "layers=9": str(
      tmp_path / "unfinished")}, print_fn=lines.append) is None
  assert not (tmp_path / "root").exists() and "1 unfinished" in lines[0]
  summary = sweep_report.report(str(tmp_path / "root"), "c100", runs, print_fn=lines.append)
  assert json.loads((tmp_path / "root" / "summary.json").read_text()) == summary
  assert list(summary) == list(runs) and summary["layers=1"]["params"] == 20
  for name in ("capacity.png", "extraction.png"):
    assert (tmp_path / "root" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_combines_finished_sweeps(tmp_path):
  for name, bits in (("c100", [5.0, 9.0]), ("c1000", [12.0, 30.0])):
    (tmp_path / name).mkdir()
    (tmp_path / name / "summary.json").write_text(json.dumps(_summary([10, 20], bits)))
  out = tmp_path / "capacity.png"
  sweep_report.main(["plot", str(out), str(tmp_path / "c100"), str(tmp_path / "c1000")])
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_an_unfinished_sweep_fails_in_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit:
    sweep_report.main(["plot", str(tmp_path / "x.png"), str(tmp_path)])
  assert exit.value.code == 2
  assert re.fullmatch(r"error: root: .* has no summary.json.*\n", capsys.readouterr().err)


@pytest.mark.parametrize("name", list(SWEEPS))
def test_every_named_sweep_expands_for_launch_sweep_and_slurm(tmp_path, name):
  runs = sweep.expand(f"experiments/configs/knowledge.py:{name}", str(tmp_path))
  assert [r.variant for r in runs] == SWEEPS[name] and len({r.name for r in runs}) == len(runs)
  assert all(r.module == "experiments.knowledge" and not r.overrides for r in runs)
  script = slurm.array_script(runs, list(range(len(runs))), slurm.Resources(), str(tmp_path),
                              ROOT, "python")
  assert script.count("srun python -m experiments.knowledge --config=experiments/configs/"
                      f"knowledge.py:{SWEEPS[name][0]} ") == 1


def test_a_finished_knowledge_run_is_finished_for_launch_sweep(tmp_path):
  variant = "smoke,data=biod,people=20,K=2,C=1,D=4,L=1,T=8,exposures=2"
  run = next(r for r in sweep.expand("experiments/configs/knowledge.py:arch100_biod_cpu",
                                     str(tmp_path)) if r.variant.endswith("block=gpt2"))
  run = dataclasses.replace(run, variant=variant, num_steps=get_config(variant).num_steps)
  assert not run.finished()
  results = stages.run(get_config(variant), run.workdir, print_fn=lambda *_: None)
  assert run.finished()
  final = results_lib.final_metrics(run.workdir)
  assert final["eval/capacity_int4/bits_per_param"] == results["capacity_int4"]["bits_per_param"]


def test_capacity_plot_draws_negative_bits_at_their_value_on_a_symlog_axis(tmp_path):
  from experiments.knowledge import plots
  positive = [dict(params=10, bits=5.0, label="a float32"), dict(params=20, bits=9.0, label="a int4")]
  assert plots.capacity(positive, str(tmp_path / "log.png")) == "log"
  negative = positive + [dict(params=20, bits=-30.0, label="a int4")]
  assert plots.capacity(negative, str(tmp_path / "symlog.png")) == "symlog"


def test_summary_gathers_finished_sweeps_for_the_page_and_plot_reads_it(tmp_path):
  for name, bits in (("c100", [5.0, 9.0]), ("c1000", [12.0, 30.0])):
    (tmp_path / name).mkdir()
    summary = _summary([10, 20], bits)
    for s, r in enumerate(summary.values()):
      r.update(config={"seed": s}, capacity_int4={"bits_per_param": -0.5})
    (tmp_path / name / "summary.json").write_text(json.dumps(summary))
  out = tmp_path / "data" / "knowledge_x.json"
  sweep_report.main(["summary", str(out), str(tmp_path / "c100"), str(tmp_path / "c1000")])
  data = json.loads(out.read_text())
  assert list(data["sweeps"]) == ["c100", "c1000"] and data["seeds"] == [0, 1]
  assert "config" not in data["sweeps"]["c100"]["layers=0"]
  assert data["command"][0].startswith("python -m experiments.knowledge.sweep_report summary")
  png = tmp_path / "one.png"
  sweep_report.main(["plot", str(png), f"{out}:c1000"])
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  points = sweep_report.capacity_points("c", data["sweeps"]["c100"])
  assert sorted(p["bits"] for p in points if p["label"].endswith("int4")) == [-10.0, -5.0]
  with pytest.raises(SystemExit):
    sweep_report.main(["plot", str(png), f"{out}:nope"])
