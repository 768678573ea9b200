import os

# Tests run on the CPU, single-threaded XLA per test process keeps timings predictable.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
