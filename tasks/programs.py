"""Learning to execute: random short C programs and exactly what they print.

The first version of the LEGO paper trains transformers to execute small C programs; its format is
not public. This family follows Zaremba & Sutskever's "learning to execute" in a subset of C:

    #include <stdio.h>

    int main(void) {
      int a = 3;
      int b = 7;
      int c = 0;
      for (int i = 0; i < 3; i++) {
        c = (c + b) % 10;
        if (c > 4) {
          a = a % 3;
        } else {
          b = (b - i) % 10;
        }
      }
      printf("%d\\n", c);
      return 0;
    }

- `num_vars` int variables (a, b, ...), each declared with a literal in 0..modulus-1.
- Statements: an assignment `x = e;` (e a variable, loop counter or literal), `x = (e op e) % M;`
  for op in + - * (M = `modulus`), `x = e % c;` with a literal 2 <= c < M; `if (v cmp e) {...}`
  with an optional `else {...}`, cmp in < <= > >= == !=; `for (int i = 0; i < L; i++) {...}` with
  2 <= L <= `loop_bound` (loop counters i, j, k, ... by nesting level, read-only).
- Every value a program ever holds lies in (-modulus, modulus): assignments with + - * reduce by
  `% modulus`, C's remainder keeps the dividend's sign (so outputs can be negative), and loop
  counters stay below loop_bound <= modulus. No product exceeds (modulus-1)^2 < 2^31: no overflow.
- `printf` prints one variable, drawn among those the program assigns (so statements matter).
- Difficulty: `statements` counts every statement (an if or a for counts once, plus what it holds);
  `depth` is the deepest nesting of if/for. Batch `step` cycles through every (statements, depth)
  cell of the knobs, so all cells are equally represented; these cells are the report's buckets.

The model reads the C tokens of main's body (declarations, statements and `printf ( x ) ;`, the
constant format string and the include/main/return boilerplate dropped), numbers digit by digit,
then writes the printed value: `[BOS] int a = 3 ; ... printf ( c ) ; [SEP] - 7 [EOS]`. The loss mask
covers the answer tokens (value and [EOS]) only.

Held-out programs: a program whose token text hashes to bucket 0 of `held_out_buckets` belongs to the
test split and never to train, so no test program is ever trained on.

    python -m tasks.programs --num 5 --seed 0
"""
from __future__ import annotations

import dataclasses
import functools
import random
import zlib

import numpy as np

from tasks import rows as rows_lib
from tasks.cli import Parser, at_least, print_json_lines
from tasks.fields import check_count_range
from tasks.vocab import SEP, Vocab

BOS, EOS = "[BOS]", "[EOS]"
VARS = tuple("abcdefgh")        # program variables
LOOP_VARS = tuple("ijklmn")     # loop counters, by nesting level of the loop
OPS = ("+", "-", "*", "%")
CONSTRUCTS = ("if", "else", "for")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
KEYWORDS = ("int", "if", "else", "for", "printf")
PUNCTUATION = ("(", ")", "{", "}", ";", "=", "++")
DIGITS = tuple("0123456789")
SPLITS = {"train": 0, "test": 1}
INT_MAX = 2 ** 31 - 1
MAX_TRIES = 10_000  # draws per held-out program before the generator gives up


@dataclasses.dataclass(frozen=True)
class ProgramsTask:
  num_vars: int = 3
  min_statements: int = 1
  max_statements: int = 4
  max_depth: int = 2          # deepest nesting of if/for
  loop_bound: int = 3         # loops run 2..loop_bound times
  modulus: int = 10           # value range: every value lies in (-modulus, modulus)
  ops: str = "+-*%"           # arithmetic operators allowed, a subset of OPS
  constructs: str = "if,else,for"  # comma-separated subset of CONSTRUCTS
  held_out_buckets: int = 8

  def __post_init__(self):
    if not 1 <= self.num_vars <= len(VARS):
      raise ValueError(f"task.num_vars: {self.num_vars} is out of range; allowed: 1..{len(VARS)}")
    check_count_range("min_statements", self.min_statements, "max_statements",
                      self.max_statements)
    if not 0 <= self.max_depth <= len(LOOP_VARS):
      raise ValueError(f"task.max_depth: {self.max_depth} is out of range; allowed: "
                       f"0..{len(LOOP_VARS)}")
    if self.modulus < 2 or (self.modulus - 1) ** 2 + self.modulus > INT_MAX:
      raise ValueError(f"task.modulus: {self.modulus}; allowed: 2..46340 (a product of two values "
                       "must fit a 32-bit int)")
    unknown = [op for op in self.ops if op not in OPS]
    if unknown or not self.ops or len(set(self.ops)) != len(self.ops):
      raise ValueError(f"task.ops: {self.ops!r}; allowed: distinct characters of {''.join(OPS)!r}")
    if "%" in self.ops and self.modulus < 3:
      raise ValueError(f"task.ops: '%' needs a divisor 2..modulus-1; task.modulus={self.modulus}")
    for name in self.construct_set:
      if name not in CONSTRUCTS:
        raise ValueError(f"task.constructs: unknown {name!r}; allowed: {', '.join(CONSTRUCTS)}")
    if "else" in self.construct_set and "if" not in self.construct_set:
      raise ValueError("task.constructs: 'else' needs 'if'")
    if self.max_depth > 0 and not self.compound_kinds:
      raise ValueError(f"task.max_depth: {self.max_depth} needs 'if' or 'for' in task.constructs")
    if "for" in self.construct_set:
      if self.loop_bound < 1:
        raise ValueError(f"task.loop_bound: {self.loop_bound}; allowed: >= 1")
      if self.loop_bound > self.modulus:
        raise ValueError(f"task.loop_bound: {self.loop_bound} lets a loop counter reach "
                         f"{self.loop_bound - 1}, outside the value range (-{self.modulus}, "
                         f"{self.modulus}) of task.modulus")
    if self.held_out_buckets < 2:
      raise ValueError(f"task.held_out_buckets: {self.held_out_buckets}; allowed: >= 2")

  @functools.cached_property
  def construct_set(self) -> tuple[str, ...]:
    return tuple(c.strip() for c in self.constructs.split(",") if c.strip())

  @functools.cached_property
  def compound_kinds(self) -> tuple[str, ...]:
    return tuple(k for k in ("if", "for") if k in self.construct_set)

  @functools.cached_property
  def vocab(self) -> Vocab:
    return Vocab([BOS, SEP, EOS, *KEYWORDS, *PUNCTUATION, *OPS, *COMPARISONS, *DIGITS, *VARS,
                  *LOOP_VARS])

  @functools.cached_property
  def _ids(self) -> dict[str, int]:
    return self.vocab._ids

  # -- sizes -------------------------------------------------------------------------------------

  @property
  def value_digits(self) -> int:
    return len(str(self.modulus - 1))

  def statement_tokens(self) -> int:
    """Most tokens one statement adds (its own tokens, not those of statements it holds)."""
    n = self.value_digits
    sizes = [4 + n]  # x = e ;
    if set(self.ops) - {"%"}:
      sizes.append(8 + 2 * n + len(str(self.modulus)))  # x = ( e op e ) % M ;
    if "%" in self.ops:
      sizes.append(4 + 2 * n)  # x = e % c ;
    if "if" in self.construct_set:
      sizes.append(6 + n + (2 if "else" in self.construct_set else 0))  # if ( v cmp e ) { } else { }
    if "for" in self.construct_set:
      sizes.append(15 + len(str(self.loop_bound)))  # for ( int i = 0 ; i < L ; i ++ ) { }
    return max(sizes)

  def answer_len(self) -> int:
    return 1 + self.value_digits + 1  # sign, digits, [EOS]

  @property
  def prompt_len(self) -> int:
    """Most prompt tokens: [BOS], declarations, statements, `printf ( x ) ;`, [SEP]."""
    return (1 + self.num_vars * (4 + self.value_digits)
            + self.max_statements * self.statement_tokens() + 5 + 1)

  @property
  def seq_len(self) -> int:
    """Length of every batch's `inputs` (prompt and answer, minus the last token)."""
    return self.prompt_len + self.answer_len() - 1

  def cells(self) -> list[tuple[int, int]]:
    """The (statements, depth) buckets: a depth-d program holds at least d + 1 statements."""
    return [(s, d) for s in range(self.min_statements, self.max_statements + 1)
            for d in range(0, min(self.max_depth, s - 1) + 1)]

  # -- sampling ----------------------------------------------------------------------------------

  def _rng(self, seed, split, step, block) -> np.random.Generator:
    if split not in SPLITS:
      raise ValueError(f"split: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return np.random.default_rng([seed, SPLITS[split], step, block])

  def block_programs(self, seed: int, split: str, step: int, batch_size: int, block: int,
                     first: int, count: int) -> list["Program"]:
    """The programs of rows first..first+count of batch `step`, from their block's stream."""
    rng = self._rng(seed, split, step, block)
    cells = self.cells()
    index = (step * batch_size + first + np.arange(count)) % len(cells)
    chosen = [cells[i] for i in rng.permutation(index)]
    r = random.Random(int(rng.integers(2 ** 63)))
    want_test = split == "test"
    programs = []
    for statements, depth in chosen:
      for _ in range(MAX_TRIES):
        program = self.draw(r, statements, depth)
        if (program.bucket(self.held_out_buckets) == 0) == want_test:
          programs.append(program)
          break
      else:
        raise ValueError(f"task: found no {split} program with {statements} statements at depth "
                         f"{depth} in {MAX_TRIES} draws; widen the knobs")
    return programs

  def sample(self, seed: int, split: str, step: int, batch_size: int) -> list["Program"]:
    """The programs of batch `step` of `split`: a pure function of the arguments."""
    return [p for block in rows_lib.blocks(batch_size)
            for p in self.block_programs(seed, split, step, batch_size, *block)]

  def draw(self, r: random.Random, statements: int, depth: int) -> "Program":
    """One program with exactly `statements` statements nested exactly `depth` deep."""
    rand = r.random
    names = VARS[:self.num_vars]
    body = self._block(rand, statements, depth, ())
    assigned = sorted(_assigned(body))
    printed = assigned[int(rand() * len(assigned))]
    inits = tuple(int(rand() * self.modulus) for _ in names)
    return Program(names, inits, tuple(body), printed, statements, depth, self.modulus)

  def _block(self, rand, n: int, depth: int, loops: tuple[str, ...]) -> list:
    """`n` statements (nested ones included) whose deepest nesting is exactly `depth`."""
    if depth == 0:
      return [self._assign(rand, loops) for _ in range(n)]
    inner = depth + int(rand() * (n - depth))  # statements inside the deepest compound: depth..n-1
    rest = n - 1 - inner
    others = self._block(rand, rest, int(rand() * (min(depth, rest - 1) + 1)), loops) if rest else []
    others.insert(int(rand() * (len(others) + 1)), self._compound(rand, inner, depth - 1, loops))
    return others

  def _compound(self, rand, n: int, depth: int, loops: tuple[str, ...]) -> tuple:
    kinds = self.compound_kinds
    kind = kinds[int(rand() * len(kinds))]
    if kind == "for":
      bound = 2 + int(rand() * (self.loop_bound - 1)) if self.loop_bound >= 2 else 1
      var = LOOP_VARS[len(loops)]
      return ("for", var, bound, tuple(self._block(rand, n, depth, loops + (var,))))
    body = self._block(rand, n, depth, loops)
    condition = (self._var(rand, loops), COMPARISONS[int(rand() * len(COMPARISONS))],
                 self._atom(rand, loops))
    if "else" in self.construct_set and len(body) >= 2 and rand() < 0.5:
      cut = 1 + int(rand() * (len(body) - 1))
      return ("if", condition, tuple(body[:cut]), tuple(body[cut:]))
    return ("if", condition, tuple(body), None)

  def _var(self, rand, loops) -> str:
    pool = VARS[:self.num_vars] + loops
    return pool[int(rand() * len(pool))]

  def _atom(self, rand, loops):
    """A variable or loop counter (a name) or a literal 0..modulus-1 (an int)."""
    if rand() < 0.4:
      return int(rand() * self.modulus)
    return self._var(rand, loops)

  def _assign(self, rand, loops) -> tuple:
    target = VARS[int(rand() * self.num_vars)]
    forms = (None,) + tuple(self.ops)  # None: copy
    op = forms[int(rand() * len(forms))]
    # Inside loops, half the assignments update their own target (accumulate).
    first = target if loops and rand() < 0.5 else self._atom(rand, loops)
    if op is None:
      return ("set", target, first)
    if op == "%":
      return ("set", target, (first, "%", 2 + int(rand() * (self.modulus - 2))))
    return ("set", target, (first, op, self._atom(rand, loops)))

  # -- rendering ---------------------------------------------------------------------------------

  def encode(self, program: "Program") -> list[int]:
    """Prompt token ids: [BOS], the body's tokens (numbers digit by digit), [SEP]."""
    ids = self._ids
    return [ids[BOS]] + [ids[t] for t in program.model_tokens()] + [ids[SEP]]

  def encode_answer(self, program: "Program") -> list[int]:
    ids = self._ids
    return [ids[c] for c in str(program.output())] + [ids[EOS]]

  def batch(self, seed: int, split: str, step: int, batch_size: int,
            rows: slice | None = None) -> dict[str, np.ndarray]:
    """Token ids of batch `step`, next-token targets, the answer-only loss mask and metadata.

    `inputs`, `targets`, `weights` are [B, seq_len] padded with [PAD]; `prompt_length` counts the
    prompt tokens (with [BOS] and [SEP]); `statements`, `depth` are each program's bucket.
    """
    return rows_lib.assemble(
        lambda *block: self.block(seed, split, step, batch_size, *block), batch_size, rows)

  def block(self, seed: int, split: str, step: int, batch_size: int, block: int, first: int,
            count: int) -> dict[str, np.ndarray]:
    programs = self.block_programs(seed, split, step, batch_size, block, first, count)
    length = self.seq_len
    tokens = np.zeros((count, length + 1), np.int32)
    weights = np.zeros((count, length), np.float32)
    prompt_length = np.zeros(count, np.int32)
    for row, program in enumerate(programs):
      prompt, answer = self.encode(program), self.encode_answer(program)
      n, m = len(prompt), len(answer)
      tokens[row, :n + m] = prompt + answer
      weights[row, n - 1:n + m - 1] = 1.0
      prompt_length[row] = n
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:], "weights": weights,
            "prompt_length": prompt_length,
            "statements": np.array([p.statements for p in programs], np.int32),
            "depth": np.array([p.depth for p in programs], np.int32)}

  def examples(self, seed: int, split: str, step: int, num: int) -> list[dict]:
    """Readable records: the C program, what it prints, and the tokens the model reads."""
    return [{"program": p.c_source(), "output": str(p.output()),
             "tokens": self.vocab.decode(self.encode(p) + self.encode_answer(p)),
             "statements": p.statements, "depth": p.depth, "split": split}
            for p in self.sample(seed, split, step, num)]


@dataclasses.dataclass(frozen=True)
class Program:
  """A program's syntax tree. Statements: ("set", var, expr) where expr is an atom or
  (atom, op, atom); ("if", (var, cmp, atom), then, else or None); ("for", var, bound, body).
  Atoms are names (str) or literals (int)."""
  names: tuple[str, ...]
  inits: tuple[int, ...]
  body: tuple
  printed: str
  statements: int
  depth: int
  modulus: int

  # -- the C text and the model's tokens ---------------------------------------------------------

  def lines(self) -> list[tuple[int, list[str]]]:
    """(indent, C tokens) of each line of main's body, numbers whole."""
    out = [(0, ["int", name, "=", str(v), ";"]) for name, v in zip(self.names, self.inits)]
    self._lines(self.body, 0, out)
    return out

  def _lines(self, body, indent: int, out: list):
    for s in body:
      if s[0] == "set":
        out.append((indent, [s[1], "="] + self._expr(s[2]) + [";"]))
      elif s[0] == "if":
        var, cmp, rhs = s[1]
        out.append((indent, ["if", "(", var, cmp, str(rhs), ")", "{"]))
        self._lines(s[2], indent + 1, out)
        if s[3] is not None:
          out.append((indent, ["}", "else", "{"]))
          self._lines(s[3], indent + 1, out)
        out.append((indent, ["}"]))
      else:
        _, var, bound, inner = s
        out.append((indent, ["for", "(", "int", var, "=", "0", ";", var, "<", str(bound), ";",
                             var, "++", ")", "{"]))
        self._lines(inner, indent + 1, out)
        out.append((indent, ["}"]))

  def _expr(self, e) -> list[str]:
    if not isinstance(e, tuple):
      return [str(e)]
    a, op, b = e
    if op == "%":
      return [str(a), "%", str(b)]
    return ["(", str(a), op, str(b), ")", "%", str(self.modulus)]

  def model_tokens(self) -> list[str]:
    """The body's tokens as the model reads them: numbers split into digits, then printf."""
    out = []
    for _, tokens in self.lines():
      for t in tokens:
        if t.isdigit() and len(t) > 1:
          out.extend(t)
        else:
          out.append(t)
    return out + ["printf", "(", self.printed, ")", ";"]

  def c_source(self) -> str:
    """The complete C program."""
    body = ["  " * (indent + 1) + _join(tokens) for indent, tokens in self.lines()]
    return "\n".join(["#include <stdio.h>", "", "int main(void) {", *body,
                      f'  printf("%d\\n", {self.printed});', "  return 0;", "}", ""])

  def bucket(self, buckets: int) -> int:
    """Held-out bucket, from the program's text."""
    text = " ".join(self.model_tokens()).encode()
    return zlib.crc32(text) * 2654435761 % 2 ** 32 % buckets

  # -- execution ---------------------------------------------------------------------------------

  def output(self) -> int:
    """What the program prints (C semantics: remainder takes the dividend's sign)."""
    env = dict(zip(self.names, self.inits))
    _run(self.body, env, self.modulus)
    return env[self.printed]


def _join(tokens: list[str]) -> str:
  text = " ".join(tokens)
  for a, b in (("( ", "("), (" )", ")"), (" ;", ";"), (" ++", "++")):
    text = text.replace(a, b)
  return text


def _cmod(x: int, m: int) -> int:
  r = abs(x) % m
  return -r if x < 0 else r


def _value(e, env) -> int:
  return env[e] if isinstance(e, str) else e


_ARITH = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _run(body, env: dict, modulus: int) -> None:
  for s in body:
    kind = s[0]
    if kind == "set":
      e = s[2]
      if isinstance(e, tuple):
        a, op, b = e
        a, b = _value(a, env), _value(b, env)
        env[s[1]] = _cmod(a, b) if op == "%" else _cmod(_ARITH[op](a, b), modulus)
      else:
        env[s[1]] = _value(e, env)
    elif kind == "if":
      var, cmp, rhs = s[1]
      branch = s[2] if _COMPARE[cmp](env[var], _value(rhs, env)) else s[3]
      if branch is not None:
        _run(branch, env, modulus)
    else:
      _, var, bound, inner = s
      for i in range(bound):
        env[var] = i
        _run(inner, env, modulus)
      del env[var]


def _assigned(body) -> set[str]:
  out = set()
  for s in body:
    if s[0] == "set":
      out.add(s[1])
    elif s[0] == "if":
      out |= _assigned(s[2]) | _assigned(s[3] or ())
    else:
      out |= _assigned(s[3])
  return out


def main(argv=None):
  parser = Parser(description="Print random C programs and their output as JSON lines.")
  defaults = ProgramsTask()
  parser.add_argument("--num", type=at_least(1), default=5)
  parser.add_argument("--seed", type=at_least(0), default=0)
  parser.add_argument("--split", default="train", choices=sorted(SPLITS))
  parser.add_argument("--step", type=at_least(0), default=0)
  parser.add_argument("--num-vars", type=int, default=defaults.num_vars)
  parser.add_argument("--min-statements", type=int, default=defaults.min_statements)
  parser.add_argument("--statements", type=int, default=defaults.max_statements,
                      help="most statements")
  parser.add_argument("--depth", type=int, default=defaults.max_depth, help="most nesting")
  parser.add_argument("--loop-bound", type=int, default=defaults.loop_bound)
  parser.add_argument("--modulus", type=int, default=defaults.modulus)
  parser.add_argument("--ops", default=defaults.ops)
  parser.add_argument("--constructs", default=defaults.constructs)
  args = parser.parse_args(argv)
  print_json_lines(parser, lambda: ProgramsTask(
      num_vars=args.num_vars, min_statements=args.min_statements, max_statements=args.statements,
      max_depth=args.depth, loop_bound=args.loop_bound, modulus=args.modulus, ops=args.ops,
      constructs=args.constructs).examples(args.seed, args.split, args.step, args.num))


if __name__ == "__main__":
  main()
