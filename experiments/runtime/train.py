"""`train_and_evaluate(config, workdir, study)`: the one training loop every study shares.

Shapes first (`nnx.eval_shape`), then a jitted init; the hot step is a pure function of
(train state, batch), jitted once with the state donated. Each compiled call runs
`config.steps_per_call` steps: a scan over that many stacked batches, bit-identical to single
steps, with fewer Python dispatches per step; no call crosses a log, eval or checkpoint step. The
model is split into a static graph and a parameter pytree once; it is merged back inside the jitted
functions only. Batches are a pure function of (seed, split, step), so a resumed run sees exactly
the batches it would have seen.

Sharding is configuration (`config.mesh`, `config.sharding_rules`, see sharding.py): the init
materialises the state already placed, the step is jitted with those placements in and out, and each
process draws and feeds only its own rows of the global batch. SIGTERM saves a checkpoint and stops.
While a run trains, its process 0 holds the workdir's lock (workdir_lock.py): one live run per workdir.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import re
import time
from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils

from experiments.runtime import checkpoints as ckpt_lib
from experiments.runtime import preemption
from experiments.runtime import sharding as sharding_lib
from experiments.runtime import workdir_lock
from experiments.runtime.metric_log import MetricWriter, read_jsonl
from models import Transformer
from models.transformer import num_params

Batch = dict[str, np.ndarray]


class Study(Protocol):
  """What a study (experiments.STUDIES) plugs into the loop and its entry point (runtime/entry.py)."""

  def model_fields(self) -> dict[str, Any]:
    """Model fields the task fixes (vocab_size, num_outputs, max_len, causal)."""

  def batch(self, split: str, step: int, batch_size: int, rows: slice | None = None) -> Batch:
    """Rows `rows` (default all) of batch `step` of `split`; a pure function of its arguments,
    equal to the whole batch's rows[rows], drawn without the other rows (tasks.rows)."""

  def loss(self, logits: jax.Array, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Scalar training loss and per-step metrics; traced inside the jitted step."""

  def eval_sums(self, logits: jax.Array, batch: Batch) -> dict[str, jax.Array]:
    """Counts summed over the batch; traced inside the jitted eval step."""

  def summarize(self, sums: dict[str, np.ndarray]) -> dict[str, float]:
    """Eval metrics from the summed counts of the whole eval set."""

  def headline(self, metrics: dict[str, float]) -> str:
    """A short progress-line summary of eval metrics."""

  def report(self, workdir: str, metrics: dict[str, Any]) -> Any:
    """Once a run has finished (not when preempted): the study's own results from the final
    metrics its train function returned (tables on stdout, files in the workdir)."""


TRAIN_FIELDS = dict(
    seed=0, batch_size=128, num_steps=1000, learning_rate=1e-3, warmup_steps=100,
    final_lr_ratio=0.0, weight_decay=0.01, b1=0.9, b2=0.98, grad_clip=1.0,
    log_every=50, eval_every=250, checkpoint_every=500, eval_size=1024, steps_per_call=1,
    checkpoint_keep=3)  # the newest checkpoints kept; more keep a run's history for analysis


def train_fields(**overrides) -> dict[str, Any]:
  return {**TRAIN_FIELDS, **sharding_lib.mesh_fields(), **overrides}


@dataclasses.dataclass(frozen=True)
class Bound:
  """The values a train field allows: from `low` up to `high` (None: no end), each a number or
  another field's name, and included unless open. A float field must also be finite (a field's
  kind is its default's in TRAIN_FIELDS)."""
  low: float | str
  high: float | str | None = None
  low_open: bool = False
  high_open: bool = False

  def limits(self, config) -> tuple[float, float | None]:
    value = lambda end: config[end] if isinstance(end, str) else end
    return value(self.low), value(self.high)

  def allows(self, value, config) -> bool:
    low, high = self.limits(config)
    if isinstance(value, float) and not math.isfinite(value):
      return False
    return ((value > low if self.low_open else value >= low)
            and (high is None or (value < high if self.high_open else value <= high)))

  def describe(self, field: str, config) -> str:
    """e.g. ">= 1", "> 0", "0 <= b1 < 1", "0 <= warmup_steps < num_steps=30"."""
    end = lambda e: f"{e}={config[e]}" if isinstance(e, str) else f"{e}"
    if self.high is None:
      return f"{'>' if self.low_open else '>='} {end(self.low)}"
    return (f"{end(self.low)} {'<' if self.low_open else '<='} {field} "
            f"{'<' if self.high_open else '<='} {end(self.high)}")


# What each train field allows; validate() checks them and the tests generate values just outside.
TRAIN_BOUNDS = dict(
    seed=Bound(0), batch_size=Bound(1), num_steps=Bound(1),
    learning_rate=Bound(0, low_open=True),
    warmup_steps=Bound(0, "num_steps", high_open=True),  # warmup ends inside the run
    final_lr_ratio=Bound(0, 1),  # the schedule's end, a fraction of learning_rate
    weight_decay=Bound(0), b1=Bound(0, 1, high_open=True), b2=Bound(0, 1, high_open=True),
    grad_clip=Bound(0, low_open=True), log_every=Bound(1), eval_every=Bound(1),
    checkpoint_every=Bound(1), eval_size=Bound(1), steps_per_call=Bound(1),
    checkpoint_keep=Bound(1))


def validate(config: ml_collections.ConfigDict) -> None:
  """One line naming the first train field whose value makes no sense, and what it allows."""
  for name, bound in TRAIN_BOUNDS.items():
    if not bound.allows(config[name], config):
      kind = " (finite)" if isinstance(TRAIN_FIELDS[name], float) else ""
      raise ValueError(f"{name}: {config[name]}; allowed: {bound.describe(name, config)}{kind}")
  if config.eval_size % config.batch_size and config.eval_size > config.batch_size:
    raise ValueError(f"eval_size: {config.eval_size} is not a multiple of "
                     f"batch_size={config.batch_size}")


def masked_cross_entropy(logits, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean cross-entropy over the tokens `batch["weights"]` selects, and their argmax accuracy."""
  weights = batch["weights"]
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
  total = jnp.maximum(weights.sum(), 1.0)
  loss = (losses * weights).sum() / total
  correct = (logits.argmax(-1) == batch["targets"]) * weights
  return loss, {"loss": loss, "token_accuracy": correct.sum() / total}


def resolved_model_config(config, study: Study) -> ml_collections.ConfigDict:
  model = ml_collections.ConfigDict(config.model.to_dict())
  model.update(study.model_fields())
  return model


def make_optimizer(config) -> optax.GradientTransformation:
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, config.learning_rate, config.warmup_steps, config.num_steps,
      end_value=config.learning_rate * config.final_lr_ratio)
  decay_matrices_only = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
  return optax.chain(
      optax.clip_by_global_norm(config.grad_clip),
      optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay,
                  mask=decay_matrices_only))


@dataclasses.dataclass
class Trainer:
  """The jitted pieces of one run, built from shapes alone."""
  graphdef: Any
  optimizer: optax.GradientTransformation
  study: Study
  init: Callable[[], dict]
  train_step: Callable[[dict, Batch], tuple[dict, dict]]
  train_steps: Callable[[dict, Batch], tuple[dict, dict]]  # stacked batches [n, B, ...]: n steps
  eval_step: Callable[[dict, Batch], dict]
  abstract_state: dict  # ShapeDtypeStructs carrying their shardings
  mesh: jax.sharding.Mesh
  batch_sharding: jax.sharding.NamedSharding
  stacked_sharding: jax.sharding.NamedSharding  # of train_steps' batches

  def model(self, params) -> Transformer:
    """A concrete model for evaluation or probing (outside the hot path)."""
    return nnx.merge(self.graphdef, params)

  def batch(self, split: str, step: int, batch_size: int) -> dict[str, jax.Array]:
    """Batch `step` as sharded global arrays, of which this process draws only the rows it holds."""
    rows = sharding_lib.process_rows(self.batch_sharding, batch_size)
    return sharding_lib.global_batch(self.study.batch(split, step, batch_size, rows),
                                     self.batch_sharding, batch_size)

  def batches(self, split: str, first: int, count: int, batch_size: int) -> dict[str, jax.Array]:
    """Batches first..first+count-1 stacked [count, batch, ...], for `train_steps`."""
    rows = sharding_lib.process_rows(self.batch_sharding, batch_size)
    local = [self.study.batch(split, step, batch_size, rows) for step in range(first, first + count)]
    stacked = {k: np.stack([b[k] for b in local]) for k in local[0]}
    return {k: jax.make_array_from_process_local_data(self.stacked_sharding, v,
                                                      (count, batch_size, *v.shape[2:]))
            for k, v in stacked.items()}


def build_trainer(config, study: Study) -> Trainer:
  model_config = resolved_model_config(config, study)
  make_model = lambda: Transformer(model_config, rngs=nnx.Rngs(config.seed))
  abstract_model = nnx.eval_shape(make_model)
  graphdef, _ = nnx.split(abstract_model)
  optimizer = make_optimizer(config)

  def init():
    params = nnx.to_pure_dict(nnx.state(make_model(), nnx.Param))
    return {"step": jnp.zeros((), jnp.int32), "params": params,
            "opt_state": optimizer.init(params)}

  def apply(params, batch):
    return nnx.merge(graphdef, params)(batch["inputs"], **_model_kwargs(batch))

  def loss_fn(params, batch):
    """The study's loss, plus a mixture of experts' load-balancing loss (logged apart)."""
    logits, _, balance = nnx.merge(graphdef, params).forward(batch["inputs"],
                                                             **_model_kwargs(batch))
    loss, metrics = study.loss(logits, batch)
    if not model_config.experts:
      return loss, metrics
    return loss + model_config.moe_loss_weight * balance, {**metrics, "moe_balance_loss": balance}

  def train_step(state, batch):
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {**metrics, "grad_norm": optax.tree.norm(grads)}
    return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, metrics

  def train_steps(state, batches):
    """One step per batch of the stack, in order; metrics stacked per step."""
    return jax.lax.scan(train_step, state, batches)

  def eval_step(state, batch):
    return study.eval_sums(apply(state["params"], batch), batch)

  # Shapes first, then shardings from the parameters' logical axes and the config's rules.
  defaults = sharding_lib.mesh_fields()  # for configs saved before sharding was configurable
  mesh = sharding_lib.make_mesh(config.get("mesh", defaults["mesh"]))
  rules = config.get("sharding_rules", defaults["sharding_rules"])
  abstract_state = jax.eval_shape(init)
  logical = nnx.to_pure_dict(nnx.get_partition_spec(nnx.state(abstract_model, nnx.Param)))
  params_sharding = sharding_lib.param_shardings(logical, abstract_state["params"], rules, mesh)
  state_sharding = sharding_lib.state_shardings(abstract_state, params_sharding, mesh)
  batch_sharding = sharding_lib.batch_sharding(rules, mesh)
  sharding_lib.check_batch("batch_size", config.batch_size, batch_sharding)
  sharding_lib.check_batch("eval batch (min(eval_size, batch_size))",
                           min(config.eval_size, config.batch_size), batch_sharding)
  stacked_sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(None, *batch_sharding.spec))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return Trainer(
      graphdef=graphdef, optimizer=optimizer, study=study,
      init=jax.jit(init, out_shardings=state_sharding),
      train_step=jax.jit(train_step, in_shardings=(state_sharding, batch_sharding),
                         out_shardings=(state_sharding, replicated), donate_argnums=0),
      train_steps=jax.jit(train_steps, in_shardings=(state_sharding, stacked_sharding),
                          out_shardings=(state_sharding, replicated), donate_argnums=0),
      eval_step=jax.jit(eval_step, in_shardings=(state_sharding, batch_sharding),
                        out_shardings=replicated),
      abstract_state=jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                  abstract_state, state_sharding),
      mesh=mesh, batch_sharding=batch_sharding, stacked_sharding=stacked_sharding)


def _model_kwargs(batch: Batch) -> dict:
  """Optional model inputs a study may put in its batches."""
  return {k: batch[k] for k in ("positions", "key_mask") if k in batch}


def evaluate(trainer: Trainer, state, eval_batches: list[Batch]) -> dict[str, float]:
  sums = None
  for batch in eval_batches:
    out = trainer.eval_step(state, batch)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  return trainer.study.summarize(jax.tree.map(np.asarray, sums))


def eval_set(config, trainer: Trainer) -> list[dict[str, jax.Array]]:
  """The fixed held-out batches evaluated throughout the run."""
  size = min(config.eval_size, config.batch_size)
  return [trainer.batch("test", i, size) for i in range(max(1, config.eval_size // size))]


class SetupError(ValueError):
  """Bad configuration or workdir, found before any training step; reported in one line."""


class RunError(RuntimeError):
  """A fault during the run (the disk filled up, the loss diverged, ...), reported in one line."""


class NonFiniteLoss(RunError):
  """The loss became nan or inf: the run diverged."""


def _check_finite(loss: float, step: int) -> None:
  if not np.isfinite(loss):
    raise NonFiniteLoss(f"loss became {loss} at step {step}")


def _after_divergence(config, workdir: str) -> str:
  """What to rerun after a divergence: gentler optimizer settings, from the last checkpoint."""
  gentler = (f"a lower --config.learning_rate (now {config.learning_rate:g}), longer "
             f"--config.warmup_steps (now {config.warmup_steps}) or a smaller --config.grad_clip "
             f"(now {config.grad_clip:g})")
  latest = _latest_step(workdir)
  if latest is None:
    return f"no checkpoint was saved before it: rerun with {gentler} to start afresh"
  return (f"rerun with {gentler} to resume from its last checkpoint, step {latest} (or in a new "
          "workdir to start afresh)")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, study: Study,
                       print_fn: Callable[[str], None] = functools.partial(print, flush=True),
                       stop_at: int | None = None,
                       init_params: Callable[[Trainer], Any] | None = None) -> dict:
  """Trains (resuming from the latest checkpoint in `workdir`), evaluates, logs, checkpoints.

  `stop_at` ends this process's share of the run early, with a checkpoint, as a preemption would;
  rerunning with the same workdir continues exactly where it stopped. `init_params(trainer)`, called
  only when the workdir holds no checkpoint, gives the starting parameters (e.g. a pretraining stage).

  Returns {"metrics": final eval metrics, "state": final train state, "trainer": Trainer,
  "preempted": whether SIGTERM stopped it}. Of several processes, only process 0 prints and logs.
  """
  if jax.process_index() > 0:
    print_fn = lambda *_: None
  try:
    validate(config)
    trainer = build_trainer(config, study)
  except ValueError as e:
    raise SetupError(str(e)) from None
  with _open_workdir(workdir):
    return _train(config, workdir, study, trainer, print_fn, stop_at, init_params)


@contextlib.contextmanager
def _open_workdir(workdir: str):
  """Process 0 creates the workdir and holds its lock while the run trains; every process learns
  whether it could. The processes of a multi-process run are one run sharing one workdir (Orbax
  writes it collectively), so one lock stands for all of them, and a second run's processes all
  stop when its process 0 is refused."""
  lock, error = None, None
  if jax.process_index() == 0:
    try:
      lock = workdir_lock.RunLock(workdir)
    except ValueError as e:
      error = str(e)
  if jax.process_count() > 1 and multihost_utils.broadcast_one_to_all(np.int32(error is not None)):
    error = error or f"workdir: process 0 could not open {workdir} for training (it says why)"
  if error is not None:
    raise SetupError(error)
  try:
    yield
  finally:
    if lock:
      lock.release()


def _train(config, workdir: str, study: Study, trainer: Trainer, print_fn, stop_at,
           init_params) -> dict:
  """train_and_evaluate's run, once the workdir is held."""
  try:
    ckpt_lib.check_workdir_config(workdir, config)
    checkpoints = ckpt_lib.Checkpoints(workdir, every=config.checkpoint_every,
                                       keep=config.checkpoint_keep)
    start = checkpoints.latest_step()
    state = trainer.init() if start is None else checkpoints.restore(trainer.abstract_state)
    writer = MetricWriter(workdir, resume_step=start)  # damaged logs are found here
    elapsed = _elapsed_at(workdir, start or 0)
  except ValueError as e:
    raise SetupError(str(e)) from None
  except OSError as e:  # a write failing before the first step (the disk is full, ...)
    raise RunError(f"{e.strerror or e}: {e.filename or workdir}, before the first step; fix this "
                   "and rerun") from None
  if start is None and init_params is not None:
    state = _start_from(trainer, state, init_params(trainer))
  resumed, start = start is not None, start or 0
  evals = eval_set(config, trainer)
  if start == 0:
    n = num_params(trainer.model(state["params"]))
    print_fn(f"model: {n:,} parameters; training {config.num_steps} steps of {config.batch_size}")
  else:
    print_fn(f"resuming from checkpoint at step {start} in {workdir}")

  metrics = {}
  if start == 0 or start == config.num_steps:
    metrics = evaluate(trainer, state, evals)
    if not resumed:  # a finished run's log already holds its last evaluation
      writer.write(start, {f"eval/{k}": v for k, v in metrics.items()}, train_seconds=elapsed)
  # per-step train metrics of the steps not yet logged, in chunks of one call's steps
  window = writer.window(start)
  pending = [_stacked(window)] if window else []
  window_start, window_steps = time.perf_counter(), 0
  end = config.num_steps if stop_at is None else min(stop_at, config.num_steps)
  preempt, preempted, done = preemption.Preemption(), False, start
  try:
    try:
      for first, count in call_schedule(config, start, end):
        state, call_metrics = trainer.train_steps(
            state, trainer.batches("train", first, count, config.batch_size))
        pending.append(call_metrics)
        window_steps += count
        done = first + count
        if done % config.log_every == 0 or done == config.num_steps:
          train = _mean_metrics(pending)
          pending = []
          _check_finite(train["loss"], done)
          now = time.perf_counter()
          rate = window_steps / (now - window_start)
          elapsed += now - window_start
          window_start, window_steps = now, 0
          line = f"step {done}/{config.num_steps} | loss {train['loss']:.4f}"
          if done % config.eval_every == 0 or done == config.num_steps:
            metrics = evaluate(trainer, state, evals)
            writer.write(done, {f"eval/{k}": v for k, v in metrics.items()}, train_seconds=elapsed)
            line += f" | {study.headline(metrics)}"
            window_start = time.perf_counter()  # evaluation time is not training time
          writer.write(done, {f"train/{k}": v for k, v in train.items()} | {"steps_per_sec": rate},
                       train_seconds=elapsed)
          print_fn(f"{line} | {rate:.1f} steps/s | {elapsed:.0f}s")
        # every step asks: several processes agree on a stop step, which a call may pass
        preempted = any([preempt.reached(s) for s in range(first + 1, done + 1)])
        force = done == end or preempted
        if force or checkpoints.due(done):
          if pending:  # no checkpoint holds a diverged run
            _check_finite(_mean_metrics(pending)["loss"], done)
          # the logs reach the disk before the checkpoint commits
          writer.flush(done, _per_step(pending))
          checkpoints.save(done, state, force=force)
        if preempted:
          print_fn(f"preempted: saved a checkpoint at step {done}; rerun to resume")
          break
    finally:
      preempt.close()
      writer.close()
      checkpoints.close()
  except NonFiniteLoss as e:
    raise RunError(f"{e} in {workdir}: the run diverged; {_after_divergence(config, workdir)}"
                   ) from None
  except (OSError, ValueError) as e:
    reason = _disk_fault(e)
    if reason is None:
      raise
    latest = _latest_step(workdir)
    then = ("no checkpoint is complete yet: fix this and rerun to start afresh" if latest is None
            else f"the last complete checkpoint, step {latest}, is intact: fix this and rerun to "
            "resume from it")
    raise RunError(f"{reason} in {workdir} at step {done}; {then}") from None
  return {"metrics": metrics, "state": state, "trainer": trainer, "preempted": preempted}


def _disk_fault(error: Exception) -> str | None:
  """The OS's reason when `error` is a failed write (Orbax's tensorstore writes raise ValueErrors
  carrying the OS error code), else None."""
  if isinstance(error, OSError):
    return error.strerror or str(error)
  code = re.search(r"\[os_error_code='?(\d+)", str(error))
  return os.strerror(int(code.group(1))) if code else None


def _latest_step(workdir: str) -> int | None:
  """The newest committed checkpoint on disk (Orbax's own list may hold the failed one)."""
  names = os.listdir(os.path.join(workdir, "checkpoints"))
  return max((int(n) for n in names if n.isdigit()), default=None)


def _start_from(trainer: Trainer, state, params):
  """A fresh state holding `params` and a fresh optimizer state, placed as `state` is."""
  fresh = {**state, "params": params, "opt_state": trainer.optimizer.init(params)}
  return jax.device_put(fresh, jax.tree.map(lambda a: a.sharding, state))


def compile_only(config: ml_collections.ConfigDict, study: Study,
                 print_fn: Callable[[str], None] = print) -> dict[str, int]:
  """Lowers and compiles the train step for `config.mesh` without running it.

  Prints XLA's per-device memory estimate, so a pod run's sharding and memory errors show up first on
  a laptop (with the mesh simulated on CPU devices). Returns the byte counts.
  """
  try:
    validate(config)
    trainer = build_trainer(config, study)
  except ValueError as e:
    raise SetupError(str(e)) from None
  example = study.batch("train", 0, config.batch_size)
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=trainer.batch_sharding)
           for k, v in example.items()}
  memory = trainer.train_step.lower(trainer.abstract_state, batch).compile().memory_analysis()
  sizes = {"arguments": memory.argument_size_in_bytes, "outputs": memory.output_size_in_bytes,
           "temporaries": memory.temp_size_in_bytes, "donated": memory.alias_size_in_bytes}
  sizes["total"] = sizes["arguments"] + sizes["outputs"] + sizes["temporaries"] - sizes["donated"]
  mesh = ", ".join(f"{k}={v}" for k, v in trainer.mesh.shape.items())
  device = trainer.mesh.devices.flat[0]
  print_fn(f"compiled the train step for mesh {mesh} ({trainer.mesh.size} {device.platform} "
           f"devices), batch {config.batch_size}")
  print_fn("memory per device: " + ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in sizes.items()))
  return sizes


def call_schedule(config, start: int, end: int):
  """(first step, step count) of each compiled call from `start` to `end`: `steps_per_call` steps,
  fewer where a log, eval or checkpoint step or the end comes first, so none falls inside a call."""
  step = start
  while step < end:
    boundary = min(step + every - step % every
                   for every in (config.log_every, config.eval_every, config.checkpoint_every))
    count = min(config.steps_per_call, boundary - step, end - step)
    yield step, count
    step += count


def _concatenated(chunks: list[dict]) -> dict[str, np.ndarray]:
  """Per-step metrics, fetched from chunks of stacked [steps] arrays (one chunk per call)."""
  chunks = jax.device_get(chunks)
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _mean_metrics(chunks: list[dict]) -> dict[str, float]:
  return {k: float(np.mean(v)) for k, v in _concatenated(chunks).items()}


def _per_step(chunks: list[dict]) -> list[dict]:
  metrics = _concatenated(chunks) if chunks else {}
  return [dict(zip(metrics, values)) for values in zip(*metrics.values())]


def _stacked(steps: list[dict]) -> dict[str, np.ndarray]:
  return {k: np.array([m[k] for m in steps], np.float32) for k in steps[0]}


def _elapsed_at(workdir: str, step: int) -> float:
  """Training seconds already spent up to `step`, from the metrics log of earlier attempts."""
  path = os.path.join(workdir, "metrics.jsonl")
  if step == 0 or not os.path.exists(path):
    return 0.0
  times = [r.get("train_seconds", 0.0) for r in read_jsonl(path) if r["step"] <= step]
  return max(times, default=0.0)
