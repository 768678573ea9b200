"""Keep freed host memory in the process, so XLA:CPU does not page-fault its buffers every step.

XLA:CPU mallocs each execution's temporaries (67 MB for the d_model 128 decoder step, hundreds of MB
at d_model 256) and frees them when the step ends. glibc hands blocks that large straight back to
the kernel (mmap/munmap, or a trim of the allocating thread's arena), so the next step touches fresh
pages: 17,000 page faults per step at d_model 128, each a kernel entry and a 4 KiB zeroing, about a
quarter of the step (docs/performance.md). One arena that never unmaps or trims keeps the pages.

Process-wide and permanent: the process keeps its peak host memory. Call it before the first JAX
computation, since it only binds threads that have not allocated yet (XLA's pool starts with the
backend). A no-op off glibc (macOS, musl).
"""
from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
NEVER_TRIM = 2**31 - 1  # the largest int mallopt takes: free never returns the heap's top


def keep_freed_memory() -> bool:
  """Route every allocation to glibc's main heap and never give it back; True if applied."""
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):
    return False
  # One arena: other threads' arenas are mmap'd heaps that glibc unmaps as they empty.
  return all(mallopt(param, value) == 1 for param, value in
             ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER_TRIM)))
