"""The program generator against the system C compiler, and the batch and split contracts."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tasks.programs import ProgramsTask
from tests.paths import ROOT

CC = shutil.which("cc")

# Every knob moved away from the default at least once.
KNOBS = [
    {},
    dict(num_vars=1),
    dict(num_vars=8, max_statements=6, max_depth=3),
    dict(min_statements=5, max_statements=8, max_depth=4),
    dict(loop_bound=1),
    dict(loop_bound=7, modulus=7, max_depth=3, max_statements=5),
    dict(modulus=2, ops="+-*", loop_bound=2),
    dict(modulus=1000),
    dict(modulus=46340, ops="*-", num_vars=2),
    dict(ops="%"),
    dict(constructs="if", max_depth=3, max_statements=5),
    dict(constructs="if,else"),
    dict(constructs="for", max_depth=3, max_statements=5),
    dict(constructs="", max_depth=0),
    dict(held_out_buckets=2),
]


def _compile_and_run(sources: list[str], tmp_path, name: str) -> list[str]:
  """What each complete program prints, all compiled into one binary (one compile per knob set):
  each main becomes a static function, run in turn."""
  parts = ["#include <stdio.h>"]
  for i, source in enumerate(sources):
    assert source.startswith("#include <stdio.h>\n") and "int main(void) {" in source
    body = source.split("\n", 1)[1].replace("int main(void) {", f"static int program_{i}(void) {{")
    parts.append(body)
  parts.append("int main(void) {\n" + "".join(f"  program_{i}();\n" for i in range(len(sources)))
               + "  return 0;\n}\n")
  c_file, binary = tmp_path / f"{name}.c", tmp_path / name
  c_file.write_text("\n".join(parts))
  subprocess.run([CC, "-std=c99", "-pedantic-errors", "-o", str(binary), str(c_file)], check=True,
                 capture_output=True)
  return subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split("\n")[:-1]


def _lex(source: str) -> list[str]:
  """C tokens of main's body, written independently of the generator; numbers split into digits."""
  body = source.split("int main(void) {", 1)[1].rsplit("return 0;", 1)[0]
  body = re.sub(r'"%d\\n"\s*,\s*', "", body)
  tokens = re.findall(r"\+\+|<=|>=|==|!=|[A-Za-z_]+|\d+|[-+*%<>=;(){}]", body)
  return [d for t in tokens for d in (t if t.isdigit() else [t])]


@pytest.mark.skipif(CC is None, reason="no system C compiler (cc) on this machine")
@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items())
                         or "default")
def test_compiled_programs_print_their_labels(knobs, tmp_path):
  task = ProgramsTask(**knobs)
  records = (task.examples(3, "train", 0, 40) + task.examples(3, "test", 5, 24))
  printed = _compile_and_run([r["program"] for r in records], tmp_path, "batch")
  assert printed == [r["output"] for r in records]
  # Each program alone is a complete C program as written.
  source = tmp_path / "one.c"
  source.write_text(records[-1]["program"])
  subprocess.run([CC, "-std=c99", "-pedantic-errors", "-o", str(tmp_path / "one"), str(source)],
                 check=True, capture_output=True)
  alone = subprocess.run([str(tmp_path / "one")], check=True, capture_output=True, text=True)
  assert alone.stdout == records[-1]["output"] + "\n"
  # The model reads exactly the body's C tokens, then the answer.
  for r in records:
    tokens = r["tokens"].split()
    sep = tokens.index("[SEP]")
    assert tokens[0] == "[BOS]" and tokens[-1] == "[EOS]"
    assert tokens[1:sep] == _lex(r["program"])
    assert "".join(tokens[sep + 1:-1]) == r["output"]
  # Buckets as asked: every (statements, depth) cell, each program inside the knobs' ranges.
  cells = {(r["statements"], r["depth"]) for r in records}
  assert cells == set(task.cells())
  for r in records:
    assert abs(int(r["output"])) < task.modulus
    assert r["program"].count("for (") + r["program"].count("if (") <= r["statements"]


def test_statement_and_depth_counts_are_read_back_from_the_text():
  task = ProgramsTask(max_statements=6, max_depth=3)
  for r in task.examples(0, "train", 2, 64):
    lines = r["program"].split("\n")[3:-4]  # declarations and statements
    statements = [l for l in lines if not l.strip().startswith(("int ", "}"))]
    assert len(statements) == r["statements"]
    indents = [(len(l) - len(l.lstrip())) // 2 - 1 for l in statements]
    assert max(indents) == r["depth"]


def test_same_seed_split_step_same_programs_and_rows_are_slices():
  task = ProgramsTask()
  a, b = task.batch(1, "train", 7, 20), task.batch(1, "train", 7, 20)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  part = task.batch(1, "train", 7, 20, rows=slice(9, 17))
  for k in a:
    np.testing.assert_array_equal(part[k], a[k][9:17])
  assert not np.array_equal(task.batch(1, "train", 8, 20)["inputs"], a["inputs"])
  assert not np.array_equal(task.batch(2, "train", 7, 20)["inputs"], a["inputs"])
  assert not np.array_equal(task.batch(1, "test", 7, 20)["inputs"], a["inputs"])


def test_answer_only_loss_mask_and_shapes():
  task = ProgramsTask()
  batch = task.batch(0, "test", 0, 16)
  assert batch["inputs"].shape == (16, task.seq_len)
  sep = task.vocab.id("[SEP]")
  for row in range(16):
    n = batch["prompt_length"][row]
    assert batch["inputs"][row, n - 1] == sep
    answer = batch["targets"][row][batch["weights"][row] > 0]
    assert task.vocab.decode(answer).endswith("[EOS]")
    assert batch["weights"][row, :n - 1].sum() == 0


def test_train_and_test_never_share_a_program():
  # A tiny space (one variable, one statement, values mod 3) makes any leak certain to show.
  task = ProgramsTask(num_vars=1, max_statements=2, max_depth=1, modulus=3, loop_bound=3)
  text = lambda split, steps: {r["tokens"].split("[SEP]")[0] for s in range(steps)
                               for r in task.examples(0, split, s, 64)}
  train, test = text("train", 40), text("test", 10)
  assert len(test) > 20 and len(train) > 7 * len(test) // 2
  assert not train & test


@pytest.mark.parametrize("knobs,message", [
    (dict(num_vars=-1), "task.num_vars: -1 is out of range"),
    (dict(max_statements=-3), "task.max_statements: -3"),
    (dict(min_statements=0), "task.min_statements: 0"),
    (dict(max_depth=-1), "task.max_depth: -1 is out of range"),
    (dict(loop_bound=12), "task.loop_bound: 12 lets a loop counter reach 11, outside the value "
                          "range (-10, 10) of task.modulus"),
    (dict(modulus=50000), "task.modulus: 50000"),
    (dict(ops="+/"), "task.ops: '+/'"),
    (dict(constructs="if,while"), "task.constructs: unknown 'while'"),
    (dict(constructs="else"), "task.constructs: 'else' needs 'if'"),
    (dict(constructs="", max_depth=1), "task.max_depth: 1 needs 'if' or 'for'"),
])
def test_bad_knobs_fail_naming_the_field(knobs, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    ProgramsTask(**knobs)


def test_command_line_prints_json_lines():
  result = subprocess.run([sys.executable, "-m", "tasks.programs", "--num", "5", "--seed", "0"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
  records = [json.loads(line) for line in result.stdout.splitlines()]
  assert len(records) == 5 and all({"program", "output"} <= set(r) for r in records)
  bad = subprocess.run([sys.executable, "-m", "tasks.programs", "--loop-bound", "20"],
                       capture_output=True, text=True, cwd=ROOT)
  assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
  assert "task.loop_bound: 20" in bad.stderr
