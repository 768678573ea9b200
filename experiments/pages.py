"""The results pages' tables, rendered from the summaries committed beside them.

    python -m experiments.pages            # rewrite every table of docs/results/*.md
    python -m experiments.pages --check    # exit 1, naming each table, if a page differs

A page marks each table it shows with the function that renders it, and the renderer owns the lines
between the marks:

    <!-- table: lego.default_runs -->
    | seed | ... |
    <!-- /table -->

`lego.default_runs` is `default_runs()` in `experiments/lego/tables.py`: it reads the study's
summaries (JSON in docs/results/data/, written by the study's analysis from its runs) through
`load` and returns the table's Markdown. A number on a page therefore comes from committed data
the same way every time, and the check keeps page and data equal.
"""
from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = os.path.join(ROOT, "docs", "results")
TABLE = re.compile(r"(<!-- table: ([\w.]+) -->\n)(.*?)(<!-- /table -->)", re.DOTALL)


def load(name: str, pages: str = PAGES):
  """A summary: docs/results/data/<name> (JSON)."""
  with open(os.path.join(pages, "data", name)) as f:
    return json.load(f)


def summary_command(summary: str, gather, plot, argv=None, description: str = "") -> None:
  """A study's analysis command: with `--runs=ROOT`, `gather(ROOT)` (a sweep's workdir) becomes the
  summary docs/results/data/<summary> first; then `plot(summary, out)` draws the page's figures
  from the summary as committed."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--runs", default=None, help="the sweep's workdir: gather its runs into "
                      "--summary first (default: draw from the summary as it is)")
  parser.add_argument("--summary", default=os.path.join(PAGES, "data", summary),
                      help="the summary JSON")
  parser.add_argument("--out", default=PAGES, help="folder of the figures")
  args = parser.parse_args(argv)
  if args.runs:
    gathered = gather(args.runs)
    os.makedirs(os.path.dirname(args.summary), exist_ok=True)
    with open(args.summary, "w") as f:
      json.dump(gathered, f, indent=1)
    print(f"gathered {args.runs} into {args.summary}")
  with open(args.summary) as f:
    plot(json.load(f), args.out)


def render_table(name: str, pages: str = PAGES) -> str:
  """The Markdown of table `study.function`, ending in a newline."""
  study, _, function = name.partition(".")
  tables = importlib.import_module(f"experiments.{study}.tables")
  return getattr(tables, function)(lambda data: load(data, pages)).rstrip("\n") + "\n"


def render_page(text: str, pages: str = PAGES) -> str:
  return TABLE.sub(lambda m: m.group(1) + render_table(m.group(2), pages) + m.group(4), text)


def stale_tables(pages: str = PAGES, write: bool = False) -> list[str]:
  """`page: table` for every table that differs from its rendering (rewritten when `write`)."""
  stale = []
  for path in sorted(glob.glob(os.path.join(pages, "*.md"))):
    with open(path) as f:
      text = f.read()
    rendered = render_page(text, pages)
    if rendered == text:
      continue
    old = {m.group(2): m.group(3) for m in TABLE.finditer(text)}
    new = {m.group(2): m.group(3) for m in TABLE.finditer(rendered)}
    stale += [f"{os.path.relpath(path, ROOT)}: {name}" for name in new if old[name] != new[name]]
    if write:
      with open(path, "w") as f:
        f.write(rendered)
  return stale


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true",
                      help="change nothing; exit 1 if any table differs from its rendering")
  parser.add_argument("--pages", default=PAGES, help="the folder of the pages and their data/")
  args = parser.parse_args(argv)
  stale = stale_tables(args.pages, write=not args.check)
  for line in stale:
    print(f"{'differs from its data' if args.check else 'rewritten'}: {line}")
  return 1 if stale and args.check else 0


if __name__ == "__main__":
  sys.exit(main())
