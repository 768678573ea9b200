"""The arithmetic generator against an independent checker that reads the text back to numbers."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tasks.arithmetic import FORMATS, ArithmeticTask

WORD_OPS = {"plus": "add", "sum": "add", "add": "add", "minus": "sub", "difference": "sub",
            "times": "mul", "product": "mul", "multiply": "mul"}
SYMBOL_OPS = {"+": "add", "-": "sub", "*": "mul"}


def read_number(tokens, flags, reverse, width=None):
  """The value of a written number; index hints, when present, decide each digit's place."""
  if "index_hints" in flags:
    letters, digits = tokens[0::2], tokens[1::2]
    places = [ord(x) - ord("a") for x in letters]
    assert sorted(places) == list(range(len(places))), tokens
    assert places == sorted(places, reverse=not reverse), tokens
    return sum(int(d) * 10 ** p for d, p in zip(digits, places))
  digits = tokens
  if width is not None:
    assert len(digits) == width, (tokens, width)
  return int("".join(digits[::-1] if reverse else digits))


def check(record, flags, pad_width=None):
  """Parses prompt + target with no help from the generator and verifies the arithmetic."""
  prompt, target = record["prompt"].split(), record["target"].split()
  assert prompt[0] == "[BOS]" and target[-1] == "[EOS]"
  body = [t for t in prompt[1:] if t != "_"]
  assert ("_" in prompt) <= ("random_space" in flags)
  is_num = lambda t: t.isdigit() or (len(t) == 1 and t.isalpha() and "index_hints" in flags)
  runs, current, words = [], [], []
  for t in body:
    if is_num(t):
      current.append(t)
    else:
      if current:
        runs.append(current)
        current = []
      words.append(t)
  assert len(runs) == 2, body
  if "text" in flags:
    op = next(WORD_OPS[w] for w in words if w in WORD_OPS)
    if "to" in words:  # "if you add B to A"
      runs.reverse()
  else:
    assert words[-1] == "=" and len(words) == 2, body
    op = SYMBOL_OPS[words[0]]
  width = pad_width if "pad" in flags else None
  a, b = (read_number(r, flags, "reverse_operands" in flags, width) for r in runs)
  answer = target[:-1]
  if "scratchpad" in flags:
    split = answer.index("|")
    steps, answer = answer[:split], answer[split + 1:]
    carry = 0
    for place in range(len(steps) // 9):
      x, plus1, y, plus2, c, eq, c_out, s, semi = steps[9 * place:9 * place + 9]
      assert (plus1, plus2, eq, semi) == ("+", "+", "=", ";")
      assert (int(x), int(y), int(c)) == (a // 10 ** place % 10, b // 10 ** place % 10, carry)
      assert int(x) + int(y) + int(c) == 10 * int(c_out) + int(s)
      carry = int(c_out)
    assert a < 10 ** (len(steps) // 9) and b < 10 ** (len(steps) // 9)
  sign = -1 if answer[:1] == ["-"] else 1
  answer_width = None
  if "pad" in flags:
    answer_width = 2 * pad_width if op == "mul" else pad_width + (op == "add")
  value = sign * read_number(answer[1:] if sign < 0 else answer, flags, "reverse" in flags,
                             answer_width)
  expected = {"add": a + b, "sub": a - b, "mul": a * b}[op]
  assert value == expected, (record, value, expected)
  assert (a, b, op) == (record["a"], record["b"], record["op"])


FORMAT_CASES = [["plain"]] + [[f] for f in FORMATS[1:]] + [
    ["pad", "reverse"], ["reverse_operands", "reverse", "index_hints"], ["text", "random_space"],
    ["pad", "scratchpad", "reverse"], ["text", "pad", "index_hints", "reverse_operands"]]


# The scratchpad is defined for addition only.
OP_FORMAT_CASES = [(op, flags) for op in ("add", "sub", "mul") for flags in FORMAT_CASES
                   if op == "add" or "scratchpad" not in flags]


@pytest.mark.parametrize("op,flags", OP_FORMAT_CASES,
                         ids=[f"{op}-{','.join(flags)}" for op, flags in OP_FORMAT_CASES])
def test_every_format_checks_out(op, flags):
  task = ArithmeticTask(op=op, max_digits=6, format=",".join(flags), pad_width=7)
  flags = set(flags) - {"plain"}
  records = task.examples(seed=3, split="train", step=0, num=60)
  for record in records:
    check(record, flags, pad_width=7)
  if "random_space" in flags:
    assert any("_" in r["prompt"] for r in records)


def test_large_operands_are_exact():
  task = ArithmeticTask(op="mul", min_digits=30, max_digits=30, format="reverse")
  for record in task.examples(0, "test", 0, 5):
    check(record, {"reverse"})
    assert len(str(record["a"])) == 30


def test_every_cell_is_sampled_equally():
  task = ArithmeticTask(op="add", min_digits=2, max_digits=5)
  batch = task.batch(0, "train", 3, 64)
  cells = list(zip(batch["a_digits"], batch["b_digits"]))
  counts = {cell: cells.count(cell) for cell in task.cells()}
  assert set(cells) == set(task.cells()) and set(counts.values()) == {4}
  pairs = task.sample(0, "train", 3, 64)
  assert [(len(str(a)), len(str(b))) for a, b in pairs] == cells


def test_batch_is_a_pure_function_and_splits_differ():
  task = ArithmeticTask(op="add", max_digits=4, format="random_space")
  one, two = task.batch(1, "train", 5, 16), task.batch(1, "train", 5, 16)
  for key in one:
    np.testing.assert_array_equal(one[key], two[key])
  assert not np.array_equal(one["inputs"], task.batch(1, "train", 6, 16)["inputs"])
  assert not np.array_equal(one["inputs"], task.batch(1, "test", 5, 16)["inputs"])


@pytest.mark.parametrize("fmt", ["plain", "scratchpad,random_space", "text,index_hints"])
def test_loss_mask_covers_exactly_the_answer(fmt):
  task = ArithmeticTask(op="add", max_digits=5, format=fmt)
  batch = task.batch(0, "train", 2, 24)
  records = task.examples(0, "train", 2, 24)
  assert batch["inputs"].shape == (24, task.seq_len())
  for row, record in enumerate(records):
    weights = batch["weights"][row] > 0
    assert task.vocab.decode(batch["targets"][row][weights]) == record["target"]
    n = batch["prompt_length"][row]
    assert task.vocab.decode(batch["inputs"][row][:n]) == record["prompt"]
    np.testing.assert_array_equal(np.flatnonzero(weights), np.arange(n - 1, n - 1 + weights.sum()))
    np.testing.assert_array_equal(batch["inputs"][row][1:], batch["targets"][row][:-1])


def test_seq_len_bounds_the_longest_sequence():
  for fmt in ["plain", "pad,reverse", "index_hints,random_space", "text,random_space", "scratchpad"]:
    task = ArithmeticTask(op="add", min_digits=6, max_digits=6, format=fmt, space_prob=1.0)
    batch = task.batch(0, "train", 0, 8)
    used = (batch["targets"] > 0).sum(1).max()
    assert used <= task.seq_len() <= used + 12, fmt


def test_cell_batches_have_the_digits_asked():
  task = ArithmeticTask(op="add", max_digits=3)
  batch = task.batch(0, "test", 0, 8, digits=(7, 2))
  assert (batch["a_digits"] == 7).all() and (batch["b_digits"] == 2).all()
  assert batch["inputs"].shape[1] == task.seq_len(7)


@pytest.mark.parametrize("kwargs, message", [
    (dict(format="pad,zigzag"), "task.format: unknown 'zigzag'; allowed: plain, reverse"),
    (dict(min_digits=0), "task.min_digits: 0; allowed: >= 1"),
    (dict(max_digits=5, format="pad", pad_width=3), "task.pad_width: 3 is smaller than an operand"),
    (dict(op="div"), "task.op: unknown 'div'; allowed: add, sub, mul"),
    (dict(op="mul", format="scratchpad"), "task.format: 'scratchpad' is defined for op 'add'"),
])
def test_bad_input_fails_in_one_line(kwargs, message):
  with pytest.raises(ValueError, match=message) as info:
    ArithmeticTask(**kwargs)
  assert "\n" not in str(info.value)


def test_cell_beyond_the_pad_width_fails():
  task = ArithmeticTask(op="add", max_digits=3, format="pad")
  with pytest.raises(ValueError, match="task.pad_width: 3 is smaller than an operand .5 digits"):
    task.batch(0, "test", 0, 4, digits=(5, 1))
  with pytest.raises(ValueError, match="digits: 0; allowed: >= 1"):
    task.batch(0, "test", 0, 4, digits=(0, 1))


def test_cli_prints_json_lines_and_one_line_errors():
  cmd = [sys.executable, "-m", "tasks.arithmetic", "--op", "mul", "--digits", "5",
         "--format", "pad,reverse", "--num", "5"]
  out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
  assert len(out) == 5
  for line in out:
    check(json.loads(line), {"pad", "reverse"}, pad_width=5)
  bad = subprocess.run(cmd[:-4] + ["--format", "x"], capture_output=True, text=True)
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines() == [
      "error: task.format: unknown 'x'; allowed: " + ", ".join(FORMATS)]
