"""bioS and bioD: every fact in every biography, QA = attributes, splits, packing, bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tasks import biography_pools as world
from tasks.biod import BioDTask
from tasks.biography import (ATTRIBUTES, KIND_GENDER, KIND_NAME, KIND_VALUE, NUM_NAMES, BioSTask,
                             join_pieces, name_tokens, value_tokens)

SEED = 3


def _contains(seq, sub) -> bool:
  return any(list(seq[i:i + len(sub)]) == list(sub) for i in range(len(seq) - len(sub) + 1))


def test_pools_have_published_sizes_and_unique_spellings():
  pools = world.pools()
  sizes = {k: len(v) for k, v in pools.items()}
  assert sizes == dict(first=400, middle=400, last=1000, city=200, university=300, major=100,
                       company=263)
  spellings = [join_pieces(v) for k, pool in pools.items() for v in pool]
  assert len(set(spellings)) == len(spellings)
  assert all(len(set(t)) == len(t) == 50 for t in world.TEMPLATES.values())
  assert len(set(world.company_hq())) > 1 and len(world.company_hq()) == 263


@pytest.mark.parametrize("permute,fullname", [(False, False), (True, False), (True, True)])
def test_every_attribute_value_is_in_every_biography(permute, fullname):
  task = BioSTask(people=40, multi=3, permute=permute, fullname=fullname)
  corpus, pop = task.corpus(SEED), task.population(SEED)
  for p in range(task.people):
    name = task.vocab.encode(name_tokens(pop, p))
    for j in range(task.multi):
      bio = corpus.tokens[p, j, :corpus.lengths[p, j]]
      kinds = corpus.kinds[p, j, :corpus.lengths[p, j]]
      assert _contains(bio, name)
      np.testing.assert_array_equal(bio[kinds == KIND_NAME], name)  # first mention only
      assert (kinds == KIND_GENDER).sum() == 1 or fullname and (kinds == KIND_GENDER).sum() == 0
      for a, attribute in enumerate(ATTRIBUTES):
        value = task.vocab.encode(value_tokens(pop, p, attribute))
        assert _contains(bio, value)
        np.testing.assert_array_equal(bio[kinds == KIND_VALUE + a], value)
      if fullname:
        assert sum(_contains(s, name) for s in np.split(bio, np.flatnonzero(
            bio == task.vocab.id("."))[:-1] + 1)) == len(ATTRIBUTES)
  if permute:  # sentence orders differ between biographies
    first_kind = lambda j: [corpus.kinds[p, j][corpus.kinds[p, j] >= KIND_VALUE][0]
                            for p in range(task.people)]
    assert first_kind(0) != first_kind(1)


def test_biographies_of_one_person_differ_and_are_deterministic():
  task = BioSTask(people=30, multi=2)
  corpus = task.corpus(SEED)
  assert not np.array_equal(corpus.tokens[:, 0], corpus.tokens[:, 1])
  np.testing.assert_array_equal(corpus.tokens, BioSTask(people=30, multi=2).corpus(SEED).tokens)
  assert not np.array_equal(corpus.tokens, task.corpus(SEED + 1).tokens)


def test_qa_answers_equal_the_attributes():
  task = BioSTask(people=20)
  for record in task.records(SEED, 20):
    for attribute, qa in zip(ATTRIBUTES, record["qa"]):
      assert qa["answer"] == record["attributes"][attribute]
      assert record["attributes"]["name"] in qa["question"]
  pop = task.population(SEED)
  for attribute in ATTRIBUTES:
    prompts, answers = task.qa_prompts(SEED, np.arange(5), attribute)
    for p in range(5):
      assert task.decode(answers[p]) == join_pieces(value_tokens(pop, p, attribute)) + " [SEP]"
      assert task.decode(prompts[p]).endswith("? Answer :")


def test_names_are_unique_and_splits_disjoint():
  task = BioSTask(people=5000)
  pop = task.population(SEED)
  full = set(zip(pop.first, pop.middle, pop.last))
  assert len(full) == 5000
  split = task.people_split(SEED)
  assert not set(split["train"]) & set(split["test"])
  assert sorted([*split["train"], *split["test"]]) == list(range(5000))


def test_qa_batches_ask_only_their_half_and_weight_only_answers():
  task = BioSTask(people=40)
  split = task.people_split(SEED)
  for name, people in (("qa_train", split["train"]), ("qa_test", split["test"])):
    batch = task.batch(SEED, name, 2, 16)
    asked = set(batch["person"][batch["person"] >= 0].ravel())
    assert asked <= set(people)
    assert (batch["kind"][batch["weights"] > 0] >= KIND_VALUE).all()
    assert (batch["weights"].sum(1) >= 2).all()  # a value and the closing [SEP]


def test_packing_never_puts_one_person_twice_in_a_window_and_exposes_everyone_per_round():
  task = BioSTask(people=25, multi=2, bios_per_window=3)
  per_round = -(-25 // 3)
  people, bio = task.window_people(SEED, 0, 4 * per_round)
  for row in people:
    row = row[row >= 0]
    assert len(set(row)) == len(row)
  for r in range(4):
    block = people[r * per_round:(r + 1) * per_round]
    assert sorted(block[block >= 0]) == list(range(25))
    assert (bio[r * per_round:(r + 1) * per_round] == r % 2).all()
  batch = task.batch(SEED, "bio", 1, 8)
  for row_people, row_kind in zip(batch["person"], batch["kind"]):
    starts = row_people[row_kind == KIND_NAME]
    assert len(set(starts)) == len(starts) // 7


def test_batches_are_pure_functions_of_seed_split_step():
  task = BioSTask(people=50, multi=2, permute=True)
  for split in ("bio", "mixed", "qa_train", "qa_test"):
    a = task.batch(SEED, split, 5, 8)
    b = BioSTask(people=50, multi=2, permute=True).batch(SEED, split, 5, 8)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
    assert a["inputs"].dtype == np.int32 and a["weights"].dtype == np.float32
    np.testing.assert_array_equal(a["inputs"][:, 1:], a["targets"][:, :-1])
    assert not np.array_equal(a["inputs"], task.batch(SEED, split, 6, 8)["inputs"])


def test_mixed_batches_hold_qa_rows_and_biography_rows():
  task = BioSTask(people=50, mixed_qa_share=0.25)
  batch = task.batch(SEED, "mixed", 0, 8)
  text = [task.decode(row) for row in batch["inputs"]]
  assert all("Answer :" in t for t in text[:2]) and not any("Answer" in t for t in text[2:])
  split = task.people_split(SEED)
  qa_people = set(batch["person"][:2][batch["person"][:2] >= 0])
  assert qa_people <= set(split["train"])


@pytest.mark.parametrize("kwargs,field", [
    (dict(people=NUM_NAMES + 1), "task.people"),
    (dict(multi=0), "task.multi"),
    (dict(attributes=("birth_date", "shoe_size")), "task.attributes"),
    (dict(bios_per_window=0), "task.bios_per_window"),
])
def test_bad_input_fails_in_one_line_naming_the_field(kwargs, field):
  with pytest.raises(ValueError) as e:
    BioSTask(**kwargs)
  assert str(e.value).startswith(field) and "\n" not in str(e.value)
  with pytest.raises(ValueError, match="^split"):
    BioSTask(people=10).batch(0, "nope", 0, 1)


def test_cli_prints_json_lines_with_attributes_biographies_and_qa():
  out = subprocess.run([sys.executable, "-m", "tasks.biography", "--people", "3", "--multi", "2",
                        "--permute"], capture_output=True, text=True, check=True).stdout
  records = [json.loads(line) for line in out.splitlines()]
  assert len(records) == 3
  for r in records:
    assert len(r["biographies"]) == 2 and len(r["qa"]) == 6
    assert all(r["attributes"]["university"] in bio for bio in r["biographies"])
  bad = subprocess.run([sys.executable, "-m", "tasks.biography", "--multi", "0"],
                       capture_output=True, text=True)
  assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "task.multi" in bad.stderr


def test_biod_texts_hold_each_persons_chunks():
  task = BioDTask(people=30, attributes=3, chunks=2, pool=5, length=3, values=4)
  w = task.world(SEED)
  assert all(len({tuple(s) for s in pool}) == 5 for pool in w["pools"])
  corpus = task.corpus(SEED)
  for p in range(30):
    tokens, kinds = corpus.tokens[p, 0], corpus.kinds[p, 0]
    for k in range(3):
      expected = [task.vocab.id(f"v{t}") for c in w["values"][p, k] for t in w["pools"][k, c]]
      np.testing.assert_array_equal(tokens[kinds == KIND_VALUE + k], expected)
  batch = task.batch(SEED, "bio", 0, 4)
  assert batch["inputs"].shape == (4, task.window)
  with pytest.raises(ValueError, match="^task.pool"):
    BioDTask(pool=100, length=1, values=10)
