"""Knowledge manipulation ("Physics of LMs" 3.2): can a model use a fact it stored?

The run's stages, each a run of the shared train loop in its own sub-workdir (each resumes alone):
  pretrain        bioS biographies, or with knowledge.mixed biographies mixed with P_train QA
                  pairs (the knowledge study's pretraining stage, on a vocabulary that also
                  holds the manipulation questions' words)
  finetune_none   manipulation examples of P_train people, answers only
  finetune_mixed  the same with half of the examples that have a chain of thought in that form
Then greedy generation on fixed P_train and P_test example sets, per kind and subtask, with the
direct prompt (`Answer :`) and the chain-of-thought prompt (`Think :`); an answer counts when the
tokens after the model's own `Answer :` equal it.

    python -m experiments.knowledge.manipulation \
        --config=experiments/configs/manipulation.py:smoke --workdir=/tmp/manip
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.knowledge.stages import _stopped_early, finetune_config, generate_answers
from experiments.knowledge.study import (PEOPLE_SPLITS, KnowledgeStudy, _Biographies,
                                         people_halves, save_results)
from experiments.runtime import entry, train
from models.transformer import num_params
from tasks import biography_pools as world
from tasks.manipulation import KINDS, ManipulationTask
from tasks.vocab import SEP

FORMS = ("direct", "cot")


def make_task(config) -> ManipulationTask:
  return ManipulationTask(**config.task.to_dict())


def stage_config(config, cot: str):
  """A fine-tuning stage's config: the schedule of config.knowledge.finetune, and the task's kinds
  and chain-of-thought mode (the pretraining stage's task leaves both at their defaults, so one
  pretrained model serves every kinds and cot variant)."""
  tuned = finetune_config(config)
  tuned.task.update(dict(kinds=tuple(config.manipulation.kinds), cot=cot))
  return tuned


class ManipulationPretrain(KnowledgeStudy):
  """The pretraining stage: KnowledgeStudy's biographies and QA eval on the manipulation task's
  people and vocabulary; its report is the whole run's."""

  def __init__(self, config):
    self.seed = config.seed
    self.task = make_task(config)
    self.train_split = "mixed" if config.knowledge.mixed else "bio"

  def report(self, workdir: str, results: dict, print_fn=print) -> None:
    report(workdir, results, print_fn)


class ManipulationFinetune(_Biographies):
  """A fine-tuning stage on manip_train; eval: teacher-forced exact match of the reply (chain of
  thought included), per people split and kind, on manip_train and manip_test rows."""

  def __init__(self, config):
    """`config`: a stage_config."""
    self.seed = config.seed
    self.task = make_task(config)

  def batch(self, split, step, batch_size, rows=None):
    if split == "train":
      return self.task.batch(self.seed, "manip_train", step, batch_size, rows)
    return people_halves(self.task, self.seed, ("manip_train", "manip_test"), step, batch_size,
                         rows)

  def eval_sums(self, logits, batch):
    weights = batch["weights"] > 0
    exact = jnp.all((logits.argmax(-1) == batch["targets"]) | ~weights, axis=1)
    cell = (jax.nn.one_hot(batch["is_test"], 2)[:, :, None]
            * jax.nn.one_hot(batch["example_kind"], len(KINDS))[:, None, :])  # [B, 2, K]
    return {"correct": jnp.einsum("bsk,b->sk", cell, exact), "count": cell.sum(0)}

  def summarize(self, sums):
    accuracy = sums["correct"] / np.maximum(sums["count"], 1)
    return {f"manip/{split}/{kind}": float(accuracy[s, KINDS.index(kind)])
            for s, split in enumerate(PEOPLE_SPLITS) for kind in self.task.kinds}

  def headline(self, metrics):
    return " ".join(f"{kind} {metrics[f'manip/P_train/{kind}']:.2f}/"
                    f"{metrics[f'manip/P_test/{kind}']:.2f}" for kind in self.task.kinds)


def stated_answer(generated, answer_prompt) -> list[int] | None:
  """The tokens after the first `Answer :` of a generation, up to [SEP] (None without one)."""
  generated = list(generated)
  for i in range(len(generated) - 1):
    if generated[i:i + 2] == answer_prompt:
      return generated[i + 2:]
  return None


def manipulation_accuracy(model, task: ManipulationTask, seed: int, count: int,
                          batch_size: int = 256) -> dict:
  """Greedy exact match of the answer, per people split, kind, subtask and prompt form, on fixed
  sets of `count` examples a kind; `.../cot_stated` is the share whose chain of thought was right.
  The chain-of-thought form asks with `Think :` the examples that have one, the rest directly."""
  encode, sep = task.vocab.encode, task.vocab.id(SEP)
  answer_prompt = list(encode(world.ANSWER_PROMPT))
  width = task.max_manip_len
  out = {}
  for split, people in zip(PEOPLE_SPLITS, ("train", "test")):
    for kind in task.kinds:
      examples = task.test_set(seed, kind, count, people)
      for form in FORMS:
        cot = [form == "cot" and e.cot is not None for e in examples]
        prompts = [encode(e.prompt(c)) for e, c in zip(examples, cot)]
        generated = _generate(model, prompts, width, batch_size, sep)
        right, stated = [], []
        for e, c, g in zip(examples, cot, generated):
          g = list(g[:list(g).index(sep) + 1] if sep in g else g)
          answer = list(encode([*e.answer, SEP]))
          right.append((stated_answer(g, answer_prompt) if c else g) == answer)
          if c:
            stated.append(g[:len(e.cot) + 2] == list(encode([*e.cot, *world.ANSWER_PROMPT])))
        out[f"{split}/{kind}/{form}"] = float(np.mean(right))
        if stated:
          out[f"{split}/{kind}/{form}_stated"] = float(np.mean(stated))
        subtasks = [e.subtask for e in examples]
        for subtask in dict.fromkeys(subtasks):
          out[f"{split}/{kind}/{subtask}/{form}"] = float(np.mean(
              [r for s, r in zip(subtasks, right) if s == subtask]))
  return out


def _generate(model, prompts, width: int, batch_size: int, eos_id: int) -> np.ndarray:
  """Greedy replies [n, width] of prompts right-padded to `width`, in batches of one shape (the
  decoder compiles once)."""
  n = len(prompts)
  size = min(batch_size, n)
  padded = np.zeros((-(-n // size) * size, width), np.int32)
  lengths = np.ones(len(padded), np.int32)
  for r, p in enumerate(prompts):
    padded[r, :len(p)], lengths[r] = p, len(p)
  out = [generate_answers(model, padded[i:i + size], lengths[i:i + size], width, eos_id)
         for i in range(0, len(padded), size)]
  return np.concatenate(out)[:n]


def train_and_evaluate(config, workdir: str, pretrain,
                       print_fn=functools.partial(print, flush=True)) -> dict:
  """Pretraining, then a fine-tuning stage per chain-of-thought mode (config.manipulation.cot_modes)
  from its weights, each evaluated by greedy generation; the entry point's train function.
  Returns {"metrics": ..., "preempted": whether a stage stopped early}."""
  task, seed = pretrain.task, config.seed
  print_fn(f"manipulation: {tuple(config.manipulation.kinds)} on {task.people} people; "
           f"{len(task.vocab)} tokens")
  result = train.train_and_evaluate(config, os.path.join(workdir, "pretrain"), pretrain, print_fn)
  if _stopped_early(result, config, print_fn):
    return {"metrics": None, "preempted": True}
  params = result["state"]["params"]
  results = {"config": json.loads(config.to_json()),
             "params": num_params(result["trainer"].model(params))}
  for cot in config.manipulation.cot_modes:  # each from a copy: training donates its buffers
    tuned_config = stage_config(config, cot)
    study = ManipulationFinetune(tuned_config)
    tuned = train.train_and_evaluate(tuned_config, os.path.join(workdir, f"finetune_{cot}"),
                                     study, print_fn,
                                     init_params=lambda _: jax.tree.map(jnp.copy, params))
    if _stopped_early(tuned, tuned_config, print_fn):
      return {"metrics": None, "preempted": True}
    model = tuned["trainer"].model(tuned["state"]["params"])
    results[f"finetune_{cot}"] = manipulation_accuracy(model, study.task, seed,
                                                       config.manipulation.test_examples)
  return {"metrics": results, "preempted": False}


def run(config, workdir: str, print_fn=functools.partial(print, flush=True)) -> dict | None:
  """All stages and the report; the results, or None when a stage stopped early (preempted)."""
  result = train_and_evaluate(config, workdir, ManipulationPretrain(config), print_fn)
  if result["preempted"]:
    return None
  report(workdir, result["metrics"], print_fn)
  return result["metrics"]


def columns(results: dict) -> dict[str, tuple[str, str]]:
  """The comparison's columns: (fine-tuning stage, prompt form) of each, where the run has it."""
  wanted = {"no CoT": ("finetune_none", "direct"), "CoT in training": ("finetune_mixed", "direct"),
            "CoT in training and inference": ("finetune_mixed", "cot")}
  return {name: c for name, c in wanted.items() if c[0] in results}


def report(workdir: str, results: dict, print_fn=print) -> None:
  """P_train / P_test accuracy per kind and column on stdout; results.json and the sweep's record
  (metrics.jsonl) in the workdir."""
  cols = columns(results)
  kinds = results["config"]["manipulation"]["kinds"]
  print_fn(f"{'exact match':<24}" + "".join(f"{name:>32}" for name in cols))
  for split in PEOPLE_SPLITS:
    for kind in kinds:
      print_fn(f"{split + ' ' + kind:<24}" + "".join(
          f"{results[stage][f'{split}/{kind}/{form}']:>32.3f}" for stage, form in cols.values()))
  if jax.process_index() == 0:
    save_results(workdir, results, sweep_record(results))


def sweep_record(results: dict) -> dict:
  """The run's figures as one final-step metrics record (launch.sweep's tables)."""
  record = {"step": results["config"]["num_steps"]}
  for stage in (k for k in results if k.startswith("finetune_")):
    record.update({f"eval/{stage}/{name}": value for name, value in results[stage].items()})
  return record


if __name__ == "__main__":
  entry.run("manipulation", train_fn=train_and_evaluate)
