"""Knowledge-manipulation examples against a solver that reads only the printed people's records
and the question text, and the batches' layout."""
import json
import re

import numpy as np
import pytest

from tasks import manipulation
from tasks.manipulation import KINDS, ManipulationTask

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
WHOLE = {r"What is the birth date of (.+) \?": "birth_date",
         r"What is the birth city of (.+) \?": "birth_city",
         r"Which university did (.+) study \?": "university", r"What major did (.+) study \?": "major",
         r"Which company did (.+) work for \?": "company", r"Where did (.+) work \?": "company_city"}
POPULATION = 60


def date_parts(text: str) -> dict:
  """`October 2 , 1996` -> {"month": 10, "day": 2, "year": 1996, "month name": "October"}."""
  month, day, _, year = text.split()
  return {"month": MONTHS.index(month) + 1, "day": int(day), "year": int(year), "month name": month}


def part_text(parts: dict, part: str) -> str:
  return parts["month name"] if part == "month" else str(parts[part])


def solve(question: str, everyone: list[dict]) -> tuple[str, str | None, list[str]]:
  """(answer, chain of thought, names of the people asked about) from the question alone."""
  by_name = {r["attributes"]["name"]: r["attributes"] for r in everyone}
  for pattern, attribute in WHOLE.items():
    if m := re.fullmatch(pattern, question):
      return by_name[m[1]][attribute], None, [m[1]]
  if m := re.fullmatch(r"What is the birth (year|month|day) of (.+) \?", question):
    date = by_name[m[2]]["birth_date"]
    return part_text(date_parts(date), m[1]), date, [m[2]]
  classify = {r"Was (.+) born in an even month \?": ("month", lambda v: v % 2 == 0),
              r"Was (.+) born in the first half of a year \?": ("month", lambda v: v < 7),
              r"Was (.+) born on an even day \?": ("day", lambda v: v % 2 == 0),
              r"Was (.+) born in an even year \?": ("year", lambda v: v % 2 == 0)}
  for pattern, (part, rule) in classify.items():
    if m := re.fullmatch(pattern, question):
      parts = date_parts(by_name[m[1]]["birth_date"])
      return ("Yes" if rule(parts[part]) else "No"), part_text(parts, part), [m[1]]
  if m := re.fullmatch(r"Was (.+) born in an earlier (month|year) than (.+) \?", question):
    a, b = (date_parts(by_name[n]["birth_date"]) for n in (m[1], m[3]))
    assert a[m[2]] != b[m[2]], "a comparison never asks about a tie"
    return (("Yes" if a[m[2]] < b[m[2]] else "No"),
            f"{part_text(a, m[2])} , {part_text(b, m[2])}", [m[1], m[3]])
  m = re.fullmatch(r"Who was born on (.+ , \d+) in (.+) \?", question)
  matches = [r for r in everyone if (r["attributes"]["birth_date"], r["attributes"]["birth_city"])
             == (m[1], m[2])]
  assert len(matches) == 1, "an inverse question names one person"
  return matches[0]["attributes"]["name"], None, [matches[0]["attributes"]["name"]]


@pytest.fixture(scope="module")
def everyone():
  """Every person's record, as `python -m tasks.biography` prints them."""
  from tasks.biography import main
  import contextlib
  import io
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    main(["--people", str(POPULATION), "--population", str(POPULATION), "--seed", "3"])
  return [json.loads(line) for line in out.getvalue().splitlines()]


def printed(capsys, *args) -> list[dict]:
  manipulation.main(["--population", str(POPULATION), "--seed", "3", *args])
  return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_answer_and_chain_of_thought_matches_the_solver(capsys, everyone, kind, split):
  examples = printed(capsys, "--kind", kind, "--examples", "60", "--split", split, "--cot")
  assert len(examples) == 60
  want_split = {"train": "P_train", "test": "P_test"}[split]
  for e in examples:
    assert e["kind"] == kind
    answer, cot, names = solve(e["question"], everyone)
    assert (e["answer"], e["cot"]) == (answer, cot), e["question"]
    assert [p["attributes"]["name"] for p in e["people"]] == names
    assert all(p["split"] == want_split for p in e["people"])
    assert e["people"] == [everyone[p["person"]] for p in e["people"]]  # the full records


def test_without_cot_no_chain_is_printed_and_subtasks_are_all_drawn(capsys):
  for kind in KINDS:
    examples = printed(capsys, "--kind", kind, "--examples", "80")
    assert all(e["cot"] is None for e in examples)
    assert {e["subtask"] for e in examples} == set(manipulation.SUBTASKS[kind])


@pytest.mark.parametrize("args, field", [
    (["--kind", "sorting"], "--kind"), (["--population", "3"], "--population"),
    (["--examples", "0"], "--examples"), (["--split", "dev"], "--split")])
def test_bad_values_are_one_line_errors(capsys, args, field):
  with pytest.raises(SystemExit) as stop:
    manipulation.main(args)
  err = capsys.readouterr().err
  assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and field in err


@pytest.mark.parametrize("fields, name", [(dict(kinds=("sorting",)), "task.kinds"),
                                          (dict(cot="always"), "task.cot")])
def test_bad_task_fields_name_the_field(fields, name):
  with pytest.raises(ValueError, match=name):
    ManipulationTask(people=20, **fields)


@pytest.mark.parametrize("cot", ["none", "mixed"])
def test_batch_rows_read_back_as_examples_with_loss_on_the_reply(cot):
  task = ManipulationTask(people=POPULATION, cot=cot)
  batch = task.batch(3, "manip_train", 2, 64)
  vocab = task.vocab
  for r in range(64):
    example, with_cot = task.draw(3, "train", manipulation.STREAMS["manip_train"], 2 * 64 + r)
    words = example.prompt(with_cot) + example.reply(with_cot)
    row = [vocab.tokens[i] for i in np.concatenate([batch["inputs"][r, :1], batch["targets"][r]])]
    assert row[:len(words)] == words and set(row[len(words):]) <= {"[PAD]"}
    reply = [vocab.tokens[t] for t, w in zip(batch["targets"][r], batch["weights"][r]) if w]
    assert reply == example.reply(with_cot)
    assert batch["with_cot"][r] == with_cot
    assert batch["example_kind"][r] == KINDS.index(example.kind)
  has_chain = [task.draw(3, "train", 6, 2 * 64 + r)[0].cot is not None for r in range(64)]
  share = batch["with_cot"].sum() / max(1, sum(has_chain))
  assert share == 0 if cot == "none" else 0.25 < share < 0.75


def test_rows_of_a_batch_equal_the_whole_batch_rows():
  task = ManipulationTask(people=POPULATION, cot="mixed")
  whole = task.batch(0, "manip_test", 5, 20)
  for rows in (slice(0, 7), slice(7, 20), slice(3, 4)):
    part = task.batch(0, "manip_test", 5, 20, rows)
    for key in whole:
      np.testing.assert_array_equal(part[key], whole[key][rows])


def test_the_vocabulary_extends_the_biographies_own():
  from tasks.biography import BioSTask
  bios, task = BioSTask(people=POPULATION).vocab, ManipulationTask(people=POPULATION).vocab
  assert task.tokens[:len(bios)] == bios.tokens and {"Think", "Yes", "No", "earlier"} <= set(
      task.tokens)


def test_fewer_values_draw_every_attribute_from_the_pools_first_entries(capsys):
  from tasks.biography_pools import MONTHS as POOL_MONTHS
  from tasks.biography_pools import pools
  records = printed(capsys, "--values", "3", "--examples", "40")
  first = {a: {" ".join(v).replace(" ##", "") for v in pools()[p][:3]}
           for a, p in (("birth_city", "city"), ("university", "university"), ("major", "major"),
                        ("company", "company"))}
  for r in records:
    attributes = r["people"][0]["attributes"]
    parts = date_parts(attributes["birth_date"])
    assert parts["month"] <= 3 and parts["day"] <= 3 and parts["year"] < 1903
    assert all(attributes[a] in first[a] for a in first)
  assert POOL_MONTHS[:3] == tuple(MONTHS[:3])
  with pytest.raises(ValueError, match="task.values"):
    ManipulationTask(people=20, values=1)


def test_shorter_biographies_tell_and_ask_only_the_kept_attributes():
  told = ("birth_date", "birth_city")
  task = ManipulationTask(people=POPULATION, bio_attributes=told, attributes=told)
  for record in task.records(0, 10):
    bio = record["biographies"][0]
    attributes = record["attributes"]
    assert attributes["birth_city"] in bio and attributes["birth_date"].split()[0] in bio
    assert attributes["university"] not in bio and attributes["major"] not in bio
    assert len(bio.split()) <= task.max_bio_len
  asked = {e.subtask for e in task.test_set(0, "retrieval", 100)}
  assert asked == {"birth_date", "birth_city", "birth_year", "birth_month", "birth_day"}
  with pytest.raises(ValueError, match="task.bio_attributes"):
    ManipulationTask(people=20, bio_attributes=("birth_date", "major"), attributes=("major",))
