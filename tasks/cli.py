"""The command lines' shared parser: a bad value is one line on stderr and exit status 2."""
from __future__ import annotations

import argparse


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
