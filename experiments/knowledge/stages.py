"""The knowledge study's run ("Physics of LMs" 3.1 / 3.3): its stages in order, each a run of the
shared train loop in its own sub-workdir (each resumes on its own):
  pretrain   biographies (or, with knowledge.mixed, biographies mixed with P_train QA pairs);
             then the capacity meter (float32, int8 and int4 weights) and the P-probes;
  finetune   QA pairs of P_train people, from the pretrained weights (skipped when mixed).
Finally exact-match QA accuracy by greedy generation, per attribute, on P_train and P_test.
bioD data runs the pretraining stage and the capacity meter only.
"""
from __future__ import annotations

import functools
import json
import os

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx

from experiments.knowledge import capacity as capacity_lib
from experiments.knowledge import probes
from experiments.knowledge.quantize import quantize_int4, quantize_int8
from experiments.knowledge.study import PEOPLE_SPLITS, KnowledgeStudy, make_study
from experiments.runtime import train
from models.decoding import greedy_generate
from models.transformer import num_params
from tasks.biography import BioSTask
from tasks.vocab import SEP


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


def run(config, workdir: str, print_fn=functools.partial(print, flush=True)) -> dict | None:
  """All stages, then the report; returns (and writes to results.json) the capacity, probes and QA
  accuracy, or None when a stage stopped early (preempted)."""
  study = make_study(config)
  result = train_and_evaluate(config, workdir, study, print_fn)
  if result["preempted"]:
    return None
  study.report(workdir, result["metrics"], print_fn)
  return result["metrics"]


def train_and_evaluate(config, workdir: str, pretrain,
                       print_fn=functools.partial(print, flush=True)) -> dict:
  """All stages, the first training `pretrain` (make_study's); the entry point's train function.
  Returns {"metrics": the capacity, probes and QA accuracy, "preempted": whether a stage stopped
  early}."""
  task, seed = pretrain.task, config.seed
  print_fn(f"{config.knowledge.data}: {task}; {len(task.vocab)} tokens, windows of {task.window}")
  result = train.train_and_evaluate(config, os.path.join(workdir, "pretrain"), pretrain, print_fn)
  if _stopped_early(result, config, print_fn):
    return {"metrics": None, "preempted": True}
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
    results["probe"] = probes.p_probe(trainer.model(params), task, seed,
                                      config.knowledge.probe_people)
  if config.knowledge.qa and not biod:
    model = trainer.model(params)
    if not config.knowledge.mixed:
      tuned = train.train_and_evaluate(finetune_config(config), os.path.join(workdir, "finetune"),
                                       KnowledgeStudy(config, "finetune"), print_fn,
                                       init_params=lambda _: params)
      if _stopped_early(tuned, finetune_config(config), print_fn):
        return {"metrics": None, "preempted": True}
      model = tuned["trainer"].model(tuned["state"]["params"])
    results["qa"] = qa_accuracy(model, task, seed, config.knowledge.qa_eval_people)
  return {"metrics": results, "preempted": False}


def _stopped_early(result, config, print_fn) -> bool:
  """A stage cut short (preemption) leaves the later stages for the rerun that resumes it."""
  if int(result["state"]["step"]) < config.num_steps:
    print_fn("stopped before the end of a stage; rerun with the same workdir to continue")
    return True
  return False
