"""docs/results/lego.md's tables: rendered from summaries, and curves.summary writes what they read."""
import json

from experiments import pages
from experiments.configs.lego import get_config
from experiments.lego import curves, tables


def test_flow_layers_take_the_first_layer_at_the_threshold():
  data = {"accuracy": [[0.5, 0.5], [0.96, 0.5], [1.0, 0.949], [1.0, 0.95]]}
  assert tables._flow_layers(data) == [1, 3]


def test_every_lego_table_renders_from_the_committed_summaries():
  for name in ("findings", "default_runs", "untied_runs", "compare_at_step",
               "compare_first_steps", "flow", "parent_split", "learned_runs", "learned_targets"):
    text = getattr(tables, name)(pages.load)
    assert text.startswith("|") and "None" not in text, name


def _run(tmp_path, name, seed, curve):
  workdir = tmp_path / name
  workdir.mkdir()
  config = get_config(f"smoke,seed={seed}")
  (workdir / "config.json").write_text(config.to_json())
  with open(workdir / "metrics.jsonl", "w") as f:
    for step, accuracy in curve.items():
      record = {"step": step, "train_seconds": 6.0 * step}
      record.update({f"eval/accuracy/position_{i + 1}": a for i, a in enumerate(accuracy)})
      record.update({f"eval/accuracy_parent_left/position_{i + 1}": a
                     for i, a in enumerate(accuracy) if i})
      f.write(json.dumps(record) + "\n")
  return str(workdir)


def test_summary_gives_each_run_its_first_steps_and_each_model_its_seed_mean(tmp_path):
  n = get_config("smoke").task.num_vars
  low, high = [0.5] * n, [1.0] * 6 + [0.5] * (n - 6)
  workdirs = [_run(tmp_path, "a", 0, {10: low, 20: high}), _run(tmp_path, "b", 1, {10: low, 20: low})]
  curves.main(["--step=20", "--figures=", f"--summary={tmp_path / 's.json'}", *workdirs])
  out = json.loads((tmp_path / "s.json").read_text())
  assert [r["first_step_all"] for r in out["runs"]] == [20, None]
  assert [r["at_last_step"] for r in out["runs"]] == [high, low]
  assert [r["recipe"] for r in out["runs"]] == [
      "model.d_model=32,model.num_heads=2,model.num_layers=2,"
      "num_steps=30,warmup_steps=5,batch_size=32"] * 2
  assert out["runs"][0]["train_minutes"] == [2.0, 2.0]
  assert out["runs"][0]["parent"]["left"][0] == 1.0
  model = out["models"]["vanilla"]
  assert model["seeds"] == [0, 1] and model["mean_at_step"][0] == 0.75 and model["parameters"] > 0
