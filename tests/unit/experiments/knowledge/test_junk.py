"""bioD's junk mixture (Part 3.3): the share of junk tokens is what the config says, useful people
never appear in the junk stream, batches are pure functions of (seed, step), and the capacity meter
counts the useful people only; the domain token marks every useful biography and nothing else."""
import numpy as np
import pytest

from experiments.configs.knowledge import get_config
from experiments.knowledge import capacity
from experiments.knowledge.study import make_study
from tasks import biod
from tasks.biod import DOMAIN, BioDTask
from tasks.vocab import CLS, SEP

SMALL = dict(people=30, attributes=2, chunks=2, pool=8, length=1, values=8, bios_per_window=2)


def _biographies(task, batch):
  """(person, token ids) of every biography in a batch's rows."""
  out = []
  cls, sep = task.vocab.id(CLS), task.vocab.id(SEP)
  for inputs, targets, person in zip(batch["inputs"], batch["targets"], batch["person"]):
    seq, person = np.r_[inputs[:1], targets], np.r_[-1, person]  # the whole row
    ends = np.flatnonzero(seq == sep)
    for start, end in zip(np.r_[0, ends[:-1]] + 1, ends):
      out.append((int(person[start]), tuple(seq[start:end])))
    assert seq[0] == cls
  return out


@pytest.mark.parametrize("share,junk_rows", [(0.875, 14), (0.5, 8), (0.0, 0)])
def test_junk_share_of_the_tokens_is_the_configured_share(share, junk_rows):
  task = BioDTask(**SMALL, junk_share=share)
  batch = task.batch(0, "bio", 3, 16)
  trained = batch["weights"] > 0
  junk = trained & (batch["person"] == -1)
  assert junk.sum() / trained.sum() == junk_rows / 16 == pytest.approx(share, abs=1 / 32)
  assert (junk.any(1) == (np.arange(16) >= 16 - junk_rows)).all()  # the last rows are junk


def test_useful_people_never_appear_in_the_junk_stream(monkeypatch):
  """With only 4 names left over, junk people must take exactly those (seed 7: worlds cached
  under the real name count are not reused)."""
  monkeypatch.setattr(biod, "NUM_NAMES", SMALL["people"] + 4)
  task = BioDTask(**SMALL, junk_share=0.75)
  useful_names = {tuple(task.vocab.encode(task.text(7, p)[0][:7])) for p in range(task.people)}
  junk_names = set()
  for step in range(10):
    for person, tokens in _biographies(task, task.batch(7, "bio", step, 8)):
      if person == -1:
        junk_names.add(tokens[:7])
      else:
        assert tokens[:7] in useful_names
  assert junk_names and not junk_names & useful_names
  assert len(junk_names) == 4


def test_junk_batches_are_a_pure_function_of_seed_and_step():
  task = BioDTask(**SMALL, junk_share=0.875, junk_people=12)
  again = BioDTask(**SMALL, junk_share=0.875, junk_people=12)
  for key, value in task.batch(0, "bio", 5, 16).items():
    np.testing.assert_array_equal(value, again.batch(0, "bio", 5, 16)[key], err_msg=key)
  assert not np.array_equal(task.batch(0, "bio", 5, 16)["inputs"],
                            task.batch(0, "bio", 6, 16)["inputs"])
  assert not np.array_equal(task.batch(0, "bio", 5, 16)["inputs"],
                            task.batch(1, "bio", 5, 16)["inputs"])


@pytest.mark.parametrize("junk_people", [12, 0])
def test_junk_people_recur_in_rounds_or_never(junk_people):
  """12 junk people: every 12 junk biographies (3 steps of 2 junk rows of 2) show each once."""
  task = BioDTask(**SMALL, junk_share=0.5, junk_people=junk_people)
  junk = [tokens for step in range(6) for person, tokens in _biographies(
      task, task.batch(0, "bio", step, 4)) if person == -1]
  assert len(junk) == 24
  if junk_people:
    assert len(set(junk[:12])) == len(set(junk[12:])) == 12 and set(junk[:12]) == set(junk[12:])
  else:
    assert len(set(junk)) == 24


def test_useful_stream_is_the_junk_free_stream_at_its_own_pace():
  """The useful rows of step s are the junk-free stream's windows s*u .. s*u + u - 1."""
  mixed, clean = BioDTask(**SMALL, junk_share=0.75), BioDTask(**SMALL)
  useful = mixed.batch(0, "bio", 3, 8)
  np.testing.assert_array_equal(useful["inputs"][:2], clean.batch(0, "bio", 3, 2)["inputs"])


def test_domain_token_starts_every_useful_biography_and_no_junk_one():
  task = BioDTask(**SMALL, junk_share=0.5, domain_token=True)
  domain = task.vocab.id(DOMAIN)
  seen = _biographies(task, task.batch(0, "bio", 0, 8))
  assert {person >= 0 for person, _ in seen} == {True, False}
  for person, tokens in seen:
    assert (tokens[0] == domain) == (person >= 0) and list(tokens[1:]).count(domain) == 0


def test_meter_counts_only_useful_people_and_not_the_domain_token():
  """Equal token losses give the same figures with junk, and the domain token adds nothing."""
  flat = lambda rows: np.ones(rows["targets"].shape)
  results = [capacity.measure(flat, BioDTask(**SMALL, **extra), 0, num_params=100)
             for extra in ({}, dict(junk_share=0.875, junk_people=5),
                           dict(junk_share=0.875, domain_token=True))]
  assert results[0] == results[1] == results[2]
  rows = BioDTask(**SMALL, junk_share=0.875).person_rows(0, np.arange(30))
  assert set(np.unique(rows["person"])) == set(range(30))


def test_knowledge_config_counts_exposures_of_the_useful_people():
  base = "smoke,data=biod,people=40,K=2,C=1,D=4,L=1,T=8,exposures=4,batch=16"
  clean, mixed = get_config(base), get_config(base + ",junk=0.75,junk_exposures=2,domain=True")
  assert mixed.num_steps == 4 * clean.num_steps  # 4 of 16 rows useful
  assert mixed.task.junk_people == mixed.num_steps * 12 * 2 // 2  # junk bios / 2 exposures
  study = make_study(mixed)
  assert study.task.domain_token and study.task.junk_share == 0.75
  with pytest.raises(ValueError, match="junk and domain need data=biod"):
    get_config("smoke,junk=0.5")


@pytest.mark.parametrize("field,value,message", [
    ("junk_share", 1.0, r"task.junk_share: 1.0; allowed: \[0, 1\)"),
    ("junk_people", -1, "task.junk_people: -1; allowed: >= 0"),
])
def test_bad_junk_fields_fail_in_one_line(field, value, message):
  with pytest.raises(ValueError, match=message):
    BioDTask(**SMALL, **{field: value})


def test_a_junk_share_leaving_no_useful_row_fails_in_one_line():
  with pytest.raises(ValueError, match="task.junk_share: 0.99 leaves no useful row in a batch of 8"):
    BioDTask(**SMALL, junk_share=0.99).batch(0, "bio", 0, 8)
