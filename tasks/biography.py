"""bioS: synthetic biographies of N people, and questions about them ("Physics of LMs" Part 3).

Each person has a unique full name (first × middle × last), a gender and six attributes; a
biography is one sentence per attribute, each from 50 templates, the first naming the person and
later ones using a pronoun:

    Tu ##ni Fi ##ko Ze ##do ##ru was born on October 2 , 1996 . She grew up in Fa ##la . ...

Augmentations: multi (M biographies per person, templates drawn independently), permute (sentence
order shuffled per biography), fullname (the full name in every sentence instead of a pronoun).
Every biography is fixed once drawn: exposures repeat the same texts.

Questions, one template per attribute: `What is the birth city of <name> ? Answer : Fa ##la [SEP]`.
People are split in half: P_train (QA fine-tuning) and P_test (QA evaluation only).

Pretraining rows pack `bios_per_window` whole biographies into windows. The stream runs in rounds;
each round is a fresh permutation of all people cut into windows, and round r shows biography
r mod M; so a window never holds two biographies of one person, and every person is exposed once
per round.

Batches (`batch(seed, split, step, batch_size)`), splits:
  bio       pretraining windows of biographies (loss on every token)
  mixed     bio windows, with a share of rows packed with P_train QA pairs (loss on answers)
  qa_train  one P_train question per row (loss on the answer)
  qa_test   one P_test question per row
Metadata per target token: `person` (-1 on padding) and `kind` (KIND_*), so losses can be summed
over a person's name tokens or attribute-value tokens.

    python -m tasks.biography --people 3 --multi 2 --permute
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from tasks import biography_pools as world
from tasks import rows as rows_lib
from tasks.vocab import CLS, SEP, Vocab
from tasks.cli import Parser, at_least, print_json_lines

ATTRIBUTES = world.ATTRIBUTES
NAME_LEN = 7  # first (2 pieces) + middle (2) + last (3)
NUM_NAMES = world.NUM_FIRST * world.NUM_MIDDLE * world.NUM_LAST  # N0
# Kinds of target tokens: other text, the person's name (first occurrence), the word that reveals
# the gender (first pronoun), and the value tokens of attribute a (KIND_VALUE + a); KIND_DOMAIN, a
# domain token shared by every biography of a data source (tasks/biod.py), is about no one.
KIND_DOMAIN, KIND_OTHER, KIND_NAME, KIND_GENDER, KIND_VALUE = -1, 0, 1, 2, 3
SPLITS = ("bio", "mixed", "qa_train", "qa_test")
STREAMS = {"bio": 3, "train": 4, "test": 5}  # rng streams of the shuffled rounds


@dataclasses.dataclass(frozen=True)
class Population:
  """N people as index arrays into the pools (all [N])."""
  first: np.ndarray
  middle: np.ndarray
  last: np.ndarray
  gender: np.ndarray
  year: np.ndarray
  month: np.ndarray
  day: np.ndarray
  birth_city: np.ndarray
  university: np.ndarray
  major: np.ndarray
  company: np.ndarray

  @property
  def company_city(self) -> np.ndarray:
    return world.company_hq()[self.company]


@dataclasses.dataclass(frozen=True)
class Corpus:
  """All biographies as token ids: tokens/kinds [N, M, max_len], lengths [N, M]."""
  tokens: np.ndarray
  kinds: np.ndarray
  lengths: np.ndarray


def name_tokens(pop: Population, p: int) -> tuple[str, ...]:
  pools = world.pools()
  return pools["first"][pop.first[p]] + pools["middle"][pop.middle[p]] + pools["last"][pop.last[p]]


def value_tokens(pop: Population, p: int, attribute: str) -> tuple[str, ...]:
  pools = world.pools()
  if attribute == "birth_date":
    return world.date_tokens(pop.year[p], pop.month[p], pop.day[p])
  if attribute == "birth_city":
    return pools["city"][pop.birth_city[p]]
  if attribute == "company_city":
    return pools["city"][pop.company_city[p]]
  return pools[attribute][getattr(pop, attribute)[p]]


def attribute_space_bits(gender_revealed) -> np.ndarray:
  """log2 of the attribute combinations a person can have (S0 of the capacity bound), the gender
  counted where the text reveals it; company_city is fixed by the company and adds nothing."""
  sizes = [world.NUM_YEARS * len(world.MONTHS) * world.DAYS, world.NUM_CITIES,
           world.NUM_UNIVERSITIES, len(world.MAJORS), world.NUM_COMPANIES]
  return np.log2(sizes).sum() + np.asarray(gender_revealed, float)


class PackedBiographies:
  """Pretraining windows from a corpus: `bios_per_window` biographies of different people each.

  Needs `people`, `multi`, `bios_per_window`, `window`, `vocab` and `corpus(seed)`.
  """

  def decode(self, ids) -> str:
    return join_pieces(self.vocab.tokens[i] for i in ids if i != 0)

  def window_people(self, seed: int, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """People [count, bios_per_window] (-1 = empty slot) and biography index [count] of windows."""
    k = self.bios_per_window
    per_round = -(-self.people // k)
    g = first + np.arange(count)
    rounds, slots = np.divmod(g, per_round)
    people = np.full((count, k), -1, np.int64)
    for r in np.unique(rounds):
      perm = round_permutation(seed, STREAMS["bio"], int(r), self.people)
      padded = np.concatenate([perm, np.full(per_round * k - self.people, -1)])
      rows = rounds == r
      people[rows] = padded.reshape(per_round, k)[slots[rows]]
    return people, rounds % self.multi

  def _bio_rows(self, seed: int, first: int, count: int, rows: slice | None = None
                ) -> dict[str, np.ndarray]:
    """Rows `rows` of the `count` windows from window `first` on."""
    start, stop = rows_lib.bounds(rows, count)
    people, bio = self.window_people(seed, first + start, stop - start)
    return self._pack(seed, people, bio, self.window)

  def person_rows(self, seed: int, people, bio: int = 0) -> dict[str, np.ndarray]:
    """Biography `bio` of each person alone in a row, `[CLS] bio [SEP]` (for measuring losses)."""
    people = np.asarray(people)[:, None]
    return self._pack(seed, people, np.full(len(people), bio), self.max_bio_len + 1)

  def _pack(self, seed: int, people, bio, width: int) -> dict[str, np.ndarray]:
    """Rows `[CLS] bio [SEP] bio [SEP] ...` of people[r] (-1 = none), biography bio[r]."""
    corpus = self.corpus(seed)
    texts = []
    for r in range(len(people)):
      texts.append([])
      for p in people[r][people[r] >= 0]:
        n = corpus.lengths[p, bio[r]]
        texts[-1].append((corpus.tokens[p, bio[r], :n], corpus.kinds[p, bio[r], :n], p))
    return self.pack_texts(texts, width)

  def pack_texts(self, rows, width: int) -> dict[str, np.ndarray]:
    """Rows `[CLS] text [SEP] text [SEP] ...` of (token ids, kinds, person) texts, with the loss on
    every text token and its [SEP]; person -1 marks a text of no one the meter counts (junk)."""
    cls, sep = self.vocab.id(CLS), self.vocab.id(SEP)
    seq = np.zeros((len(rows), width + 1), np.int32)
    person = np.full(seq.shape, -1, np.int32)
    kind = np.zeros(seq.shape, np.int32)
    text = np.zeros(seq.shape, bool)
    seq[:, 0] = cls
    for r, texts in enumerate(rows):
      at = 1
      for tokens, kinds, p in texts:
        n = len(tokens)
        seq[r, at:at + n] = tokens
        kind[r, at:at + n] = kinds
        seq[r, at + n] = sep
        person[r, at:at + n + 1] = p
        text[r, at:at + n + 1] = True
        at += n + 1
    return _shifted(seq, person, kind, weights=text[:, 1:])


@dataclasses.dataclass(frozen=True)
class BioSTask(PackedBiographies):
  people: int = 1000
  multi: int = 1
  permute: bool = False
  fullname: bool = False
  bios_per_window: int = 2   # biographies packed into one pretraining row
  mixed_qa_share: float = 0.25  # share of rows of a `mixed` batch that hold QA pairs
  attributes: tuple = ATTRIBUTES  # attributes asked in QA

  def __post_init__(self):
    object.__setattr__(self, "attributes", tuple(self.attributes))  # configs give lists
    if not 2 <= self.people <= NUM_NAMES:
      raise ValueError(f"task.people: {self.people}; allowed: 2..{NUM_NAMES} (distinct full names)")
    if self.multi < 1:
      raise ValueError(f"task.multi: {self.multi}; allowed: >= 1 biographies per person")
    unknown = [a for a in self.attributes if a not in ATTRIBUTES]
    if unknown or not self.attributes:
      raise ValueError(f"task.attributes: unknown {unknown or 'empty'}; allowed: "
                       f"{', '.join(ATTRIBUTES)}")
    if self.bios_per_window < 1:
      raise ValueError(f"task.bios_per_window: {self.bios_per_window}; allowed: >= 1")
    if not 0.0 <= self.mixed_qa_share < 1.0:
      raise ValueError(f"task.mixed_qa_share: {self.mixed_qa_share}; allowed: [0, 1)")

  # -- the world ---------------------------------------------------------------------------------

  @functools.cached_property
  def vocab(self) -> Vocab:
    pools = world.pools()
    words = [CLS, SEP, world.POSSESSIVE, *world.ANSWER_PROMPT]
    for pronouns in world.PRONOUNS.values():
      words += [w for p in pronouns for w in (p, p.capitalize())]
    for text in [*world.FRAMINGS, *(t for a in ATTRIBUTES for t in world.PHRASINGS[a]),
                 *world.QUESTIONS.values()]:
      words += [w for w in text.split() if not w.startswith("{")]
    for pool in pools.values():
      words += [t for value in pool for t in value]
    words += [*world.MONTHS, ",", *(str(d + 1) for d in range(world.DAYS)),
              *(str(world.FIRST_YEAR + y) for y in range(world.NUM_YEARS))]
    return Vocab(words)

  @functools.cached_property
  def max_bio_len(self) -> int:
    """An upper bound on a biography's length in tokens (sets the window geometry)."""
    pools = world.pools()
    longest_value = dict(birth_date=4, birth_city=max(map(len, pools["city"])),
                         company_city=max(map(len, pools["city"])),
                         **{a: max(map(len, pools[a])) for a in ("university", "major", "company")})
    pronoun_only = sum(max(len(t.split()) - 1 + longest_value[a] for t in world.TEMPLATES[a])
                       for a in ATTRIBUTES)
    named = len(ATTRIBUTES) if self.fullname else 1
    return pronoun_only + NAME_LEN * named  # a name (+ 's) replaces one pronoun per sentence

  @functools.cached_property
  def max_qa_len(self) -> int:
    """Tokens of the longest question + `Answer :` + answer + [SEP]."""
    question = max(len(q.split()) - 1 + NAME_LEN for q in world.QUESTIONS.values())
    return question + len(world.ANSWER_PROMPT) + max(
        max(map(len, p)) for p in world.pools().values()) + 1

  @property
  def window(self) -> int:
    """Tokens per pretraining row: room for bios_per_window of the longest biographies."""
    return self.bios_per_window * (self.max_bio_len + 1)

  # -- people ------------------------------------------------------------------------------------

  @functools.lru_cache(maxsize=4)
  def population(self, seed: int) -> Population:
    rng = np.random.default_rng([seed, 0])
    names = rng.choice(NUM_NAMES, self.people, replace=False)
    first, rest = np.divmod(names, world.NUM_MIDDLE * world.NUM_LAST)
    middle, last = np.divmod(rest, world.NUM_LAST)
    draw = lambda n: rng.integers(n, size=self.people)
    return Population(first=first, middle=middle, last=last, gender=draw(2),
                      year=draw(world.NUM_YEARS), month=draw(len(world.MONTHS)),
                      day=draw(world.DAYS), birth_city=draw(world.NUM_CITIES),
                      university=draw(world.NUM_UNIVERSITIES), major=draw(len(world.MAJORS)),
                      company=draw(world.NUM_COMPANIES))

  @functools.lru_cache(maxsize=4)
  def people_split(self, seed: int) -> dict[str, np.ndarray]:
    """Person ids of P_train and P_test: disjoint halves, sorted."""
    perm = np.random.default_rng([seed, 1]).permutation(self.people)
    half = self.people // 2
    return {"train": np.sort(perm[:half]), "test": np.sort(perm[half:])}

  def value_space_bits(self, gender_revealed) -> np.ndarray:
    return attribute_space_bits(gender_revealed)

  def attribute_values(self, seed: int, p: int) -> dict[str, str]:
    pop = self.population(seed)
    values = {a: join_pieces(value_tokens(pop, p, a)) for a in ATTRIBUTES}
    return {"name": join_pieces(name_tokens(pop, p)), "gender": ("male", "female")[pop.gender[p]],
            **values}

  # -- biographies -------------------------------------------------------------------------------

  def biography(self, pop: Population, p: int, templates, order) -> tuple[list[str], list[int]]:
    """Tokens and kinds of one biography from its template choices and sentence order."""
    name = name_tokens(pop, p)
    subject, possessive = world.PRONOUNS[int(pop.gender[p])]
    tokens, kinds = [], []
    gender_shown = name_shown = False
    for position, a in enumerate(order):
      named = self.fullname or position == 0
      for i, word in enumerate(world.TEMPLATES[ATTRIBUTES[a]][templates[a]].split()):
        if word == "{V}":
          piece = value_tokens(pop, p, ATTRIBUTES[a])
          piece_kinds = [KIND_VALUE + a] * len(piece)
        elif word in ("{S}", "{P}") and named:
          named = False  # a second mention in the same sentence is a pronoun
          piece = name + ((world.POSSESSIVE,) if word == "{P}" else ())
          piece_kinds = [KIND_OTHER if name_shown else KIND_NAME] * len(name)
          piece_kinds += [KIND_OTHER] * (len(piece) - len(name))
          name_shown = True
        elif word in ("{S}", "{P}"):
          pronoun = subject if word == "{S}" else possessive
          piece = (pronoun.capitalize() if i == 0 else pronoun,)
          piece_kinds = [KIND_OTHER if gender_shown else KIND_GENDER]
          gender_shown = True
        else:
          piece, piece_kinds = (word,), [KIND_OTHER]
        tokens += piece
        kinds += piece_kinds
    return tokens, kinds

  @functools.lru_cache(maxsize=4)
  def corpus(self, seed: int) -> Corpus:
    """Every biography of every person, drawn once: templates and orders from (seed)."""
    pop = self.population(seed)
    rng = np.random.default_rng([seed, 2])
    shape = (self.people, self.multi, len(ATTRIBUTES))
    templates = rng.integers(len(world.TEMPLATES["birth_date"]), size=shape)
    orders = rng.random(shape).argsort(-1) if self.permute else np.broadcast_to(
        np.arange(len(ATTRIBUTES)), shape)
    tokens = np.zeros(shape[:2] + (self.max_bio_len,), np.int32)
    kinds = np.zeros(tokens.shape, np.int8)
    lengths = np.zeros(shape[:2], np.int32)
    for p in range(self.people):
      for j in range(self.multi):
        words, kind = self.biography(pop, p, templates[p, j], orders[p, j])
        tokens[p, j, :len(words)] = self.vocab.encode(words)
        kinds[p, j, :len(words)] = kind
        lengths[p, j] = len(words)
    return Corpus(tokens, kinds, lengths)

  # -- questions ---------------------------------------------------------------------------------

  def question(self, pop: Population, p: int, attribute: str) -> tuple[list[str], list[str]]:
    """(prompt tokens ending in `Answer :`, answer tokens ending in [SEP])."""
    words = world.QUESTIONS[attribute].split()
    i = words.index("{N}")
    prompt = words[:i] + list(name_tokens(pop, p)) + words[i + 1:] + list(world.ANSWER_PROMPT)
    return prompt, list(value_tokens(pop, p, attribute)) + [SEP]

  def qa_items(self, seed: int, people: str) -> np.ndarray:
    """All (person, attribute index) pairs of P_train or P_test, [n, 2], person-major."""
    ids = self.people_split(seed)[people]
    attrs = np.array([ATTRIBUTES.index(a) for a in self.attributes])
    return np.stack(np.meshgrid(ids, attrs, indexing="ij"), -1).reshape(-1, 2)

  def qa_prompts(self, seed: int, people: np.ndarray, attribute: str):
    """Prompts [n, P] (all the same length for one attribute) and answers [n, A] (PAD-padded)."""
    pop, encode = self.population(seed), self.vocab.encode
    pairs = [self.question(pop, int(p), attribute) for p in people]
    prompts = np.stack([encode([CLS, *q]) for q, _ in pairs])
    width = max(len(a) for _, a in pairs)
    answers = np.zeros((len(pairs), width), np.int32)
    for r, (_, a) in enumerate(pairs):
      answers[r, :len(a)] = encode(a)
    return prompts, answers

  # -- batches -----------------------------------------------------------------------------------

  def batch(self, seed: int, split: str, step: int, batch_size: int,
            rows: slice | None = None) -> dict[str, np.ndarray]:
    """Rows `rows` (default all) of batch `step` of `split`: a pure function of the arguments.

    Every row is an index into a stream of windows (or QA pairs), so other rows are never built.
    """
    if split not in SPLITS:
      raise ValueError(f"split: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if split == "bio":
      return self._bio_rows(seed, step * batch_size, batch_size, rows)
    if split in ("qa_train", "qa_test"):
      start, stop = rows_lib.bounds(rows, batch_size)
      return self._qa_rows(seed, split[3:], step * batch_size + start, stop - start, 1,
                           self.max_qa_len)
    qa = int(round(batch_size * self.mixed_qa_share))
    per_row = self.window // self.max_qa_len

    def qa_rows(part):
      start, stop = rows_lib.bounds(part, qa)
      return self._qa_rows(seed, "train", (step * qa + start) * per_row, stop - start, per_row,
                           self.window)

    bio_rows = lambda part: self._bio_rows(seed, step * (batch_size - qa), batch_size - qa, part)
    return rows_lib.stack([qa_rows, bio_rows], [qa, batch_size - qa], rows)

  def _qa_rows(self, seed: int, people: str, first: int, count: int, per_row: int, width: int):
    """Rows of `per_row` QA pairs each, from a stream of rounds of shuffled (person, attr) items."""
    pop = self.population(seed)
    items = self.qa_items(seed, people)
    g = first + np.arange(count * per_row)
    rounds, slots = np.divmod(g, len(items))
    seq = np.zeros((count, width + 1), np.int32)
    person = np.full(seq.shape, -1, np.int32)
    kind = np.zeros(seq.shape, np.int32)
    answer = np.zeros(seq.shape, bool)
    seq[:, 0] = self.vocab.id(CLS)
    perms = {int(r): round_permutation(seed, STREAMS[people], int(r), len(items))
             for r in np.unique(rounds)}
    for r in range(count):
      at = 1
      for i in range(per_row):
        flat = r * per_row + i
        p, a = items[perms[int(rounds[flat])][slots[flat]]]
        prompt, reply = self.question(pop, int(p), ATTRIBUTES[a])
        words = prompt + reply
        seq[r, at:at + len(words)] = self.vocab.encode(words)
        person[r, at:at + len(words)] = p
        span = slice(at + len(prompt), at + len(words))
        answer[r, span] = True
        kind[r, span] = KIND_VALUE + a
        at += len(words)
    return _shifted(seq, person, kind, weights=answer[:, 1:])

  # -- reading -----------------------------------------------------------------------------------

  def records(self, seed: int, people: int) -> list[dict]:
    """A readable record per person: attributes, every biography, the QA pairs."""
    corpus, pop = self.corpus(seed), self.population(seed)
    split = self.people_split(seed)
    out = []
    for p in range(min(people, self.people)):
      bios = [self.decode(corpus.tokens[p, j, :corpus.lengths[p, j]]) for j in range(self.multi)]
      qa = []
      for a in self.attributes:
        prompt, reply = self.question(pop, p, a)
        qa.append({"question": join_pieces(prompt[:-len(world.ANSWER_PROMPT)]),
                   "answer": join_pieces(reply[:-1])})
      out.append({"person": p, "split": "P_train" if p in split["train"] else "P_test",
                  "attributes": self.attribute_values(seed, p), "biographies": bios, "qa": qa})
    return out


@functools.lru_cache(maxsize=64)
def round_permutation(seed: int, stream: int, r: int, n: int) -> np.ndarray:
  return np.random.default_rng([seed, stream, r]).permutation(n)


def _shifted(seq, person, kind, weights) -> dict[str, np.ndarray]:
  """Next-token rows: inputs seq[:-1], targets seq[1:], metadata of the target tokens."""
  return {"inputs": seq[:, :-1], "targets": seq[:, 1:], "weights": weights.astype(np.float32),
          "person": person[:, 1:], "kind": kind[:, 1:]}


def join_pieces(tokens) -> str:
  """Word pieces joined into words: `Fa ##la` -> `Fala`."""
  return " ".join(tokens).replace(" ##", "")


def main(argv=None):
  parser = Parser(description="Print bioS people, biographies, QA as JSON lines.")
  parser.add_argument("--people", type=at_least(1), default=3, help="how many people to print")
  parser.add_argument("--population", type=int, default=1000, help="N, people in the population")
  parser.add_argument("--multi", type=int, default=1)
  parser.add_argument("--permute", action="store_true")
  parser.add_argument("--fullname", action="store_true")
  parser.add_argument("--seed", type=at_least(0), default=0)
  args = parser.parse_args(argv)
  print_json_lines(parser, lambda: BioSTask(
      people=max(args.population, args.people), multi=args.multi, permute=args.permute,
      fullname=args.fullname).records(args.seed, args.people))


if __name__ == "__main__":
  main()
