"""Benchmarks on this machine, in one run: the float32 matmul ceiling through XLA; train-step
throughput of each study's default run (as its entry point trains it) and of the LEGO encoder and a
causal decoder at d_model 128-512, each against the same model written plainly in PyTorch (eager
and under torch.compile, fused AdamW; the ratio is against the faster); the attention variants; the
task generators; greedy decoding.

    python -m benchmarks.benchmark --out=benchmark.json   # full sizes (minutes)
    python -m benchmarks.benchmark --tiny                  # checks that it all runs (compiles dominate)

Every timing excludes warm-up (compilation, and steps that still grow the heap) and reports the
median over repeats with its spread ((max - min) / median). Train steps are the project's own:
`train.build_trainer`'s jitted, donated call of `steps_per_call` steps, compiled once ahead of time,
timed per call and reported per step; ours and PyTorch's take turns of --turn timed calls, each
opened by --settle untimed ones (the first call after the other's pays for the switch), so a drift
in the machine's speed moves both and their ratio holds. The ratio is given twice: of the two
sides' median steps over the run, and the median over turns of the ratio within each turn, which a
drift lasting longer than a turn (the machine's came in phases of tens of calls) cannot shift.
Beside them, the bound: the ratio a step doing nothing but its live matmul FLOPs at the run's best
ceiling would reach against the same PyTorch step (`bound_ratio`); a target above it needs matmuls
faster than the ceiling's, however much of the rest of the step is cut.
Each row's % of the ceiling is against the ceiling's matmul timed just before it, and its "steal %"
is the share of CPU time the virtual machine's host took away during it (0 on a quiet or bare
machine; at 20-30% the small rows' ratios swung by 2x between runs). FLOPs are matmul FLOPs
counted analytically (`matmul_flops`, 2 per multiply-add); XLA's own count, which adds the
elementwise work, is recorded beside them.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.extend import core as jax_core

import experiments
from experiments.arithmetic.study import GRID_STEP, ArithmeticStudy
from experiments.configs import arithmetic as arithmetic_configs
from experiments.configs import lego as lego_configs
from experiments.lego import LegoStudy
from experiments.runtime import host_memory, train
from models import model_config
from models.kernels import cpu as cpu_kernels
from models.decoding import greedy_generate
from tasks import rows as rows_lib
from tasks.cli import Parser, at_least

LEGO_MAX_VARS = 26  # one letter per variable


# -- FLOPs -----------------------------------------------------------------------------------------

def matmul_flops(model, length: int) -> dict[str, int]:
  """Matmul FLOPs of one sequence of `length` tokens through `model` (a model ConfigDict).

  forward: per layer and token, the Q/K projections of the learned heads and V of all heads, the
  scores of the learned heads over all `length` keys, weights times values, the output projection
  and the MLP; then the head. train: the backward pass costs two matmuls per forward one (input and
  weight gradients), except the fixed LEGO patterns times V, whose patterns take no gradient. Both
  count every (query, key) pair, as XLA's attention computes them under a causal mask too.
  train_live: train over the pairs a causal mask leaves visible (t (t + 1) / 2 of t^2), the fewest
  any implementation must compute (the CPU kernel stops each row at its last visible key).
  """
  d, f, h, t = model.d_model, model.d_ff, model.num_heads, length
  k = d // h
  fixed = sum(model.lego_heads) if model.attention == "lego" else 0
  learned = h - fixed
  projections = 2 * d * (2 * learned * k + d) + 2 * d * d
  dense = t * (model.num_layers * (projections + 4 * d * f) + 2 * d * model.num_outputs)

  def pairs_flops(pairs: int) -> tuple[int, int]:  # (forward, train) of all layers' attention
    forward = model.num_layers * pairs * (2 * learned * k + 2 * d)
    return forward, 3 * forward - model.num_layers * pairs * 2 * fixed * k

  forward, train = pairs_flops(t * t)
  live = pairs_flops(t * (t + 1) // 2 if model.causal else t * t)[1]
  return {"forward": dense + forward, "train": 3 * dense + train, "train_live": 3 * dense + live}


def jaxpr_matmul_flops(fn: Callable, *args, dots: bool = True) -> int:
  """FLOPs of every dot_general and CPU attention kernel call in `fn`'s jaxpr (nested jaxprs
  included): the exact matmul count. dots=False: the kernel calls' alone, which XLA's own cost
  analysis cannot see."""
  return _dot_flops(jax.make_jaxpr(fn)(*args).jaxpr, dots)


def _dot_flops(jaxpr, dots: bool) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general" and dots:
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      contracted = int(np.prod([lhs[i] for i in contract]))
      total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * contracted
    elif eqn.params.get("target_name") in cpu_kernels.TARGETS.values():
      shapes = [v.aval.shape for v in eqn.invars]
      total += cpu_kernels.matmul_flops(eqn.params["target_name"], shapes)
    for sub in jax_core.jaxprs_in_params(eqn.params):
      total += _dot_flops(sub, dots)
  return total


# -- timing ----------------------------------------------------------------------------------------

def time_calls(fn: Callable[[int], object], warmup: int, repeats: int) -> list[float]:
  """Seconds of each of `repeats` calls fn(i), after `warmup` untimed ones; fn blocks until done."""
  return time_interleaved([fn], warmup, repeats)[0]


STEADY_FAULTS = 1000  # fresh pages (4 KiB) in one warm-up round below which the heap is steady
MAX_EXTRA_WARMUP = 8


def cpu_times() -> tuple[int, int] | None:
  """(stolen, total) CPU time so far, in jiffies of all CPUs; None off Linux. A virtual machine's
  "steal" is time its host ran someone else while it wanted the CPU: a row measured under steal
  reads slow, and small steps with many thread hand-offs slower than large ones."""
  try:
    with open("/proc/stat") as f:
      fields = [int(x) for x in f.readline().split()[1:]]
  except (OSError, ValueError):
    return None
  return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_pct(before, after) -> float | None:
  if before is None or after is None or after[1] == before[1]:
    return None
  return 100 * (after[0] - before[0]) / (after[1] - before[1])


def fresh_pages() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_interleaved(fns: list[Callable[[int], object]], warmup: int, repeats: int,
                     turn: int = 1, settle: int = 0):
  """Per fn, seconds of each of `repeats` calls, the fns taking turns: a machine whose speed drifts
  (the CPU's did, 352 to 422 GFLOP/s between runs) slows them alike, so their ratio holds.

  Warm-up is `warmup` rounds and then more (up to MAX_EXTRA_WARMUP) until a round faults in fewer
  than STEADY_FAULTS fresh pages: until the heap stops growing. Its growth is a one-off cost of a
  run's first steps (a d_model 512 LEGO step that grows it takes 770-1240 ms, 540 ms after), and
  with PyTorch's allocations between ours it lasts a few steps longer.

  A turn is `settle` untimed calls, then up to `turn` timed ones. The first call after another
  fn's is charged for the switch: XLA's pool threads, descheduled while PyTorch's spun, made our
  d_model 128 step read 25 ms there against 17 ms in a run of its own (docs/performance.md), so
  one untimed call per turn keeps that charge out of both sides' figures.
  """
  rounds, growing = 0, True
  while rounds < warmup or (growing and 0 < warmup and rounds < warmup + MAX_EXTRA_WARMUP):
    before = fresh_pages()
    for fn in fns:
      fn(rounds)
    growing = fresh_pages() - before >= STEADY_FAULTS
    rounds += 1
  times = [[] for _ in fns]
  calls = [rounds] * len(fns)  # each fn's next call index
  while len(times[0]) < repeats:
    timed = min(turn, repeats - len(times[0]))
    for k, (fn, fn_times) in enumerate(zip(fns, times)):
      for _ in range(settle):
        fn(calls[k])
        calls[k] += 1
      for _ in range(timed):
        start = time.perf_counter()
        fn(calls[k])
        fn_times.append(time.perf_counter() - start)
        calls[k] += 1
  return times


def summary(times: list[float]) -> dict:
  median = float(np.median(times))
  return {"median_s": median, "min_s": float(min(times)), "max_s": float(max(times)),
          "spread": float((max(times) - min(times)) / median), "times_s": [float(t) for t in times]}


def matmul_runner(n: int):
  """(run(i): one float32 [n, n] @ [n, n] through XLA, blocking; gflops(times): its median rate)."""
  matmul = jax.jit(jnp.matmul)
  a, b = jax.random.normal(jax.random.key(0), (2, n, n), jnp.float32)
  return lambda _: matmul(a, b).block_until_ready(), lambda times: 2 * n**3 / np.median(times) / 1e9


def matmul_ceiling(sizes: list[int], warmup: int, repeats: int) -> dict:
  """float32 [n, n] @ [n, n] through XLA at each size; the ceiling is the best median GFLOP/s."""
  by_size = {}
  for n in sizes:
    run, gflops = matmul_runner(n)
    times = time_calls(run, warmup, repeats)
    by_size[str(n)] = {**summary(times), "gflops": gflops(times)}
  best = max(by_size, key=lambda n: by_size[n]["gflops"])
  return {"gflops": by_size[best]["gflops"], "size": int(best), "by_size": by_size}


def time_with_ceiling(fns, ceiling: dict, args) -> tuple[list[list[float]], float]:
  """(times of the fns, interleaved; the ceiling's GFLOP/s, timed again just before them).

  The machine's speed drifts (its ceiling read 423 to 461 GFLOP/s between runs, 397 to 439 between
  sizes within one), so each row is set against a ceiling of its own moment. Timed alone, not in
  turn with the steps: after PyTorch's step its threads still spin, and an interleaved matmul read
  up to 40% slow.
  """
  run, gflops = matmul_runner(ceiling["size"])
  local = gflops(time_calls(run, args.warmup, args.repeats))
  return time_interleaved(fns, args.warmup, args.repeats, args.turn, args.settle), local


# -- the two benchmark models ----------------------------------------------------------------------

class TokenStudy:
  """Next-token prediction on uniform random tokens: the decoder's benchmark task (no data cost)."""

  def __init__(self, vocab_size: int, length: int):
    self.vocab_size, self.length = vocab_size, length

  def model_fields(self):
    return {"vocab_size": self.vocab_size, "num_outputs": self.vocab_size, "max_len": self.length,
            "causal": True}

  def batch(self, split, step, batch_size, rows=None):
    def block(index, _, count):
      tokens = np.random.default_rng([step, index]).integers(
          0, self.vocab_size, (count, self.length + 1), dtype=np.int32)
      return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
              "weights": np.ones((count, self.length), np.float32)}
    return rows_lib.assemble(block, batch_size, rows)

  def loss(self, logits, batch):
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    loss = (losses * batch["weights"]).sum() / jnp.maximum(batch["weights"].sum(), 1.0)
    return loss, {"loss": loss}


def heads_for(d_model: int) -> int:
  return max(4, d_model // 64)  # head dim 64 at d_model >= 256; 4 heads below (as the LEGO study)


def decoder_setup(d_model: int, length: int, args) -> tuple[ml_collections.ConfigDict, TokenStudy]:
  config = ml_collections.ConfigDict(train.train_fields(
      batch_size=args.batch, eval_size=args.batch, warmup_steps=10))
  config.model = model_config(d_model=d_model, num_heads=heads_for(d_model),
                              num_layers=args.layers, d_ff=4 * d_model)
  return config, TokenStudy(args.vocab, length)


def lego_setup(d_model: int, length: int, args, attention: str = "vanilla"):
  """The LEGO study, untied as these rows have always run, with the chain length whose sentence is
  closest to `length` tokens."""
  num_vars = int(np.clip((length - 2) // 5, 1, LEGO_MAX_VARS))
  config = lego_configs.get_config(f"num_vars={num_vars},train_positions={min(6, num_vars)},"
                                   f"layers={args.layers},d_model={d_model},"
                                   f"heads={heads_for(d_model)},tied=False")
  config.update(dict(batch_size=args.batch, eval_size=args.batch))
  config.model.attention = attention
  return config, LegoStudy(config)


# -- train steps -----------------------------------------------------------------------------------

def study_setups(args) -> list[tuple[str, ml_collections.ConfigDict, object]]:
  """(name, config, study) of every study (experiments.STUDIES) at its default config, as its entry
  point trains it (the knowledge study's: its pretraining stage); --task-config picks another
  variant (e.g. smoke)."""
  setups = []
  for name, spec in experiments.STUDIES.items():
    config = spec.get_config(args.task_config or None)
    setups.append((name, config, spec.make_study(config)))
  return setups


def compiled_step(config, study):
  """(trainer, the ahead-of-time compiled call of `config.steps_per_call` steps, a fresh state,
  stacked batches already placed)."""
  trainer = train.build_trainer(config, study)
  count = config.steps_per_call
  batches = [trainer.batches("train", i * count, count, config.batch_size) for i in range(4)]
  compiled = trainer.train_steps.lower(trainer.abstract_state, batches[0]).compile()
  return trainer, compiled, trainer.init(), batches


def measure_step(config, study, args, ceiling: float) -> dict:
  """The project's train step: time, tokens/s, analytic and XLA FLOPs, % of the matmul ceiling."""
  run, figures = step_runner(config, study)
  return figures(time_calls(run, args.warmup, args.repeats), ceiling)


def step_runner(config, study):
  """(run(i): one compiled call (config.steps_per_call train steps) on batches i, blocking;
  figures(times of calls, ceiling): measure_step's row, per step)."""
  trainer, compiled, state, batches = compiled_step(config, study)
  holder = [state]

  def run(i):
    holder[0], metrics = compiled(holder[0], batches[i % len(batches)])
    jax.block_until_ready((holder[0], metrics))

  model = train.resolved_model_config(config, study)
  length = batches[0]["inputs"].shape[2]
  one_step = {k: v[0] for k, v in batches[0].items()}
  analysis = trainer.train_step.lower(trainer.abstract_state, one_step).cost_analysis()
  analysis = analysis[0] if isinstance(analysis, list) else analysis
  kernel_flops = jaxpr_matmul_flops(trainer.train_step, trainer.abstract_state, one_step,
                                    dots=False)

  def figures(times: list[float], ceiling: float) -> dict:
    per_step = [t / config.steps_per_call for t in times]
    return {**_step_rates(per_step, model, config.batch_size, length, ceiling),
            "batch": config.batch_size, "length": length, "d_model": model.d_model,
            "heads": model.num_heads, "layers": model.num_layers, "attention": model.attention,
            "steps_per_call": config.steps_per_call,
            "xla_flops": float(analysis.get("flops", 0.0)) + kernel_flops}

  return run, figures


def _step_rates(times: list[float], model, batch: int, length: int, ceiling: float) -> dict:
  """A train step's timing summary with its matmul FLOPs, tokens/s, GFLOP/s and % of the ceiling."""
  stats = summary(times)
  counts = matmul_flops(model, length)
  flops = counts["train"] * batch
  gflops = flops / stats["median_s"] / 1e9
  return {**stats, "flops": flops, "live_flops": counts["train_live"] * batch,
          "tokens_per_s": batch * length / stats["median_s"], "gflops": gflops,
          "pct_ceiling": 100 * gflops / ceiling}


def torch_runner(config, study, args, compiled: bool):
  """(run(i): the same model, loss and optimizer in PyTorch, config.steps_per_call steps as our
  call runs, on batches i; figures(times, ceiling)). `compiled`: through torch.compile."""
  from benchmarks import torch_reference  # optional: only with the `bench` extra
  model = train.resolved_model_config(config, study)
  torch_reference.set_threads(args.torch_threads)
  step = torch_reference.make_step(model.to_dict(), config.to_dict(), seed=config.seed,
                                   compiled=compiled)
  count = config.steps_per_call
  batches = [study.batch("train", i, config.batch_size) for i in range(4 * count)]
  length = batches[0]["inputs"].shape[1]

  def run(i):
    for j in range(count):
      step(batches[(i * count + j) % len(batches)])

  def figures(times: list[float], ceiling: float) -> dict:
    per_step = [t / count for t in times]
    return {**_step_rates(per_step, model, config.batch_size, length, ceiling),
            "threads": torch_reference.threads(), "compiled": compiled}

  return run, figures


def torch_missing() -> str | None:
  try:
    import torch  # noqa: F401
  except ImportError:
    return "PyTorch is not installed (pip install -e .[bench]); the PyTorch comparison is skipped"
  return None


def train_section(args, ceiling: dict, skip_torch: str | None) -> list[dict]:
  """Each study's default run, then the LEGO encoder and a decoder at each of --d-models; ours
  against PyTorch eager and (with --torch-compile) compiled, steps taking turns."""
  setups = [(name, *setup(d_model, length, args))
            for d_model, length in zip(args.d_models, args.seq_lens)
            for name, setup in (("lego_encoder", lego_setup), ("decoder", decoder_setup))]
  rows = []
  defaults = [(f"{name}_default", config, study) for name, config, study in study_setups(args)]
  for name, config, study in defaults + setups:
    ours, figures = step_runner(config, study)
    runners = [(ours, figures)]
    if not skip_torch:  # taking turns with ours
      runners += [torch_runner(config, study, args, compiled)
                  for compiled in (False, True)[:1 + args.torch_compile]]
    before = cpu_times()
    times, local_ceiling = time_with_ceiling([run for run, _ in runners], ceiling, args)
    row = {"model": name, **figures(times[0], local_ceiling), "ceiling_gflops": local_ceiling,
           "steal_pct": steal_pct(before, cpu_times())}
    if not skip_torch:
      row["torch"] = [torch_figures(t, local_ceiling)
                      for t, (_, torch_figures) in zip(times[1:], runners[1:])]
      best = max(range(len(row["torch"])), key=lambda k: row["torch"][k]["tokens_per_s"])
      row["ratio_vs_torch"] = row["tokens_per_s"] / row["torch"][best]["tokens_per_s"]
      row["turn_ratio_vs_torch"] = turn_ratio(times[0], times[1 + best], args.turn)
      row["bound_vs_torch"] = bound_ratio(row["torch"][best]["median_s"], row["live_flops"],
                                          max(ceiling["gflops"], local_ceiling))
    rows.append(row)
  return rows


def turn_ratio(ours: list[float], theirs: list[float], turn: int) -> float:
  """The median over turns of their median call time over ours in the same turn (`turn` calls
  each, as `time_interleaved` takes them): how many times faster ours is, each turn's machine
  speed cancelling in its own ratio."""
  turns = [slice(start, start + turn) for start in range(0, len(ours), turn)]
  return float(np.median([np.median(theirs[t]) / np.median(ours[t]) for t in turns]))


def bound_ratio(torch_step_s: float, live_flops: float, ceiling_gflops: float) -> float:
  """ours/best torch for a step that did nothing but its live matmul FLOPs (`matmul_flops`), all at
  the run's best ceiling. Beating it needs matmuls faster than the ceiling's square matmul; XLA's
  in the d_model 512 steps came close (174-196 GFLOP/s against ceilings of 182-196)."""
  return torch_step_s * ceiling_gflops * 1e9 / live_flops


def attention_section(args, ceiling: dict) -> list[dict]:
  """Each attention variant in the LEGO encoder at one size (the middle of --d-models), the three
  steps taking turns: timed apart, run-to-run drift had LEGO attention slower than vanilla."""
  middle = len(args.d_models) // 2
  d_model, length = args.d_models[middle], args.seq_lens[middle]
  runners = [step_runner(*lego_setup(d_model, length, args, attention))
             for attention in ("vanilla", "lego", "conv_qkv")]
  times, local_ceiling = time_with_ceiling([run for run, _ in runners], ceiling, args)
  return [{**figures(t, local_ceiling), "ceiling_gflops": local_ceiling}
          for t, (_, figures) in zip(times, runners)]


# -- generators and decoding -----------------------------------------------------------------------

def generator_section(args, ceiling: float) -> list[dict]:
  """Each study's task generator at the study's config, against the train step it feeds."""
  rows = []
  for name, config, study in study_setups(args):
    size = config.batch_size
    gen = summary(time_calls(lambda i: study.batch("train", i, size), args.warmup, args.repeats))
    step = measure_step(config, study, args, ceiling)
    rows.append({"task": name, "batch": size, "examples_per_s": size / gen["median_s"],
                 "generator": gen, "step_median_s": step["median_s"],
                 "pct_of_step": 100 * gen["median_s"] / step["median_s"]})
  return rows


def decoding_section(args) -> dict:
  """Greedy decoding (KV cache) of the arithmetic study's decoder, EOS ignored so every row runs
  the full length."""
  config = arithmetic_configs.get_config(args.task_config or None)
  study = ArithmeticStudy(config)
  trainer = train.build_trainer(config, study)
  model = trainer.model(trainer.init()["params"])
  size = config.batch_size
  batch = study.task.batch(config.seed, "test", GRID_STEP, size, length=study.grid_len)
  generate = lambda _: greedy_generate(model, batch["inputs"], batch["prompt_length"],
                                       study.max_new)
  stats = summary(time_calls(generate, args.warmup, args.repeats))
  return {**stats, "batch": size, "prompt_length": study.grid_len, "new_tokens": study.max_new,
          "tokens_per_s": size * study.max_new / stats["median_s"]}


# -- the command -----------------------------------------------------------------------------------

def run(args) -> dict:
  skip_torch = None if args.torch else "--no-torch"
  skip_torch = skip_torch or torch_missing()
  ceiling = matmul_ceiling(args.matmul_sizes, args.warmup, args.repeats)
  result = {"machine": machine(), "args": vars(args), "matmul_ceiling": ceiling}
  result["train"] = train_section(args, ceiling, skip_torch)
  result["torch_skipped"] = skip_torch
  if not args.train_only:
    result["attention"] = attention_section(args, ceiling)
    result["generators"] = generator_section(args, ceiling["gflops"])
    result["decoding"] = decoding_section(args)
  return result


def machine() -> dict:
  return {"platform": platform.platform(), "processor": platform.processor(),
          "jax": jax.__version__, "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()]}


def table(result: dict) -> str:
  c = result["matmul_ceiling"]
  lines = [f"float32 matmul ceiling (XLA): {c['gflops']:.1f} GFLOP/s  ("
           + ", ".join(f"n={n}: {s['gflops']:.1f}" for n, s in c["by_size"].items()) + ")", "",
           "train step          layers d_model   T  batch  k  ms/step  spread  tokens/s  GFLOP/s"
           "  %ceil  torch tokens/s (eager, compiled)  ours/best torch  per turn  bound"
           "  ceiling GFLOP/s  steal %"]
  for r in result["train"]:
    torch_part = ("  " + ", ".join(f"{t['tokens_per_s']:.0f}" for t in r["torch"]).rjust(32)
                  + f"  {r['ratio_vs_torch']:15.2f}  {r['turn_ratio_vs_torch']:8.2f}"
                  + f"  {r['bound_vs_torch']:5.2f}"
                  if "torch" in r else "")
    lines.append(f"{r['model']:<18}  {r['layers']:6d} {r['d_model']:7d} {r['length']:3d}"
                 f"  {r['batch']:5d} {r['steps_per_call']:2d}"
                 f"  {1e3 * r['median_s']:7.2f}  {r['spread']:6.2f}  {r['tokens_per_s']:8.0f}"
                 f"  {r['gflops']:7.1f}  {r['pct_ceiling']:5.1f}" + torch_part
                 + f"  {r['ceiling_gflops']:15.1f}" + _steal_column(r.get("steal_pct")))
  if result["torch_skipped"]:
    lines.append(f"PyTorch comparison skipped: {result['torch_skipped']}")
  if "attention" not in result:  # --train-only
    return "\n".join(lines)
  lines += ["", "attention   d_model   T   median ms  spread  matmul GFLOP  XLA GFLOP  ceiling"
                "  %ceil"]
  for r in result["attention"]:
    lines.append(f"{r['attention']:<10}  {r['d_model']:7d} {r['length']:3d}  {1e3 * r['median_s']:10.2f}"
                 f"  {r['spread']:6.2f}  {r['flops'] / 1e9:12.3f}  {r['xla_flops'] / 1e9:9.3f}"
                 f"  {r['ceiling_gflops']:7.1f}  {r['pct_ceiling']:5.1f}")
  lines += ["", "generator   batch  examples/s  median ms  spread  step ms  % of step"]
  for r in result["generators"]:
    g = r["generator"]
    lines.append(f"{r['task']:<10}  {r['batch']:5d}  {r['examples_per_s']:10.0f}"
                 f"  {1e3 * g['median_s']:9.2f}  {g['spread']:6.2f}  {1e3 * r['step_median_s']:7.2f}"
                 f"  {r['pct_of_step']:9.2f}")
  d = result["decoding"]
  lines += ["", f"greedy decoding (arithmetic decoder): {d['tokens_per_s']:.0f} tokens/s  (batch "
            f"{d['batch']}, prompt {d['prompt_length']}, {d['new_tokens']} new tokens, median "
            f"{1e3 * d['median_s']:.1f} ms, spread {d['spread']:.2f})"]
  return "\n".join(lines)


def _steal_column(pct: float | None) -> str:
  return "        -" if pct is None else f"  {pct:7.1f}"


TINY = dict(d_models=[32], seq_lens=[16], layers=2, batch=4, repeats=3, warmup=1,
            matmul_sizes=[128], task_config="smoke", torch_threads=1, torch_compile=False)


def parse_args(argv=None) -> argparse.Namespace:
  ints = lambda s: [int(x) for x in s.split(",")]
  parser = Parser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--d-models", type=ints, default=[128, 256, 512])
  parser.add_argument("--seq-lens", type=ints, default=[64, 128, 256],
                      help="sequence length of each d_model (LEGO: the closest chain, <= 132)")
  parser.add_argument("--layers", type=at_least(1), default=4)
  parser.add_argument("--batch", type=at_least(1), default=16, help="train-step batch size")
  parser.add_argument("--vocab", type=at_least(1), default=128, help="decoder vocabulary")
  parser.add_argument("--repeats", type=at_least(1), default=10)
  parser.add_argument("--warmup", type=at_least(0), default=2, help="untimed calls before timing")
  parser.add_argument("--turn", type=at_least(1), default=3,
                      help="timed calls each compared step makes before the next takes its turn")
  parser.add_argument("--settle", type=at_least(0), default=1,
                      help="untimed calls opening each turn (--turn=1 --settle=0: call by call)")
  parser.add_argument("--matmul-sizes", type=ints, default=[1024, 2048])
  parser.add_argument("--task-config", default="",
                      help="config variant of each study for generators and decoding (e.g. smoke)")
  parser.add_argument("--no-torch", dest="torch", action="store_false")
  parser.add_argument("--no-torch-compile", dest="torch_compile", action="store_false",
                      help="time PyTorch eager only, not also under torch.compile")
  parser.add_argument("--torch-threads", type=at_least(0), default=0,
                      help="PyTorch intra-op threads; 0: its default (one per core)")
  parser.add_argument("--train-only", action="store_true",
                      help="the ceiling and the train-step rows only (no attention, generators, decoding)")
  parser.add_argument("--tiny", action="store_true", help="tiny sizes and few repeats: a check, not a measurement")
  parser.add_argument("--out", help="write the JSON result here")
  if parser.parse_known_args(argv)[0].tiny:
    parser.set_defaults(**TINY)  # flags given explicitly still win
  args = parser.parse_args(argv)
  if len(args.d_models) != len(args.seq_lens):
    parser.error("--d-models and --seq-lens need the same number of entries")
  return args


def main(argv=None):
  args = parse_args(argv)
  host_memory.keep_freed_memory()  # as the experiments do; before JAX starts its threads
  result = run(args)
  print(table(result), flush=True)
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
