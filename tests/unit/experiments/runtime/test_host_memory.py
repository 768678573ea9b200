"""keep_freed_memory: a block a worker thread frees is reused by its next malloc without page faults.

The pattern is XLA:CPU's: each step mallocs tens to hundreds of MB of temporaries on pool threads
and frees them at the end (the per-step figures are in docs/performance.md).
"""
import subprocess
import sys

import pytest

PROBE = """
import ctypes, resource, sys, threading
from experiments.runtime import host_memory
applied = host_memory.keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 64 << 20  # above glibc's largest dynamic mmap threshold (32 MiB)
faults = []
def step():
  block = libc.malloc(SIZE)
  before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
  ctypes.memset(block, 1, SIZE)
  faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
  libc.free(ctypes.c_void_p(block))
def worker():
  for _ in range(3):
    step()
thread = threading.Thread(target=worker)
thread.start()
thread.join()
print(applied, min(faults[1:]))
"""


def faults_on_reuse(mode: str) -> tuple[str, int]:
  out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                       check=True, env={"PATH": "", "PYTHONPATH": "."})
  applied, faults = out.stdout.split()
  return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_block_is_reused_without_page_faults():
  applied, kept = faults_on_reuse("keep")
  _, default = faults_on_reuse("default")
  assert applied == "True"
  pages = (64 << 20) // 4096
  assert default > 0.5 * pages, default  # glibc's default unmaps the block: every page faults again
  assert kept < 0.01 * pages, kept  # kept: the freed pages stay mapped and are reused
