"""Positional arithmetic (Shen et al. 2023 and anchors): digit-level addition, subtraction and
multiplication in composable formats.

A sequence is `[BOS] prompt | target [EOS]`, one token per digit, e.g. for 576 + 361:

    plain                    [BOS] 5 7 6 + 3 6 1 =   9 3 7 [EOS]
    reverse                  [BOS] 5 7 6 + 3 6 1 =   7 3 9 [EOS]        (answer, least significant first)
    reverse_operands         [BOS] 6 7 5 + 1 6 3 =   9 3 7 [EOS]
    pad (pad_width=4)        [BOS] 0 5 7 6 + 0 3 6 1 =   0 0 9 3 7 [EOS]
    random_space             [BOS] 5 _ 7 6 + _ 3 6 1 =   9 3 7 [EOS]    (`_` between prompt tokens)
    index_hints              [BOS] c 5 b 7 a 6 + c 3 b 6 a 1 =   c 9 b 3 a 7 [EOS]
    scratchpad (add only)    ... =   6 + 1 + 0 = 0 7 ; 7 + 6 + 0 = 1 3 ; 5 + 3 + 1 = 0 9 ; | 9 3 7 [EOS]
    text                     [BOS] anna reads one book . what is 5 7 6 plus 3 6 1 ?   9 3 7 [EOS]

Index hints name the place value (a = units), so the same letter marks digits that add up together.
A scratchpad step `x + y + c = c' s ;` adds the digits of one place (units first) with the carry.
Formats compose (`pad,reverse` is Shen et al.'s best multiplication format).

Operand digit counts are stratified: batch `step` cycles through every (digits of a, digits of b)
cell in [min_digits, max_digits]^2, so all cells are equally represented. The loss mask covers the
answer tokens (target and [EOS]) only.

    python -m tasks.arithmetic --op mul --digits 5 --format pad,reverse --num 5
"""
from __future__ import annotations

import dataclasses
import functools
import string

import numpy as np

from tasks import rows as rows_lib
from tasks.vocab import Vocab
from tasks.cli import Parser, at_least, print_json_lines
from tasks.fields import check_count_range

BOS, EOS, SPACE, SCRATCH_END = "[BOS]", "[EOS]", "_", "|"
DIGITS = tuple("0123456789")
HINTS = tuple(string.ascii_lowercase)  # index hint of place value 0, 1, ... (units = a)
OPS = {"add": "+", "sub": "-", "mul": "*"}
FORMATS = ("plain", "reverse", "reverse_operands", "pad", "random_space", "index_hints",
           "scratchpad", "text")
SPLITS = {"train": 0, "test": 1}
# Natural-language wrappers: an optional filler sentence, then a question with slots A and B.
FILLERS = ((), ("tom", "has", "one", "red", "ball", "."), ("it", "is", "sunny", "today", "."),
           ("we", "count", "the", "apples", "."), ("anna", "reads", "one", "book", "."))
QUESTIONS = {
    "add": (("what", "is", "A", "plus", "B", "?"), ("the", "sum", "of", "A", "and", "B", "is"),
            ("if", "you", "add", "B", "to", "A", "you", "get")),
    "sub": (("what", "is", "A", "minus", "B", "?"), ("the", "difference", "of", "A", "and", "B",
                                                      "is")),
    "mul": (("what", "is", "A", "times", "B", "?"), ("the", "product", "of", "A", "and", "B", "is"),
            ("if", "you", "multiply", "A", "by", "B", "you", "get")),
}
WORDS = tuple(dict.fromkeys(w for group in (FILLERS, *QUESTIONS.values()) for s in group
                            for w in s if w not in ("A", "B")))


def parse_format(spec: str) -> frozenset[str]:
  """`pad,reverse` -> {"pad", "reverse"}; `plain` is the empty set."""
  parts = [p.strip() for p in spec.split(",") if p.strip()]
  for part in parts:
    if part not in FORMATS:
      raise ValueError(f"task.format: unknown {part!r}; allowed: {', '.join(FORMATS)}")
  return frozenset(parts) - {"plain"}


@dataclasses.dataclass(frozen=True)
class ArithmeticTask:
  op: str = "add"
  min_digits: int = 1
  max_digits: int = 10     # training operands have min_digits..max_digits digits each
  format: str = "plain"    # comma-separated subset of FORMATS
  pad_width: int = 0       # operand width with `pad`; 0 means max_digits
  space_prob: float = 0.3  # chance of a `_` in each gap between prompt tokens (`random_space`)

  def __post_init__(self):
    if self.op not in OPS:
      raise ValueError(f"task.op: unknown {self.op!r}; allowed: {', '.join(OPS)}")
    check_count_range("min_digits", self.min_digits, "max_digits", self.max_digits)
    flags = parse_format(self.format)
    if "scratchpad" in flags and self.op != "add":
      raise ValueError(f"task.format: 'scratchpad' is defined for op 'add' only, not {self.op!r}")
    if self.pad_width < 0:
      raise ValueError(f"task.pad_width: {self.pad_width}; allowed: >= 0 (0 = max_digits)")
    if "pad" in flags:
      self.check_digits(self.max_digits)
    if not 0.0 <= self.space_prob <= 1.0:
      raise ValueError(f"task.space_prob: {self.space_prob}; allowed: 0..1")

  @functools.cached_property
  def flags(self) -> frozenset[str]:
    return parse_format(self.format)

  @property
  def width(self) -> int:
    return self.pad_width or self.max_digits

  @functools.cached_property
  def vocab(self) -> Vocab:
    return Vocab([BOS, EOS, *DIGITS, *OPS.values(), "=", SPACE, SCRATCH_END, ";", *HINTS, *WORDS])

  @functools.cached_property
  def digit_ids(self) -> tuple[int, ...]:
    return tuple(self.vocab.id(d) for d in DIGITS)

  def check_digits(self, digits: int) -> None:
    """Fails in one line if operands of `digits` digits cannot be written in this format."""
    if "pad" in self.flags and digits > self.width:
      raise ValueError(f"task.pad_width: {self.width} is smaller than an operand ({digits} digits)")
    if "index_hints" in self.flags and self.answer_width(digits) > len(HINTS):
      raise ValueError(f"task.format: index_hints name at most {len(HINTS)} places; "
                       f"{digits}-digit operands need {self.answer_width(digits)}")

  def answer_width(self, digits: int) -> int:
    """Most digits of an answer for operands of at most `digits` digits (sign excluded)."""
    width = max(digits, self.width) if "pad" in self.flags else digits
    return 2 * width if self.op == "mul" else width + (self.op == "add")

  def target_len(self, digits: int | None = None) -> int:
    """Most target tokens (with [EOS]) when operands have at most `digits` digits."""
    digits = digits or self.max_digits
    width = max(digits, self.width) if "pad" in self.flags else digits
    per_digit = 2 if "index_hints" in self.flags else 1
    target = self.answer_width(digits) * per_digit + (self.op == "sub") + 1
    if "scratchpad" in self.flags:
      target += 9 * width + 1  # `x + y + c = c' s ;` per place, then `|`
    return target

  def seq_len(self, digits: int | None = None) -> int:
    """Length of every batch's `inputs` when operands have at most `digits` digits."""
    digits = digits or self.max_digits
    width = max(digits, self.width) if "pad" in self.flags else digits
    per_digit = 2 if "index_hints" in self.flags else 1
    body = 2 * width * per_digit + 1  # a op b
    if "text" in self.flags:  # the operator is a word; the last word closes the prompt
      body += max(map(len, FILLERS)) + max(map(len, QUESTIONS[self.op])) - 4
    if "random_space" in self.flags:
      body += body - 1
    return 1 + body + 1 + self.target_len(digits) - 1  # BOS, body, `=`, target; minus the last

  def batch_length(self, digits: tuple[int, int] | None = None, length: int | None = None) -> int:
    """`length`, or by default the inputs' length of a batch with operands of `digits` digits."""
    return length or self.seq_len(max(digits) if digits else None)

  # -- sampling ----------------------------------------------------------------------------------

  def cells(self) -> list[tuple[int, int]]:
    span = range(self.min_digits, self.max_digits + 1)
    return [(i, j) for i in span for j in span]

  def sample(self, seed: int, split: str, step: int, batch_size: int,
             digits: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """Operand pairs (a, b) of batch `step`: a pure function of the arguments.

    Without `digits`, the batch cycles through every digit-count cell; with it, every pair has
    exactly that many digits.
    """
    return [pair for block in rows_lib.blocks(batch_size)
            for pair in self._block_pairs(seed, split, step, batch_size, digits, *block)]

  def _block_pairs(self, seed, split, step, batch_size, digits, block, first, count):
    """The pairs of rows first..first+count of batch `step`, from the stream of their block."""
    rng = self._rng(seed, split, step, block, salt=0)
    if digits is None:
      cells = self.cells()
      index = (step * batch_size + first + np.arange(count)) % len(cells)
      da, db = np.array(cells)[rng.permutation(index)].T
    else:
      for d in digits:
        if d < 1:
          raise ValueError(f"digits: {d}; allowed: >= 1")
      da, db = np.full(count, digits[0]), np.full(count, digits[1])
    return list(zip(_numbers(rng, da), _numbers(rng, db)))

  def _rng(self, seed, split, step, block, salt) -> np.random.Generator:
    if split not in SPLITS:
      raise ValueError(f"split: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return np.random.default_rng([seed, SPLITS[split], step, salt, block])

  # -- rendering ---------------------------------------------------------------------------------

  def render(self, a: int, b: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(prompt tokens, target tokens) of one problem; `rng` draws spaces and text wrappers."""
    self.check_digits(max(len(str(a)), len(str(b))))
    sa, sb = self._operand(a), self._operand(b)
    if "text" in self.flags:
      questions = QUESTIONS[self.op]
      filler = FILLERS[rng.integers(len(FILLERS))]
      question = questions[rng.integers(len(questions))]
      body = list(filler)
      for word in question:
        body += sa if word == "A" else sb if word == "B" else [word]
      close = body.pop()
    else:
      body, close = [*sa, OPS[self.op], *sb], "="
    if "random_space" in self.flags:
      spaced = [body[0]]
      for token, space in zip(body[1:], rng.random(len(body) - 1) < self.space_prob):
        spaced += [SPACE, token] if space else [token]
      body = spaced
    target = self._scratchpad(a, b) if "scratchpad" in self.flags else []
    return [BOS, *body, close], [*target, *self._answer(a, b), EOS]

  def _operand(self, x: int) -> list[str]:
    width = self.width if "pad" in self.flags else 0
    return self._digits(str(x).zfill(width), "reverse_operands" in self.flags)

  def _answer(self, a: int, b: int) -> list[str]:
    c = {"add": a + b, "sub": a - b, "mul": a * b}[self.op]
    width = self.answer_width(self.width) if "pad" in self.flags else 0
    sign = ["-"] if c < 0 else []
    return sign + self._digits(str(abs(c)).zfill(width), "reverse" in self.flags)

  def _digits(self, text: str, reverse: bool) -> list[str]:
    """Digits of a number in written order, with index hints when asked."""
    places = range(len(text) - 1, -1, -1)  # place value of each written digit
    pairs = list(zip(places, text))
    if reverse:
      pairs.reverse()
    if "index_hints" in self.flags:
      return [t for place, d in pairs for t in (HINTS[place], d)]
    return [d for _, d in pairs]

  def _scratchpad(self, a: int, b: int) -> list[str]:
    width = self.width if "pad" in self.flags else max(len(str(a)), len(str(b)))
    steps, carry = [], 0
    for place in range(width):
      x, y = a // 10 ** place % 10, b // 10 ** place % 10
      total = x + y + carry
      steps += [str(x), "+", str(y), "+", str(carry), "=", str(total // 10), str(total % 10), ";"]
      carry = total // 10
    return steps + [SCRATCH_END]

  def batch(self, seed: int, split: str, step: int, batch_size: int, rows: slice | None = None,
            digits: tuple[int, int] | None = None, length: int | None = None
            ) -> dict[str, np.ndarray]:
    """Token ids of batch `step`, next-token targets, the answer-only loss mask and metadata.

    `inputs`, `targets`, `weights` are [B, length] (default `seq_len()`), padded with [PAD];
    `prompt_length` counts the prompt tokens (with [BOS]), `a_digits`/`b_digits` the operand sizes.
    `rows` (default all) picks rows of the batch; only the blocks holding them are drawn.
    """
    length = self.batch_length(digits, length)
    return rows_lib.assemble(
        lambda *block: self.block(seed, split, step, batch_size, *block, digits, length),
        batch_size, rows)

  def block(self, seed: int, split: str, step: int, batch_size: int, block: int, first: int,
            count: int, digits: tuple[int, int] | None, length: int) -> dict[str, np.ndarray]:
    """Rows first..first+count (block `block`) of batch `step`, encoded as `batch` does."""
    pairs = self._block_pairs(seed, split, step, batch_size, digits, block, first, count)
    rng = self._rng(seed, split, step, block, salt=1)
    tokens = np.zeros((count, length + 1), np.int32)
    weights = np.zeros((count, length), np.float32)
    prompt_length = np.zeros(count, np.int32)
    ids = self.vocab._ids
    for row, (a, b) in enumerate(pairs):
      prompt, target = self.render(a, b, rng)
      n, m = len(prompt), len(target)
      if n + m > length + 1:
        raise ValueError(f"length: {length} is too short for a sequence of {n + m - 1} inputs")
      tokens[row, :n + m] = [ids[t] for t in prompt + target]
      weights[row, n - 1:n + m - 1] = 1.0  # inputs whose next token is an answer token
      prompt_length[row] = n
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:], "weights": weights,
            "prompt_length": prompt_length,
            "a_digits": np.array([len(str(a)) for a, _ in pairs], np.int32),
            "b_digits": np.array([len(str(b)) for _, b in pairs], np.int32)}

  def examples(self, seed: int, split: str, step: int, num: int) -> list[dict]:
    """Readable records: prompt and target text exactly as the model sees them, and the problem."""
    records = []
    for block in rows_lib.blocks(num):
      rng = self._rng(seed, split, step, block[0], salt=1)
      for a, b in self._block_pairs(seed, split, step, num, None, *block):
        prompt, target = self.render(a, b, rng)
        records.append({"prompt": " ".join(prompt), "target": " ".join(target), "a": a, "b": b,
                        "op": self.op})
    return records


def _numbers(rng: np.random.Generator, digits: np.ndarray) -> list[int]:
  """Uniform numbers with exactly `digits[i]` digits (0..9 for one digit); any size, exact."""
  draws = rng.integers(0, 10, size=(len(digits), int(max(digits))))
  draws[:, 0] = np.where(digits > 1, rng.integers(1, 10, size=len(digits)), draws[:, 0])
  return [int("".join(map(str, row[:d]))) for row, d in zip(draws.tolist(), digits.tolist())]


def main(argv=None):
  parser = Parser(description="Print arithmetic problems as JSON lines.")
  parser.add_argument("--op", default="add", help=", ".join(OPS))
  parser.add_argument("--digits", type=int, default=3, help="most digits of each operand")
  parser.add_argument("--min-digits", type=int, default=1)
  parser.add_argument("--format", default="plain", help="comma-separated: " + ", ".join(FORMATS))
  parser.add_argument("--pad-width", type=int, default=0, help="0 = --digits")
  parser.add_argument("--num", type=at_least(1), default=5)
  parser.add_argument("--seed", type=at_least(0), default=0)
  parser.add_argument("--split", default="train", choices=sorted(SPLITS))
  parser.add_argument("--step", type=at_least(0), default=0)
  args = parser.parse_args(argv)
  print_json_lines(parser, lambda: ArithmeticTask(
      op=args.op, min_digits=args.min_digits, max_digits=args.digits, format=args.format,
      pad_width=args.pad_width).examples(args.seed, args.split, args.step, args.num))


if __name__ == "__main__":
  main()
