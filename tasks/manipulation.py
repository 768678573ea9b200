"""Knowledge manipulation on bioS people ("Physics of LMs" Part 3.2): questions that use a stored
fact rather than recite it.

  retrieval       an attribute, whole or a part of the birth date: `What is the birth month of X ?`
  classification  a small partition of a birth-date part: `Was X born in an even month ?` Yes / No
  comparison      one birth-date part of two people: `Was X born in an earlier month than Y ?`
  inverse         the name from attributes: `Who was born on October 2 , 1996 in Fala ?`

Each example has a direct form and, where a fact must be recalled before the answer, a chain-of-
thought form that first states it (the whole birth date for a part of it, the part for a partition,
both people's parts for a comparison):

    [CLS] Was X born in an even month ? Answer : Yes [SEP]
    [CLS] Was X born in an even month ? Think : October Answer : Yes [SEP]

Whole-attribute retrieval and inverse search have no such fact (the only thing to state first is
the answer), so they have the direct form only. The people, biographies and P_train / P_test split
are BioSTask's; the vocabulary adds the words of these questions, so one model pretrains on the
biographies and then fine-tunes on manipulations.

Batches add two splits to BioSTask's, one example per row, loss on the reply:
  manip_train  P_train examples of `kinds`; with cot="mixed" half of those with a chain of thought
               take that form (the paper's CoT in training), with cot="none" none do
  manip_test   P_test examples drawn the same way
Example g of a stream is a pure function of (seed, stream, g), so any rows are drawn alone.

    python -m tasks.manipulation --kind comparison --cot --examples 3
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from tasks import biography_pools as world
from tasks import rows as rows_lib
from tasks.biography import ATTRIBUTES, NAME_LEN, BioSTask, _shifted, join_pieces, name_tokens, \
    value_tokens
from tasks.cli import Parser, at_least, print_json_lines
from tasks.vocab import CLS, SEP, Vocab

KINDS = ("retrieval", "classification", "comparison", "inverse")
COT_MODES = ("none", "mixed")
THINK = ("Think", ":")
YES, NO = "Yes", "No"
DATE_PARTS = ("birth_year", "birth_month", "birth_day")
QUESTIONS = {**world.QUESTIONS, "birth_year": "What is the birth year of {N} ?",
             "birth_month": "What is the birth month of {N} ?",
             "birth_day": "What is the birth day of {N} ?"}
# name: (question, date part, predicate on the part's value: year, month 1..12, day 1..28)
CLASSIFICATIONS = {
    "month_even": ("Was {N} born in an even month ?", "birth_month", lambda v: v % 2 == 0),
    "month_first_half": ("Was {N} born in the first half of a year ?", "birth_month",
                         lambda v: v <= 6),
    "day_even": ("Was {N} born on an even day ?", "birth_day", lambda v: v % 2 == 0),
    "year_even": ("Was {N} born in an even year ?", "birth_year", lambda v: v % 2 == 0),
}
COMPARISONS = {"month_earlier": ("Was {N} born in an earlier month than {M} ?", "birth_month"),
               "year_earlier": ("Was {N} born in an earlier year than {M} ?", "birth_year")}
INVERSE = "Who was born on {D} in {C} ?"
TEMPLATES = (*QUESTIONS.values(), *(c[0] for c in CLASSIFICATIONS.values()),
             *(c[0] for c in COMPARISONS.values()), INVERSE)
SUBTASKS = {"retrieval": ATTRIBUTES + DATE_PARTS, "classification": tuple(CLASSIFICATIONS),
            "comparison": tuple(COMPARISONS), "inverse": ("birth_date+birth_city",)}
SPLITS = ("manip_train", "manip_test")
STREAMS = {"manip_train": 6, "manip_test": 7, "test_set": 8}  # rng streams, after BioSTask's


@dataclasses.dataclass(frozen=True)
class Example:
  """One question about `people`: token lists of the question, the chain of thought (None where the
  kind has none) and the answer."""
  kind: str
  subtask: str
  people: tuple[int, ...]
  question: tuple[str, ...]
  cot: tuple[str, ...] | None
  answer: tuple[str, ...]

  def prompt(self, with_cot: bool) -> list[str]:
    """[CLS] question, then `Think :` (chain of thought next) or `Answer :`."""
    return [CLS, *self.question, *(THINK if with_cot else world.ANSWER_PROMPT)]

  def reply(self, with_cot: bool) -> list[str]:
    """What follows the prompt: [chain of thought `Answer :`] answer [SEP]."""
    cot = [*self.cot, *world.ANSWER_PROMPT] if with_cot else []
    return cot + [*self.answer, SEP]


def date_part(pop, p: int, part: str) -> int:
  """The value of a birth-date part (of person p, or of each of an array of people): the year, the
  month 1..12 or the day 1..28."""
  return {"birth_year": world.FIRST_YEAR + pop.year[p], "birth_month": pop.month[p] + 1,
          "birth_day": pop.day[p] + 1}[part]


def date_part_tokens(pop, p: int, part: str) -> tuple[str, ...]:
  value = date_part(pop, p, part)
  return (world.MONTHS[value - 1],) if part == "birth_month" else (str(value),)


def fill(template: str, **pieces) -> tuple[str, ...]:
  """Template words with each `{X}` replaced by the tokens pieces["X"]."""
  out = []
  for word in template.split():
    out += pieces[word[1:-1]] if word.startswith("{") else [word]
  return tuple(out)


def make_example(pop, kind: str, subtask: str, people) -> Example:
  """The question, chain of thought and answer of `subtask` about `people` (two for comparison)."""
  p = int(people[0])
  name = name_tokens(pop, p)
  if kind == "retrieval":
    if subtask in DATE_PARTS:
      return Example(kind, subtask, (p,), fill(QUESTIONS[subtask], N=name),
                     value_tokens(pop, p, "birth_date"), date_part_tokens(pop, p, subtask))
    return Example(kind, subtask, (p,), fill(QUESTIONS[subtask], N=name), None,
                   value_tokens(pop, p, subtask))
  if kind == "classification":
    template, part, predicate = CLASSIFICATIONS[subtask]
    yes = predicate(date_part(pop, p, part))
    return Example(kind, subtask, (p,), fill(template, N=name), date_part_tokens(pop, p, part),
                   (YES if yes else NO,))
  if kind == "comparison":
    q = int(people[1])
    template, part = COMPARISONS[subtask]
    earlier = date_part(pop, p, part) < date_part(pop, q, part)
    cot = date_part_tokens(pop, p, part) + (",",) + date_part_tokens(pop, q, part)
    return Example(kind, subtask, (p, q), fill(template, N=name, M=name_tokens(pop, q)), cot,
                   (YES if earlier else NO,))
  question = fill(INVERSE, D=value_tokens(pop, p, "birth_date"),
                  C=value_tokens(pop, p, "birth_city"))
  return Example(kind, subtask, (p,), question, None, name)


@dataclasses.dataclass(frozen=True)
class ManipulationTask(BioSTask):
  kinds: tuple = KINDS   # the kinds of manip_train / manip_test examples
  cot: str = "none"      # training data: none, or mixed (half of the examples that have one)
  values: int = 0        # > 0: every attribute takes at most this many values (its pool's first)
  bio_attributes: tuple = ATTRIBUTES  # the sentences a biography tells (shorter biographies)

  def __post_init__(self):
    super().__post_init__()
    object.__setattr__(self, "kinds", tuple(self.kinds))
    object.__setattr__(self, "bio_attributes", tuple(self.bio_attributes))
    told = set(self.bio_attributes)
    if not told <= set(ATTRIBUTES) or not {"birth_date", "birth_city"} <= told:
      raise ValueError(f"task.bio_attributes: {self.bio_attributes}; allowed: attributes of "
                       f"{', '.join(ATTRIBUTES)}, birth_date and birth_city among them")
    if not set(self.attributes) <= told:
      raise ValueError(f"task.attributes: {self.attributes} asks what no biography tells; "
                       f"allowed: attributes of {self.bio_attributes}")
    unknown = [k for k in self.kinds if k not in KINDS]
    if unknown or not self.kinds:
      raise ValueError(f"task.kinds: unknown {unknown or 'empty'}; allowed: {', '.join(KINDS)}")
    if self.cot not in COT_MODES:
      raise ValueError(f"task.cot: {self.cot!r}; allowed: {', '.join(COT_MODES)}")
    if self.values == 1 or self.values < 0:
      raise ValueError(f"task.values: {self.values}; allowed: 0 (whole pools) or >= 2")
    if self.people < 4:
      raise ValueError(f"task.people: {self.people}; allowed: >= 4 (two per split to compare)")

  @functools.cached_property
  def vocab(self) -> Vocab:
    words = [w for t in TEMPLATES for w in t.split() if not w.startswith("{")]
    return Vocab([*super().vocab.tokens, *words, *THINK, YES, NO])

  @functools.cached_property
  def max_manip_len(self) -> int:
    """Tokens of the longest question, `Think :`, chain of thought, `Answer :`, answer, [SEP]."""
    pools = world.pools()
    longest = {"N": NAME_LEN, "M": NAME_LEN, "D": 4, "C": max(map(len, pools["city"]))}
    question = max(len(fill(t, **{k: ("x",) * n for k, n in longest.items()})) for t in TEMPLATES)
    answer = max(NAME_LEN, 4, *(max(map(len, pool)) for pool in pools.values()))
    cot = 4  # a birth date; a comparison's two parts are 3
    return question + len(THINK) + cot + len(world.ANSWER_PROMPT) + answer + 1

  @functools.cached_property
  def max_bio_len(self) -> int:
    """BioSTask's bound on a biography's length, over the sentences of bio_attributes."""
    pools = world.pools()
    longest = lambda a: 4 if a == "birth_date" else max(map(len, pools[
        "city" if a.endswith("city") else a]))
    sentences = sum(max(len(t.split()) - 1 + longest(a) for t in world.TEMPLATES[a])
                    for a in self.bio_attributes)
    return sentences + NAME_LEN * (len(self.bio_attributes) if self.fullname else 1)

  def biography(self, pop, p: int, templates, order):
    """BioSTask's biography, telling only bio_attributes (in the drawn order)."""
    return super().biography(pop, p, templates,
                             [a for a in order if ATTRIBUTES[a] in self.bio_attributes])

  def subtasks(self, kind: str) -> tuple[str, ...]:
    """The kind's subtasks; retrieval asks only what the biographies tell."""
    if kind != "retrieval":
      return SUBTASKS[kind]
    return tuple(s for s in SUBTASKS[kind] if s in self.bio_attributes or s in DATE_PARTS)

  @functools.lru_cache(maxsize=4)
  def population(self, seed: int):
    """BioSTask's people; with `values`, their attributes drawn again from the smaller pools (a
    small population then sees each value in several people, P_train and P_test alike)."""
    pop = super().population(seed)
    if not self.values:
      return pop
    rng = np.random.default_rng([seed, 9])
    draw = lambda n: rng.integers(min(n, self.values), size=self.people)
    return dataclasses.replace(
        pop, year=draw(world.NUM_YEARS), month=draw(len(world.MONTHS)), day=draw(world.DAYS),
        birth_city=draw(world.NUM_CITIES), university=draw(world.NUM_UNIVERSITIES),
        major=draw(len(world.MAJORS)), company=draw(world.NUM_COMPANIES))

  # -- examples ----------------------------------------------------------------------------------

  @functools.lru_cache(maxsize=4)
  def inverse_people(self, seed: int, people: str) -> np.ndarray:
    """People of a split whose (birth date, birth city) no one else in the population shares: the
    ones an inverse question names uniquely."""
    pop = self.population(seed)
    keys = np.stack([pop.year, pop.month, pop.day, pop.birth_city], 1)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    ids = self.people_split(seed)[people]
    return ids[counts[inverse.ravel()[ids]] == 1]

  def draw(self, seed: int, people: str, stream: int, g: int, kinds=None) -> tuple[Example, bool]:
    """Example g of a stream over the kinds, about P_train or P_test people ("train" / "test"),
    and whether its training form has a chain of thought."""
    rng = np.random.default_rng([seed, stream, g])
    kinds = kinds or self.kinds
    kind = kinds[rng.integers(len(kinds))]
    subtask = self.subtasks(kind)[rng.integers(len(self.subtasks(kind)))]
    pop = self.population(seed)
    ids = (self.inverse_people(seed, people) if kind == "inverse"
           else self.people_split(seed)[people])
    if len(ids) == 0:
      raise ValueError(f"task.people: {self.people} gives no {people} person to ask {kind} about")
    chosen = [ids[rng.integers(len(ids))]]
    if kind == "comparison":  # a second person whose part differs (no ties)
      part = COMPARISONS[subtask][1]
      values = date_part(pop, ids, part)
      for a in rng.permutation(len(ids)):
        others = ids[values != values[a]]
        if len(others):
          chosen = [ids[a], others[rng.integers(len(others))]]
          break
      else:
        raise ValueError(f"task.people: every {people} person has the same {part}")
    example = make_example(pop, kind, subtask, chosen)
    with_cot = self.cot == "mixed" and example.cot is not None and bool(rng.random() < 0.5)
    return example, with_cot

  def test_set(self, seed: int, kind: str, count: int, people: str = "test") -> list[Example]:
    """A fixed list of `count` examples of one kind (the study's greedy evaluation)."""
    return [self.draw(seed, people, STREAMS["test_set"] + KINDS.index(kind), g, (kind,))[0]
            for g in range(count)]

  # -- batches -----------------------------------------------------------------------------------

  def batch(self, seed: int, split: str, step: int, batch_size: int,
            rows: slice | None = None) -> dict[str, np.ndarray]:
    if split not in SPLITS:
      return super().batch(seed, split, step, batch_size, rows)
    start, stop = rows_lib.bounds(rows, batch_size)
    people = split.split("_")[1]
    drawn = [self.draw(seed, people, STREAMS[split], step * batch_size + g)
             for g in range(start, stop)]
    return self.pack_examples(drawn)

  def pack_examples(self, drawn) -> dict[str, np.ndarray]:
    """Rows `prompt reply` of (example, with_cot) pairs, loss on the reply; `example_kind` [B] is
    the kind's index and `with_cot` [B] the form."""
    width = self.max_manip_len
    seq = np.zeros((len(drawn), width + 1), np.int32)
    person = np.full(seq.shape, -1, np.int32)
    kind = np.zeros(seq.shape, np.int32)
    reply = np.zeros(seq.shape, bool)
    for r, (example, with_cot) in enumerate(drawn):
      prompt = example.prompt(with_cot)
      words = prompt + example.reply(with_cot)
      seq[r, :len(words)] = self.vocab.encode(words)
      person[r, :len(words)] = example.people[0]
      reply[r, len(prompt):len(words)] = True
      kind[r, len(prompt):len(words)] = KINDS.index(example.kind)
    out = _shifted(seq, person, kind, weights=reply[:, 1:])
    out["example_kind"] = np.array([KINDS.index(e.kind) for e, _ in drawn], np.int32)
    out["with_cot"] = np.array([c for _, c in drawn], np.int32)
    return out

  # -- reading -----------------------------------------------------------------------------------

  @functools.lru_cache(maxsize=2)
  def all_records(self, seed: int) -> tuple[dict, ...]:
    return tuple(self.records(seed, self.people))

  def example_record(self, seed: int, example: Example, with_cot: bool) -> dict:
    """An example as text, with the full record of every person it is about."""
    records = self.all_records(seed)
    return {"kind": example.kind, "subtask": example.subtask,
            "question": join_pieces(example.question), "answer": join_pieces(example.answer),
            "cot": join_pieces(example.cot) if with_cot and example.cot is not None else None,
            "people": [records[p] for p in example.people]}


def main(argv=None):
  parser = Parser(description="Print bioS knowledge-manipulation examples as JSON lines.")
  parser.add_argument("--kind", choices=KINDS, default="retrieval")
  parser.add_argument("--examples", type=at_least(1), default=3, help="how many examples to print")
  parser.add_argument("--split", choices=("train", "test"), default="train",
                      help="P_train (fine-tuning) or P_test people")
  parser.add_argument("--cot", action="store_true",
                      help="the chain-of-thought form (where the kind has one)")
  parser.add_argument("--population", type=at_least(4), default=1000,
                      help="N, people in the population")
  parser.add_argument("--multi", type=at_least(1), default=1)
  parser.add_argument("--permute", action="store_true")
  parser.add_argument("--values", type=at_least(0), default=0,
                      help="values per attribute (0: the whole pools)")
  parser.add_argument("--seed", type=at_least(0), default=0)
  args = parser.parse_args(argv)

  def records():
    task = ManipulationTask(people=args.population, multi=args.multi, permute=args.permute,
                            values=args.values)
    return [task.example_record(args.seed, e, args.cot)
            for e in task.test_set(args.seed, args.kind, args.examples, args.split)]
  print_json_lines(parser, records)


if __name__ == "__main__":
  main()
