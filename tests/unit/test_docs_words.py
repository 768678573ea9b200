"""The repository's text states current facts: no words of how the project was developed.

Code comments, docstrings and docs say what the code does and what was measured (with the commit it
was measured at), not in which round of work or tracker entry it happened; git keeps that history.
Every text file git tracks (and every new file git does not ignore, so a file not yet committed is
checked too) is searched for those words; a hit fails with its file:line.

`helper` alone is not searched for: in this code it is an ordinary word (a pool's helper threads,
helper functions), and telling those apart from the word used about people needs a reader, not a
regex; only its unambiguous uses about people (the last pattern below) are.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.paths import ROOT

THIS = os.path.relpath(os.path.abspath(__file__), ROOT).replace(os.sep, "/")

# Words may wrap onto the next line ("stop\n  25"), so they are separated by any white space.
DEVELOPMENT_WORDS = [re.compile(p, re.IGNORECASE) for p in (
    r"\bstop\s+\d+\b",
    r"\bstops\s+\d+",
    r"\bthis\s+stop\b",
    r"\bsessions?\b",
    r"\bissues?\s+#?\d+\b",
    r"\bwork\s+periods?\b",
    r"\bprevious\s+(stop|session|round)s?\b",
    r"\bhelper\s+(session|agent|engineer)s?\b",
)]

BINARY_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".pdf", ".npz", ".npy", ".pkl", ".so", ".o",
                   ".gz", ".zip", ".tar", ".whl", ".ckpt", ".bin")


def _files() -> list[str]:
  """Tracked files plus untracked ones git does not ignore, relative to ROOT, that exist now."""
  listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout
  names = sorted({n.decode("utf-8", "surrogateescape") for n in listing.split(b"\0") if n})
  return [n for n in names if os.path.isfile(os.path.join(ROOT, n))]


def _text(path: str) -> str | None:
  """The file's text, or None for a binary file (by its suffix, or a NUL byte in its head)."""
  if path.lower().endswith(BINARY_SUFFIXES):
    return None
  with open(os.path.join(ROOT, path), "rb") as f:
    data = f.read()
  if b"\0" in data[:8192]:
    return None
  return data.decode("utf-8", "replace")


def hits(text: str) -> list[tuple[int, str]]:
  """(line number, matched words) of each development word in `text`, by line."""
  found = []
  for pattern in DEVELOPMENT_WORDS:
    for match in pattern.finditer(text):
      found.append((text.count("\n", 0, match.start()) + 1, " ".join(match.group(0).split())))
  return sorted(found)


def test_patterns_catch_development_words_and_spare_ordinary_ones():
  caught = ["as in stop 29", "stops 20-21", "this stop", "in this session", "(issue 18)",
            "issue #7", "a work period", "previous round", "the helper session",
            "docs/performance.md, stop\n  25"]
  spared = ["stop_at=1750", "stopped at step 1,750", "a pool's helper threads", "a helper function",
            "the issue's machine", "non-stop", "stop the run"]
  assert all(hits(text) for text in caught), [t for t in caught if not hits(t)]
  assert not any(hits(text) for text in spared), [t for t in spared if hits(t)]


@pytest.mark.skipif(shutil.which("git") is None or not os.path.exists(os.path.join(ROOT, ".git")),
                    reason="needs git and a checkout of the repository")
def test_no_development_words_in_the_repository():
  report = []
  for path in _files():
    if path == THIS:
      continue  # it spells the patterns out
    text = _text(path)
    if text is None:
      continue
    report += [f"{path}:{number}: {words!r}" for number, words in hits(text)]
  assert not report, ("words of how the project was developed (state current facts; git keeps "
                      "the history):\n" + "\n".join(report))
