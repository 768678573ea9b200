"""The knowledge study's Studies: bioS (with its QA evaluation) and bioD for the shared train loop,
one per stage (stages.py runs them), and the report of a whole run.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.knowledge import capacity as capacity_lib
from experiments.knowledge import plots, probes
from experiments.runtime import train
from tasks import rows as rows_lib
from tasks.biod import BioDTask
from tasks.biography import ATTRIBUTES, KIND_DOMAIN, KIND_NAME, KIND_VALUE, BioSTask

STAGES = ("pretrain", "finetune")
PEOPLE_SPLITS = ("P_train", "P_test")


class _Biographies:
  """What both studies share: the decoder's fields, the loss, and the report of a whole run, from
  every stage's results (the metrics stages.train_and_evaluate returns)."""

  def model_fields(self):
    size = len(self.task.vocab)
    return {"vocab_size": size, "num_outputs": size, "max_len": self.task.window, "causal": True}

  def loss(self, logits, batch):
    return train.masked_cross_entropy(logits, batch)

  def report(self, workdir: str, results: dict, print_fn=print) -> None:
    """Capacity, QA and probe tables on stdout; results.json, the sweep's metrics record and plots
    in the workdir."""
    cap = results["capacity"]
    print_fn(f"capacity: {cap['bits']:,.0f} bits of at most {cap['max_bits']:,.0f} "
             f"(p1 {cap['p1']:.2f} nats/name, p2 {cap['p2']:.2f} nats/person) over "
             f"{cap['params']:,} parameters = {cap['bits_per_param']:.4f} bits/param")
    for precision in ("int8", "int4"):
      if f"capacity_{precision}" in results:
        print_fn(f"capacity {precision}: {results[f'capacity_{precision}']['bits_per_param']:.4f} "
                 "bits/param")
    qa = results.get("qa", {})
    attributes = [k.split("/")[1] for k in qa if k.startswith("P_train/")]
    if qa:
      print_fn(f"{'QA exact match':<16}" + "".join(f"{a:>14}" for a in attributes) + f"{'mean':>8}")
    for split in PEOPLE_SPLITS if qa else ():
      print_fn(f"{split:<16}" + "".join(f"{qa[f'{split}/{a}']:>14.3f}" for a in attributes)
               + f"{qa[split]:>8.3f}")
    if "probe" in results:
      probes.print_table(results["probe"], print_fn)
    if jax.process_index() == 0:
      save_results(workdir, results, sweep_record(results))
      if qa:
        plots.qa_by_attribute(qa, os.path.join(workdir, "qa_accuracy.png"))
      if "probe" in results:
        plots.probe_heatmap(results["probe"], os.path.join(workdir, "p_probe.png"))


def save_results(workdir: str, results: dict, record: dict) -> None:
  """A finished run's results.json, and its figures as the one record of metrics.jsonl (what
  launch.sweep tabulates)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.write(json.dumps(record) + "\n")


def people_halves(task, seed: int, splits: tuple[str, str], step: int, batch_size: int, rows=None):
  """An eval batch of `task`: half its rows from splits[0] (P_train people, is_test 0), half from
  splits[1] (P_test people, is_test 1), one question per row."""
  sizes = [batch_size // 2, batch_size - batch_size // 2]

  def questions(split, is_test):
    def draw(part):
      out = task.batch(seed, split, step, sizes[is_test], part)
      return {**out, "is_test": np.full(len(out["inputs"]), is_test, np.int32)}
    return draw

  return rows_lib.stack([questions(split, i) for i, split in enumerate(splits)], sizes, rows)


class KnowledgeStudy(_Biographies):
  """bioS for the train loop; `stage` picks the training stream, eval is QA exact match."""

  def __init__(self, config, stage: str = "pretrain"):
    if stage not in STAGES:
      raise ValueError(f"stage: unknown {stage!r}; allowed: {', '.join(STAGES)}")
    self.seed = config.seed
    self.task = BioSTask(**config.task.to_dict())
    mixed = config.knowledge.mixed
    self.train_split = {"pretrain": "mixed" if mixed else "bio", "finetune": "qa_train"}[stage]

  def batch(self, split, step, batch_size, rows=None):
    if split == "train":
      return self.task.batch(self.seed, self.train_split, step, batch_size, rows)
    return people_halves(self.task, self.seed, ("qa_train", "qa_test"), step, batch_size, rows)

  def eval_sums(self, logits, batch):
    """Teacher-forced exact match per row: equal to greedy generation's exact match, since greedy
    decoding reproduces the answer iff every answer token is the argmax given the true prefix."""
    weights = batch["weights"] > 0
    exact = jnp.all((logits.argmax(-1) == batch["targets"]) | ~weights, axis=1)
    attribute = jnp.max(jnp.where(weights, batch["kind"], 0), axis=1) - KIND_VALUE
    cell = (jax.nn.one_hot(batch["is_test"], 2)[:, :, None]
            * jax.nn.one_hot(attribute, len(ATTRIBUTES))[:, None, :])  # [B, 2, A]
    return {"correct": jnp.einsum("bsa,b->sa", cell, exact), "count": cell.sum(0)}

  def summarize(self, sums):
    accuracy = sums["correct"] / np.maximum(sums["count"], 1)
    metrics = {}
    for s, split in enumerate(PEOPLE_SPLITS):
      asked = [a for a, name in enumerate(ATTRIBUTES) if name in self.task.attributes]
      for a in asked:
        metrics[f"qa/{split}/{ATTRIBUTES[a]}"] = float(accuracy[s, a])
      metrics[f"qa/{split}"] = float(accuracy[s, asked].mean())
    return metrics

  def headline(self, metrics):
    return f"QA exact P_train {metrics['qa/P_train']:.3f} P_test {metrics['qa/P_test']:.3f}"


class BioDStudy(_Biographies):
  """bioD(N, K, C, D, L, T) for the train loop: pretraining only; eval tracks the losses the
  capacity meter reads (name and value tokens, per person) on the first eval_size people."""

  def __init__(self, config):
    self.seed = config.seed
    self.task = BioDTask(**config.task.to_dict())

  def batch(self, split, step, batch_size, rows=None):
    if split == "train":
      return self.task.batch(self.seed, "bio", step, batch_size, rows)
    start, stop = rows_lib.bounds(rows, batch_size)
    return self.task.person_rows(self.seed, (step * batch_size + np.arange(start, stop))
                                 % self.task.people)

  def eval_sums(self, logits, batch):
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    is_name = batch["kind"] == KIND_NAME
    up_to_name = jnp.flip(jax.lax.cummax(jnp.flip(is_name, 1).astype(jnp.int32), axis=1), 1) > 0
    up_to_name = up_to_name & (batch["kind"] != KIND_DOMAIN)  # as the meter (capacity.py) counts
    is_value = batch["kind"] >= KIND_VALUE
    return {"name": (losses * up_to_name).sum(), "value": (losses * is_value).sum(),
            "people": jnp.float32(len(logits))}

  def summarize(self, sums):
    p1, p2 = sums["name"] / sums["people"], sums["value"] / sums["people"]
    per_person = capacity_lib.bits_stored([p1], [p2], self.task.value_space_bits(np.zeros(1)))
    return {"p1": float(p1), "p2": float(p2), "bits_per_person": per_person["bits"]}

  def headline(self, metrics):
    return f"p1 {metrics['p1']:.2f} p2 {metrics['p2']:.2f} nats/person"


def make_study(config, stage: str = "pretrain"):
  return BioDStudy(config) if config.knowledge.data == "biod" else KnowledgeStudy(config, stage)


def sweep_record(results: dict) -> dict:
  """The run's figures as one final-step metrics record, for launch.sweep's tables and its test
  of a finished run (the stages' own logs sit in their sub-workdirs)."""
  record = {"step": results["config"]["num_steps"]}
  for key in ("capacity", "capacity_int8", "capacity_int4"):
    if key in results:
      record.update({f"eval/{key}/{name}": results[key][name]
                     for name in ("bits_per_param", "bits", "p1", "p2")})
  record.update({f"eval/qa/{name}": value for name, value in results.get("qa", {}).items()})
  return record
