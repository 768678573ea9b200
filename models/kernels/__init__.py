"""How ops run besides XLA's defaults; models/ops.py chooses among them, per op and shape.

  cpu.py   hand-written C++ kernels (csrc/) for one CPU device, called through XLA's FFI
  xla.py   XLA's fusions with our own backward or layout where XLA's choice is slow

Nothing here imports the model modules: the model's math reaches these through models/ops.py.
"""
