"""The LEGO generator against an independent solver, and the batch contract."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tasks.lego import CLAUSE_LEN, LegoTask


def _permutation(word: str) -> tuple[int, ...]:
  """S3 operator names are words in r (rotation 0->1->2->0) and s (swap 1,2), applied right to left."""
  r, s, perm = (1, 2, 0), (0, 2, 1), (0, 1, 2)
  for letter in reversed(word.replace("e", "")):
    g = r if letter == "r" else s
    perm = tuple(g[perm[i]] for i in range(3))
  return perm


def _apply(op: str, value: str) -> str:
  """Written independently of tasks.groups: what the clause `x = op y` means for the value of y."""
  if op in ("val", "not"):
    return value if op == "val" else str(1 - int(value))
  if op.startswith("+"):
    return None  # needs k: handled by the caller
  g, v = _permutation(op), tuple(int(c) for c in value)
  return "".join(str(g[v[i]]) for i in range(3))


def solve(text: str, k: int | None = None) -> tuple[dict, list]:
  """Values of every variable and the chain order, from the sentence text alone."""
  tokens = text.split()
  assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
  body = tokens[1:-1]
  clauses = [body[i:i + CLAUSE_LEN] for i in range(0, len(body), CLAUSE_LEN)]
  definitions = {}
  for var, eq, op, arg, comma in clauses:
    assert eq == "=" and comma == ","
    assert var not in definitions, "a variable is defined twice"
    definitions[var] = (op, arg)
  values = {}

  def value(var):
    if var not in values:
      op, arg = definitions[var]
      base = value(arg) if arg in definitions else arg
      values[var] = str((int(base) + int(op[1:])) % k) if op.startswith("+") else _apply(op, base)
    return values[var]

  for var in definitions:
    value(var)
  root = next(v for v, (_, arg) in definitions.items() if arg not in definitions)
  children = {arg: v for v, (_, arg) in definitions.items() if arg in definitions}
  order = [root]
  while order[-1] in children:
    order.append(children[order[-1]])
  return values, order


@pytest.mark.parametrize("group,k", [("z2", None), ("z5", 5), ("s3", None)])
def test_generator_agrees_with_independent_solver(group, k):
  task = LegoTask(num_vars=12, group=group)
  records = task.examples(seed=3, split="train", step=0, num=2000)
  for record in records:
    values, order = solve(record["text"], k)
    assert values == record["values"]
    assert order == record["order"]


def test_every_variable_defined_once_and_batch_contract():
  task = LegoTask(num_vars=12, train_positions=6)
  batch = task.batch(seed=0, split="train", step=7, batch_size=256)
  assert batch["inputs"].shape == (256, 62) and batch["inputs"].dtype == np.int32
  assert batch["targets"].dtype == np.int32 and batch["weights"].dtype == np.float32
  slots = 1 + CLAUSE_LEN * np.arange(12)
  lhs = batch["inputs"][:, slots]
  assert all(len(set(row)) == 12 for row in lhs)
  # chain positions 1..12 each appear once per sentence, only at clause-defining tokens
  assert (np.sort(batch["position"][:, slots], axis=1) == np.arange(1, 13)).all()
  assert batch["position"].sum(1).tolist() == [78] * 256
  # loss weights: exactly the tokens defining chain positions 1..6
  expected = ((batch["position"] >= 1) & (batch["position"] <= 6)).astype(np.float32)
  np.testing.assert_array_equal(batch["weights"], expected)
  assert batch["weights"].sum(1).tolist() == [6.0] * 256


def test_targets_are_values_of_the_defined_variable():
  task = LegoTask(num_vars=8, group="s3")
  chains = task.sample_chains(1, "train", 0, 64)
  batch = task.render(chains)
  for b in range(64):
    values, _ = solve(task.vocab.decode(batch["inputs"][b]))
    for slot in 1 + CLAUSE_LEN * np.arange(8):
      var = task.vocab.tokens[batch["inputs"][b, slot]]
      assert task.algebra.values[batch["targets"][b, slot]] == values[var]


def test_shuffle_changes_order_not_values():
  shuffled = LegoTask(num_vars=12, shuffle=True).sample_chains(5, "train", 2, 100)
  ordered = LegoTask(num_vars=12, shuffle=False).sample_chains(5, "train", 2, 100)
  for name in ("names", "ops", "values"):
    np.testing.assert_array_equal(getattr(shuffled, name), getattr(ordered, name))
  assert (shuffled.clause_order != ordered.clause_order).any(axis=1).mean() > 0.99
  np.testing.assert_array_equal(ordered.clause_order, np.tile(np.arange(12), (100, 1)))


def test_batches_are_pure_functions_of_seed_split_step():
  task = LegoTask()
  a, b = task.batch(0, "train", 11, 32), task.batch(0, "train", 11, 32)
  for key in a:
    np.testing.assert_array_equal(a[key], b[key])
  assert not np.array_equal(task.batch(0, "train", 12, 32)["inputs"], a["inputs"])
  assert not np.array_equal(task.batch(1, "train", 11, 32)["inputs"], a["inputs"])


def test_train_and_test_chains_never_overlap():
  task = LegoTask(num_vars=2, train_positions=2)  # 2600 chains: a leaky split would show
  key = lambda c: {tuple(map(tuple, zip(n, o, v))) for n, o, v in zip(c.names, c.ops, c.values)}
  train = set().union(*(key(task.sample_chains(0, "train", s, 512)) for s in range(20)))
  test = set().union(*(key(task.sample_chains(0, "test", s, 512)) for s in range(5)))
  assert len(train) > 2000 and len(test) > 250
  assert not train & test


def test_tree_variant_values_and_depths_agree_with_the_text():
  tree = LegoTask(num_vars=12, graph="tree")
  chains = tree.sample_chains(2, "test", 0, 300)
  batch = tree.render(chains)
  slots = 1 + CLAUSE_LEN * np.arange(12)
  shared_parent = 0
  for b in range(300):
    text = tree.vocab.decode(batch["inputs"][b]).split()[1:-1]
    values, _ = solve(" ".join(["[CLS]", *text, "[SEP]"]))
    parent = {text[i]: text[i + 3] for i in range(0, len(text), CLAUSE_LEN)}
    depth = lambda v: 0 if parent[v] not in parent else 1 + depth(parent[v])
    for slot in slots:
      var = tree.vocab.tokens[batch["inputs"][b, slot]]
      assert tree.algebra.values[batch["targets"][b, slot]] == values[var]
      assert batch["position"][b, slot] == depth(var) + 1
    shared_parent += len(set(parent.values())) < 12
  assert shared_parent == 300  # fixed draws; a chain-shaped tree has probability 1/11!
  chain = LegoTask(num_vars=12).sample_chains(2, "test", 0, 300)
  np.testing.assert_array_equal(chain.parents, np.tile(np.arange(12) - 1, (300, 1)))


@pytest.mark.parametrize("kwargs,field", [
    (dict(num_vars=27), "task.num_vars"),
    (dict(num_vars=12, train_positions=13), "task.train_positions"),
    (dict(group="q8"), "task.group"),
    (dict(graph="dag"), "task.graph"),
])
def test_bad_task_parameters_name_the_field(kwargs, field):
  with pytest.raises(ValueError, match=field):
    LegoTask(**kwargs)


def test_cli_prints_json_lines():
  out = subprocess.run([sys.executable, "-m", "tasks.lego", "--num-vars", "12", "--num", "5",
                        "--seed", "0"], capture_output=True, text=True, check=True).stdout
  records = [json.loads(line) for line in out.splitlines()]
  assert len(records) == 5
  for record in records:
    assert len(record["text"].split()) == 62
    values, order = solve(record["text"])
    assert values == record["values"] and order == record["order"]
