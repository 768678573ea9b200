"""The knowledge study ("Physics of LMs" 3.1 / 3.3): a GPT-2-style decoder learns bioS biographies.

Data: bioS (default) or bioD(N, K, C, D, L, T) (`knowledge.data`; bioD runs the pretraining stage
and the capacity meter only). Stages, each a run of the shared train loop in its own sub-workdir
(each resumes on its own):
  pretrain   biographies (or, with knowledge.mixed, biographies mixed with P_train QA pairs);
             then the capacity meter (float32, int8 and int4 weights) and the P-probes;
  finetune   QA pairs of P_train people, from the pretrained weights (skipped when mixed).
Finally exact-match QA accuracy by greedy generation, per attribute, on P_train and P_test.
Everything lands in <workdir>/results.json and a few plots.

    python -m experiments.knowledge --config=experiments/configs/knowledge.py --workdir=runs/knowledge
    python -m experiments.knowledge --config=experiments/configs/knowledge.py:smoke --workdir=/tmp/k
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from experiments import capacity as capacity_lib
from experiments import entry, knowledge_plots, probing_linear, train
from experiments.quantize import quantize_int4, quantize_int8
from models.decoding import greedy_generate
from models.transformer import num_params
from tasks import rows as rows_lib
from tasks.biod import BioDTask
from tasks.biography import ATTRIBUTES, KIND_DOMAIN, KIND_NAME, KIND_VALUE, BioSTask
from tasks.vocab import SEP

STAGES = ("pretrain", "finetune")
PEOPLE_SPLITS = ("P_train", "P_test")


class KnowledgeStudy:
  """bioS for the train loop; `stage` picks the training stream, eval is QA exact match."""

  def __init__(self, config, stage: str = "pretrain"):
    if stage not in STAGES:
      raise ValueError(f"stage: unknown {stage!r}; allowed: {', '.join(STAGES)}")
    self.seed = config.seed
    self.task = BioSTask(**config.task.to_dict())
    mixed = config.knowledge.mixed
    self.train_split = {"pretrain": "mixed" if mixed else "bio", "finetune": "qa_train"}[stage]

  def model_fields(self):
    size = len(self.task.vocab)
    return {"vocab_size": size, "num_outputs": size, "max_len": self.task.window, "causal": True}

  def batch(self, split, step, batch_size, rows=None):
    if split == "train":
      return self.task.batch(self.seed, self.train_split, step, batch_size, rows)
    # Eval: half P_train, half P_test questions, one per row.
    sizes = [batch_size // 2, batch_size - batch_size // 2]

    def questions(people, is_test):
      def draw(part):
        qa = self.task.batch(self.seed, people, step, sizes[is_test], part)
        return {**qa, "is_test": np.full(len(qa["inputs"]), is_test, np.int32)}
      return draw

    return rows_lib.stack([questions("qa_train", 0), questions("qa_test", 1)], sizes, rows)

  def loss(self, logits, batch):
    return train.masked_cross_entropy(logits, batch)

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


class BioDStudy:
  """bioD(N, K, C, D, L, T) for the train loop: pretraining only; eval tracks the losses the
  capacity meter reads (name and value tokens, per person) on the first eval_size people."""

  def __init__(self, config):
    self.seed = config.seed
    self.task = BioDTask(**config.task.to_dict())

  def model_fields(self):
    size = len(self.task.vocab)
    return {"vocab_size": size, "num_outputs": size, "max_len": self.task.window, "causal": True}

  def batch(self, split, step, batch_size, rows=None):
    if split == "train":
      return self.task.batch(self.seed, "bio", step, batch_size, rows)
    start, stop = rows_lib.bounds(rows, batch_size)
    return self.task.person_rows(self.seed, (step * batch_size + np.arange(start, stop))
                                 % self.task.people)

  def loss(self, logits, batch):
    return train.masked_cross_entropy(logits, batch)

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


def finetune_config(config) -> ml_collections.ConfigDict:
  """The pretraining config with the QA fine-tuning schedule in place of the training fields."""
  tuned = ml_collections.ConfigDict(config.to_dict())
  tuned.update(config.knowledge.finetune.to_dict())
  return tuned


def capacity_meter(trainer):
  """measure(params) -> the capacity dict; one jitted loss function for any params (float, int8)."""
  @jax.jit
  def token_losses(params, inputs, targets):
    logits = nnx.merge(trainer.graphdef, params)(inputs)
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets)

  def measure(params, task, seed: int) -> dict:
    fn = lambda rows: np.asarray(token_losses(params, rows["inputs"], rows["targets"]))
    return capacity_lib.measure(fn, task, seed, num_params(trainer.model(params)))
  return measure


def generate_answers(model, prompts, lengths, max_new: int, eos_id: int) -> np.ndarray:
  """Greedy continuations [B, max_new] of right-padded prompts, PAD after the first [SEP]."""
  return greedy_generate(model, prompts, lengths, max_new, eos_id=eos_id)


def qa_accuracy(model, task: BioSTask, seed: int, max_people: int, batch_size: int = 256) -> dict:
  """Exact-match accuracy of greedy answers, per attribute, on P_train and P_test people.

  Prompts and answers are padded to one shape for every attribute, so the decoder compiles once.
  """
  split = task.people_split(seed)
  width, max_new = task.max_qa_len, task.max_qa_len
  out = {}
  for name, key in zip(PEOPLE_SPLITS, ("train", "test")):
    people = split[key][:max_people]
    for attribute in task.attributes:
      correct = 0
      for start in range(0, len(people), batch_size):
        prompts, answers = task.qa_prompts(seed, people[start:start + batch_size], attribute)
        lengths = np.full(len(prompts), prompts.shape[1], np.int32)
        got = generate_answers(model, _pad(prompts, width), lengths, max_new,
                               task.vocab.id(SEP))
        correct += int(np.all(got == _pad(answers, max_new), axis=1).sum())
      out[f"{name}/{attribute}"] = correct / len(people)
    out[name] = float(np.mean([out[f"{name}/{a}"] for a in task.attributes]))
  return out


def _pad(rows: np.ndarray, width: int) -> np.ndarray:
  return np.pad(rows, ((0, 0), (0, width - rows.shape[1])))


def run(config, workdir: str, print_fn=functools.partial(print, flush=True)) -> dict:
  """All stages; returns (and writes to results.json) the capacity, probes and QA accuracy, or
  None when a stage stopped early (preempted)."""
  pretrain = make_study(config)
  task, seed = pretrain.task, config.seed
  print_fn(f"{config.knowledge.data}: {task}; {len(task.vocab)} tokens, windows of {task.window}")
  result = train.train_and_evaluate(config, os.path.join(workdir, "pretrain"), pretrain, print_fn)
  if _stopped_early(result, config, print_fn):
    return None
  trainer, params = result["trainer"], result["state"]["params"]
  results = {"config": json.loads(config.to_json()), "params": num_params(trainer.model(params))}
  measure = capacity_meter(trainer)
  results["capacity"] = measure(params, task, seed)
  if config.knowledge.quantize:
    results["capacity_int8"] = measure(quantize_int8(params), task, seed)
    group = config.knowledge.int4_group_size or None  # 0: one scale per channel
    results["capacity_int4"] = measure(quantize_int4(params, group), task, seed)
  biod = config.knowledge.data == "biod"  # no questions to ask, no probe targets
  if config.knowledge.probe_people and not biod:
    results["probe"] = probing_linear.p_probe(trainer.model(params), task, seed,
                                              config.knowledge.probe_people)
  if config.knowledge.qa and not biod:
    model = trainer.model(params)
    if not config.knowledge.mixed:
      tuned = train.train_and_evaluate(finetune_config(config), os.path.join(workdir, "finetune"),
                                       KnowledgeStudy(config, "finetune"), print_fn,
                                       init_params=lambda _: params)
      if _stopped_early(tuned, finetune_config(config), print_fn):
        return None
      model = tuned["trainer"].model(tuned["state"]["params"])
    results["qa"] = qa_accuracy(model, task, seed, config.knowledge.qa_eval_people)
  report(results, workdir, print_fn)
  return results


def _stopped_early(result, config, print_fn) -> bool:
  """A stage cut short (preemption) leaves the later stages for the rerun that resumes it."""
  if int(result["state"]["step"]) < config.num_steps:
    print_fn("stopped before the end of a stage; rerun with the same workdir to continue")
    return True
  return False


def report(results: dict, workdir: str, print_fn=print) -> None:
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
    probing_linear.print_table(results["probe"], print_fn)
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "results.json"), "w") as f:
      json.dump(results, f, indent=1)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:  # what launch.sweep tabulates
      f.write(json.dumps(sweep_record(results)) + "\n")
    if qa:
      knowledge_plots.qa_by_attribute(qa, os.path.join(workdir, "qa_accuracy.png"))
    if "probe" in results:
      knowledge_plots.probe_heatmap(results["probe"], os.path.join(workdir, "p_probe.png"))


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


def main():
  from absl import app, flags, logging
  from ml_collections import config_flags

  config_flags.DEFINE_config_file(
      "config", os.path.join(os.path.dirname(__file__), "configs", "knowledge.py"),
      "Config file, optionally file.py:variant.", lock_config=True)
  flags.DEFINE_string("workdir", os.path.join("runs", "knowledge"),
                      "Directory for checkpoints, metrics, results and plots; rerun to resume.")

  def _main(argv):
    if len(argv) > 1:
      entry.fail(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file it writes at INFO
    try:
      make_study(flags.FLAGS.config)  # task parameters are checked here
      run(flags.FLAGS.config, flags.FLAGS.workdir)
    except (ValueError, train.SetupError) as e:
      entry.fail(e)
    except train.RunError as e:
      entry.fail(e, status=1)

  app.run(_main)


if __name__ == "__main__":
  main()
