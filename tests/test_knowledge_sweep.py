"""The knowledge sweep's capacity points and its combined plot of several finished sweeps."""
import json
import re

import pytest

from experiments import knowledge_sweep


def _summary(params, bits):
  return {f"layers={i}": {"params": p, "capacity": {"bits": b}, "capacity_int8": {"bits": b - 1}}
          for i, (p, b) in enumerate(zip(params, bits))}


def test_capacity_points_give_float32_and_int8_per_run():
  points = knowledge_sweep.capacity_points("c100", _summary([10, 20], [5.0, 9.0]))
  assert sorted((p["label"], p["params"], p["bits"]) for p in points) == [
      ("c100 float32", 10, 5.0), ("c100 float32", 20, 9.0), ("c100 int8", 10, 4.0),
      ("c100 int8", 20, 8.0)]


def test_plot_combines_finished_sweeps(tmp_path):
  for name, bits in (("c100", [5.0, 9.0]), ("c1000", [12.0, 30.0])):
    (tmp_path / name).mkdir()
    (tmp_path / name / "summary.json").write_text(json.dumps(_summary([10, 20], bits)))
  out = tmp_path / "capacity.png"
  knowledge_sweep.main(["plot", str(out), str(tmp_path / "c100"), str(tmp_path / "c1000")])
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_an_unfinished_sweep_fails_in_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit:
    knowledge_sweep.main(["plot", str(tmp_path / "x.png"), str(tmp_path)])
  assert exit.value.code == 2
  assert re.fullmatch(r"error: root: .* has no summary.json.*\n", capsys.readouterr().err)
