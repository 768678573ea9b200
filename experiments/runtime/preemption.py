"""Preemption: SIGTERM asks a run to checkpoint and stop at the next step boundary.

One process: a Python signal handler sets a flag that the loop reads after each step. Several
processes: JAX's preemption sync manager (started by `jax.distributed.initialize`) catches the signal
on any process and names one step at which all of them stop, so their collective checkpoint agrees.
"""
from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils


class Preemption:
  """Listens for SIGTERM from construction until `close()`; `reached(step)`: save and stop now?"""

  def __init__(self):
    self.requested = False
    self._previous = None
    # Handlers can only be set from the main thread (a notebook's or sweep's worker thread has none).
    self._installed = (jax.process_count() == 1
                       and threading.current_thread() is threading.main_thread())
    if self._installed:
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    self.requested = True

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def close(self) -> None:
    if self._installed:
      signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)
      self._installed = False
