import os

import pytest

# Tests run on the CPU, single-threaded XLA per test process keeps timings predictable.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

SYSTEM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "system")


def pytest_collection_modifyitems(items):
  """Everything under tests/system/ is a system test: `-m "not system"` is the fast subset."""
  for item in items:
    if str(item.path).startswith(SYSTEM + os.sep):
      item.add_marker(pytest.mark.system)
