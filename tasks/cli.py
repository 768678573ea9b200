"""The command lines' shared parser: a bad value is one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import json


class Parser(argparse.ArgumentParser):
  """argparse without the usage block before an error: `error: argument --num: ...`, status 2."""

  def error(self, message):
    self.exit(2, f"error: {message}\n")


def at_least(minimum: int):
  """An argparse type: an integer >= minimum."""
  def parse(text: str) -> int:
    value = int(text)  # argparse turns a ValueError into "invalid int value"
    if value < minimum:
      raise argparse.ArgumentTypeError(f"{value}; allowed: >= {minimum}")
    return value
  parse.__name__ = "int"
  return parse


def print_json_lines(parser: argparse.ArgumentParser, make_records) -> None:
  """Prints the records `make_records()` returns as JSON lines; a ValueError raised while making
  them (a bad task knob) is one line and status 2."""
  try:
    records = list(make_records())
  except ValueError as e:
    parser.exit(2, f"error: {e}\n")
  for record in records:
    print(json.dumps(record))
