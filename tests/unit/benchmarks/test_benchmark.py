"""The benchmark command: its FLOP counts against a hand count and against the traced step, and a
tiny end-to-end run (no timing is asserted)."""
import json
import sys

import jax
import numpy as np
import pytest

from benchmarks import benchmark
import experiments
from experiments.runtime import train
from models import model_config


def _tiny_model(**overrides):
  fields = dict(vocab_size=5, num_outputs=3, d_model=8, num_heads=2, num_layers=1, d_ff=16,
                max_len=4)
  return model_config(**{**fields, **overrides})


def test_matmul_flops_match_a_hand_count():
  # d=8, 2 heads of 4, d_ff=16, 3 outputs, 4 tokens; 2 FLOPs per multiply-add.
  qkv, scores, mix, out, mlp, head = 2 * 8 * 24, 2 * 4 * 8, 2 * 4 * 8, 2 * 8 * 8, 2 * 2 * 8 * 16, 2 * 8 * 3
  forward = 4 * (qkv + scores + mix + out + mlp + head)
  assert forward == 4800
  train = 3 * forward
  assert benchmark.matmul_flops(_tiny_model(), 4) == {"forward": forward, "train": train,
                                                      "train_live": train}
  # causal: 10 of the 16 (query, key) pairs are visible; scores and mix cost 2 * 4 * 2 (heads of
  # 4) and 2 * 8 per pair in the forward, three times that in training.
  causal = benchmark.matmul_flops(_tiny_model(causal=True), 4)
  assert causal["train"] == train
  assert causal["train_live"] == train - 3 * (16 - 10) * (2 * 4 * 2 + 2 * 8)
  # LEGO with one fixed head: Q/K and scores for the other head only; the fixed pattern times V
  # takes no gradient for the pattern, so its backward is one matmul, not two.
  qk_v = 2 * 8 * (2 * 4 + 8)
  fixed_mix = 4 * 2 * 4 * 4  # per sequence: 4 queries x 4 keys x head dim 4
  forward = 4 * (qk_v + 2 * 4 * 4 + mix + out + mlp + head)
  counts = benchmark.matmul_flops(_tiny_model(attention="lego", lego_heads=(1, 0)), 4)
  assert counts == {"forward": forward, "train": 3 * forward - fixed_mix,
                    "train_live": 3 * forward - fixed_mix}


@pytest.mark.parametrize("attention,causal", [("vanilla", True), ("vanilla", False),
                                              ("lego", False), ("conv_qkv", True)])
def test_matmul_flops_match_the_traced_train_step(attention, causal):
  args = benchmark.parse_args(["--tiny", "--layers=2", "--batch=2"])
  if causal:
    config, study = benchmark.decoder_setup(32, 16, args)
  else:
    config, study = benchmark.lego_setup(32, 16, args)
  config.model.attention = attention
  trainer = train.build_trainer(config, study)
  batch = study.batch("train", 0, config.batch_size)
  model = train.resolved_model_config(config, study)
  expected = benchmark.matmul_flops(model, batch["inputs"].shape[1])
  forward = lambda params: trainer.model(params)(batch["inputs"])
  params = trainer.abstract_state["params"]
  size = config.batch_size
  assert benchmark.jaxpr_matmul_flops(forward, params) == size * expected["forward"]
  step = benchmark.jaxpr_matmul_flops(trainer.train_step, trainer.abstract_state, batch)
  assert step == size * expected["train"]


def test_torch_missing_is_reported(monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)
  assert "PyTorch is not installed" in benchmark.torch_missing()


@pytest.mark.system  # a whole run
def test_benchmark_runs_end_to_end_at_a_tiny_size(tmp_path, capsys):
  out = tmp_path / "bench.json"
  benchmark.main(["--tiny", "--out", str(out)])
  result = json.loads(out.read_text())
  table = capsys.readouterr().out
  assert "float32 matmul ceiling" in table and "greedy decoding" in table
  assert result["matmul_ceiling"]["gflops"] > 0
  assert [r["model"] for r in result["train"]] == [
      "lego_default", "arithmetic_default", "knowledge_default", "manipulation_default",
      "programs_default",
      "lego_encoder", "decoder"]
  for row in result["train"] + result["attention"]:
    assert row["tokens_per_s"] > 0 and row["spread"] >= 0 and len(row["times_s"]) == 3
    assert row["flops"] <= row["xla_flops"]  # XLA adds the elementwise work to the matmuls
  if result["torch_skipped"] is None:
    assert all(r["ratio_vs_torch"] > 0 and r["turn_ratio_vs_torch"] > 0 for r in result["train"])
    assert all(r["bound_vs_torch"] > 0 for r in result["train"])
  assert all(r["steal_pct"] is None or 0 <= r["steal_pct"] <= 100 for r in result["train"])
  assert [r["attention"] for r in result["attention"]] == ["vanilla", "lego", "conv_qkv"]
  assert [r["task"] for r in result["generators"]] == list(experiments.STUDIES)
  assert all(r["examples_per_s"] > 0 and r["pct_of_step"] > 0 for r in result["generators"])
  assert result["decoding"]["tokens_per_s"] > 0


def test_steal_is_the_stolen_share_of_all_cpu_time(monkeypatch, tmp_path):
  stat = tmp_path / "stat"
  # user nice system idle iowait irq softirq steal: 250 jiffies pass, 50 of them stolen
  stat.write_text("cpu  100 0 20 300 0 0 0 10 0 0\ncpu0 1 2 3\n")
  real_open = open
  monkeypatch.setattr("builtins.open",
                      lambda path, *a, **k: real_open(stat if path == "/proc/stat" else path, *a, **k))
  before = benchmark.cpu_times()
  stat.write_text("cpu  200 0 40 380 0 0 0 60 0 0\n")
  after = benchmark.cpu_times()
  assert before == (10, 430) and after == (60, 680)
  assert benchmark.steal_pct(before, after) == pytest.approx(20.0)
  assert benchmark.steal_pct(None, after) is None


@pytest.mark.parametrize("warmup,growing_calls,want_warmup", [
    (1, 3, 4),   # rounds 0-2 grow the heap, round 3 does not: timing starts at call 4
    (2, 0, 2),   # a steady heap: just the rounds asked for
    (1, 99, 1 + benchmark.MAX_EXTRA_WARMUP),  # never steady: capped
    (0, 99, 0),  # no warm-up asked, none done
])
def test_warmup_runs_until_the_heap_stops_growing(monkeypatch, warmup, growing_calls, want_warmup):
  faults, calls = [0], []

  def step(i):
    calls.append(i)
    if len(calls) <= growing_calls:
      faults[0] += benchmark.STEADY_FAULTS  # this call faulted in fresh pages

  monkeypatch.setattr(benchmark, "fresh_pages", lambda: faults[0])
  times = benchmark.time_calls(step, warmup, repeats=2)
  assert len(times) == 2 and calls == list(range(want_warmup + 2))


def test_each_row_is_set_against_a_ceiling_timed_just_before_its_steps(monkeypatch):
  calls = []
  monkeypatch.setattr(benchmark, "matmul_runner", lambda n: (
      lambda i: calls.append(("matmul", n)), lambda times: float(len(times))))
  monkeypatch.setattr(benchmark, "fresh_pages", lambda: 0)
  args = benchmark.parse_args(["--warmup=1", "--repeats=3", "--turn=1", "--settle=0"])
  steps = [lambda i: calls.append(("ours", i)), lambda i: calls.append(("torch", i))]
  times, gflops = benchmark.time_with_ceiling(steps, {"size": 64}, args)
  assert [len(t) for t in times] == [3, 3] and gflops == 3.0  # from the 3 timed matmuls
  assert calls == [("matmul", 64)] * 4 + [(name, i) for i in range(4) for name in ("ours", "torch")]


def test_turns_open_with_untimed_calls_and_time_the_rest(monkeypatch):
  monkeypatch.setattr(benchmark, "fresh_pages", lambda: 0)
  clock, calls = [0.0], []
  monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock[0])

  def step(name):
    def run(i):  # pays 10 s for the switch when the call before was the other fn's, else 1 s
      clock[0] += 1.0 if calls and calls[-1][0] == name else 10.0
      calls.append((name, i))
    return run

  times = benchmark.time_interleaved([step("ours"), step("torch")], 1, 5, turn=2, settle=1)
  assert times == [[1.0] * 5, [1.0] * 5]  # each switch was paid by an untimed call
  # a warm-up round, then turns of 1 untimed + 2 timed calls; the last times only what is left
  turns = [[0], [1, 2, 3], [4, 5, 6], [7, 8]]
  assert calls == [(name, i) for turn in turns for name in ("ours", "torch") for i in turn]
  call_by_call = benchmark.time_interleaved([step("ours"), step("torch")], 0, 2)
  assert call_by_call == [[10.0] * 2, [10.0] * 2]  # the old method: every call pays the switch


@pytest.mark.parametrize("setup,attention,pos_encoding,tied", [
    ("lego", "vanilla", "learned", False), ("lego", "lego", "learned", False),
    ("lego", "lego", "learned", True), ("decoder", "vanilla", "rotary", False),
    ("decoder", "vanilla", "learned", False)])  # the last: the programs study's default model
def test_torch_reference_computes_our_loss_on_our_weights(setup, attention, pos_encoding, tied):
  torch = pytest.importorskip("torch")
  from benchmarks import torch_reference
  args = benchmark.parse_args(["--tiny", "--layers=2", "--batch=4"])
  setups = {"lego": benchmark.lego_setup, "decoder": benchmark.decoder_setup}
  config, study = setups[setup](32, 16, args)
  config.model.update(dict(attention=attention, pos_encoding=pos_encoding, tied_layers=tied))
  trainer = train.build_trainer(config, study)
  params = trainer.init()["params"]
  batch = study.batch("train", 0, config.batch_size)
  logits = trainer.model(params)(batch["inputs"])
  model = torch_reference.Transformer(train.resolved_model_config(config, study).to_dict())
  torch_reference.load_params(model, jax.device_get(params))
  inputs, targets, weights = torch_reference.tensors(batch)
  with torch.no_grad():
    np.testing.assert_allclose(model(inputs).numpy(), logits, rtol=1e-4, atol=1e-5)
    theirs = torch_reference.loss(model, inputs, targets, weights)
  assert float(theirs) == pytest.approx(float(study.loss(logits, batch)[0]), rel=1e-5)


def test_turn_ratio_holds_when_a_slow_phase_starts_between_the_two_sides_turns():
  """Ours 1.2x faster in every turn but the third, where a 3x slow phase began after our turn and
  before theirs: the ratio of the run's medians reads 3.6x, the median over turns 1.2x."""
  ours, theirs = [1.0, 1.0, 1.0, 3.0, 3.0], [1.2, 1.2, 3.6, 3.6, 3.6]
  assert float(np.median(theirs) / np.median(ours)) == pytest.approx(1.2 * 3.0)
  assert benchmark.turn_ratio(ours, theirs, turn=1) == pytest.approx(1.2)


def test_the_bound_is_pytorchs_step_over_the_live_flops_at_the_ceiling():
  # 2 GFLOP at 100 GFLOP/s take 20 ms at best: PyTorch's 30 ms step is 1.5x that.
  assert benchmark.bound_ratio(0.030, 2e9, 100.0) == pytest.approx(1.5)
