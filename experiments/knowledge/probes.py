"""P-probing ("Physics of LMs" 3.1): can a linear map read a person's attribute off the hidden state?

Each person's first biography is fed alone; the last layer's residual stream is read at the last
token of the person's name and at the full stop ending each sentence. For every position and
attribute, a ridge-regression classifier is fitted on P_train people and scored on P_test people.
Accuracy high already at the name means the model stored the attribute on the name itself, as
extraction needs; high only after the sentence that states it means the model just reads it back.
Attributes probed by their pool index (birth_date by its month).
"""
from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from models.probing import ridge_accuracy
from tasks import biography_pools as world
from tasks.biography import ATTRIBUTES, KIND_NAME, BioSTask


def positions(task: BioSTask, rows) -> tuple[list[str], np.ndarray]:
  """Names of the probe positions and their input indices [B, P] in `rows`."""
  kind, targets = rows["kind"], rows["targets"]
  name_end = np.array([np.flatnonzero(k == KIND_NAME)[-1] for k in kind]) + 1
  stops = np.stack([np.flatnonzero(t == task.vocab.id("."))[:len(ATTRIBUTES)] for t in targets]) + 1
  names = ["name"] + [f"sentence {i + 1} end" for i in range(len(ATTRIBUTES))]
  return names, np.concatenate([name_end[:, None], stops], axis=1)


def labels(task: BioSTask, seed: int) -> dict[str, np.ndarray]:
  pop = task.population(seed)
  return {"birth_date": pop.month, "birth_city": pop.birth_city, "university": pop.university,
          "major": pop.major, "company": pop.company, "company_city": pop.company_city}


def hidden_states(model, task: BioSTask, seed: int, people, batch_size: int = 256):
  """Last-layer residual at each probe position: [len(people), P, d_model]."""
  names, feats = None, []
  graphdef, state = nnx.split(model)
  layer = f"layer_{model.config.num_layers - 1}/residual"

  @jax.jit
  def last_residual(state, inputs):
    return nnx.merge(graphdef, state)(inputs, capture=True)[1][layer]

  for start in range(0, len(people), batch_size):
    rows = task.person_rows(seed, people[start:start + batch_size])
    names, where = positions(task, rows)
    residual = np.asarray(last_residual(state, rows["inputs"]))
    feats.append(np.take_along_axis(residual, where[:, :, None], axis=1))
  return names, np.concatenate(feats)


def p_probe(model, task: BioSTask, seed: int, max_people: int) -> dict:
  """Accuracy [position][attribute] of linear probes trained on P_train, tested on P_test."""
  split = task.people_split(seed)
  train_ids, test_ids = split["train"][:max_people // 2], split["test"][:max_people // 2]
  names, x_train = hidden_states(model, task, seed, train_ids)
  _, x_test = hidden_states(model, task, seed, test_ids)
  y = labels(task, seed)
  classes = dict(birth_date=len(world.MONTHS), birth_city=world.NUM_CITIES,
                 university=world.NUM_UNIVERSITIES, major=len(world.MAJORS),
                 company=world.NUM_COMPANIES, company_city=world.NUM_CITIES)
  accuracy = [[ridge_accuracy(x_train[:, i], y[a][train_ids], x_test[:, i], y[a][test_ids],
                              classes[a]) for a in ATTRIBUTES] for i in range(len(names))]
  majority = [float(np.bincount(y[a][test_ids]).max() / len(test_ids)) for a in ATTRIBUTES]
  return {"positions": names, "attributes": list(ATTRIBUTES), "accuracy": accuracy,
          "majority": majority, "people": [len(train_ids), len(test_ids)]}


def print_table(probe: dict, print_fn=print) -> None:
  print_fn(f"{'P-probe (P_test)':<18}" + "".join(f"{a:>14}" for a in probe["attributes"]))
  for name, row in zip(probe["positions"], probe["accuracy"]):
    print_fn(f"{name:<18}" + "".join(f"{v:>14.3f}" for v in row))
  print_fn(f"{'majority class':<18}" + "".join(f"{v:>14.3f}" for v in probe["majority"]))
