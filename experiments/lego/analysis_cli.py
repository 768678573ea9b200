"""The command line the LEGO analyses (flow, heads, interventions) share: a run's workdir in, a
figure (--out) and its numbers (--data, default data/<figure name>.json beside it) out, the numbers
recording the run and the command that made them."""
from __future__ import annotations

import json
import os
import sys

from experiments.lego.evaluation import variant
from experiments.runtime import restore
from tasks.cli import Parser, at_least


def parser(description: str, sentences: int) -> Parser:
  p = Parser(description=description)
  p.add_argument("workdir")
  p.add_argument("--out", required=True, help="PNG path")
  p.add_argument("--data", default=None,
                 help="JSON path of the numbers (default: data/<PNG name>.json beside --out)")
  p.add_argument("--sentences", type=at_least(1), default=sentences)
  return p


def load_run(p: Parser, args):
  """The run in args.workdir at its latest checkpoint; a bad workdir is the parser's one line."""
  try:
    return restore.load(args.workdir, "lego", fill_defaults=True)
  except ValueError as e:
    p.error(str(e))


def write_numbers(args, run, module: str, argv, numbers: dict) -> str:
  """Write `numbers` with the run's identity and the command to the --data path; returns it."""
  path = args.data or os.path.join(os.path.dirname(args.out), "data",
                                   os.path.splitext(os.path.basename(args.out))[0] + ".json")
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  command = " ".join([f"python -m {module}", *(sys.argv[1:] if argv is None else argv)])
  with open(path, "w") as f:
    json.dump({"workdir": args.workdir, "step": run.step, "seed": run.config.seed,
               "model": variant(run.config), "sentences": args.sentences, "command": command,
               **numbers}, f)
  return path
