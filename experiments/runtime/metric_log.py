"""Scalars to TensorBoard event files and to a JSONL log; only process 0 writes.

Both logs keep pace with the checkpoints: the loop calls `flush` (which fsyncs) before each
checkpoint is committed, so after any kill they hold every step up to the checkpoint a rerun resumes
from. On resume both are cut back to that step (whatever an interrupted attempt logged past it is
recomputed), and each attempt appends a new event file: together they read exactly as one
uninterrupted run's. The train metrics of steps not yet logged when a checkpoint is saved are kept
beside the log (metrics_window.json), so the first record after a resume averages the same steps.
"""
from __future__ import annotations

import glob
import json
import math
import os
import socket
import struct
import time

import jax
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c


class MetricWriter:
  """Writes `{name: scalar}` per step to `workdir/tensorboard` and `workdir/metrics.jsonl`.

  `resume_step`: the checkpoint this attempt starts from; None for a fresh run, which drops any
  record an attempt without a checkpoint left.
  """

  def __init__(self, workdir: str, resume_step: int | None = None):
    self.enabled = jax.process_index() == 0
    self.jsonl_path = os.path.join(workdir, "metrics.jsonl")
    self._windows_path = os.path.join(workdir, "metrics_window.json")
    self._windows = {}
    if not self.enabled:
      return
    if resume_step is not None and os.path.exists(self._windows_path):
      self._windows = {k: v for k, v in _read_windows(self._windows_path).items()
                       if k <= resume_step}
    keep = -1 if resume_step is None else resume_step
    events_dir = os.path.join(workdir, "tensorboard")
    os.makedirs(events_dir, exist_ok=True)
    _drop_records_after(self.jsonl_path, keep)
    for path in event_files(events_dir):
      _drop_events_after(path, keep)
    # A new file per attempt; names sort in time order, the order TensorBoard reads them in.
    name = f"events.out.tfevents.{time.time_ns()}.{socket.gethostname()}.{os.getpid()}"
    self._events = open(os.path.join(events_dir, name), "ab")
    self._events.write(_record(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")))
    self._jsonl = open(self.jsonl_path, "a")

  def write(self, step: int, scalars: dict[str, float], **extra) -> None:
    if not self.enabled:
      return
    now = time.time()
    values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._events.write(_record(event_pb2.Event(wall_time=now, step=step,
                                               summary=summary_pb2.Summary(value=values))))
    record = {"step": step, "time": now, **extra,
              **{k: (float(v) if math.isfinite(float(v)) else str(float(v))) for k, v in scalars.items()}}
    self._jsonl.write(json.dumps(record) + "\n")

  def window(self, step: int) -> list[dict[str, np.float32]]:
    """The per-step train metrics of the unlogged steps before checkpoint `step` (see flush)."""
    return [{k: np.float32(v) for k, v in m.items()} for m in self._windows.get(step, [])]

  def flush(self, step: int | None = None, window: list[dict] = ()) -> None:
    """Everything written so far reaches the disk (before a checkpoint covering it commits);
    with `window`, the train metrics of steps not yet logged, so that the first record after a
    resume from `step` averages the same steps as an uninterrupted run's."""
    if self.enabled and step is not None:
      self._windows[step] = [{k: float(v) for k, v in m.items()} for m in jax.device_get(window)]
      # a resume starts from the newest committed checkpoint, at most a few saves back
      self._windows = dict(sorted(self._windows.items())[-4:])
      _replace(self._windows_path, lambda f: f.write(json.dumps(self._windows).encode()))
    if self.enabled:
      for f in (self._events, self._jsonl):
        f.flush()
        os.fsync(f.fileno())

  def close(self) -> None:
    if self.enabled:
      self.flush()
      self._events.close()
      self._jsonl.close()


class DamagedLog(ValueError):
  """A damaged metrics log: one line naming the file (and line) and what to do."""


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSONL log; a last line cut short by a kill is not a record."""
  try:
    with open(path) as f:
      lines = f.read().split("\n")[:-1]
  except UnicodeDecodeError as e:
    raise DamagedLog(f"{path} is damaged ({e}); move it away and rerun (the run then logs "
                     "afresh from the checkpoint it resumes)") from None
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError as e:
      record = e
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
      raise DamagedLog(f"{path}: line {number} is no metrics record ({str(record)[:80]}); delete "
                       "or repair that line and rerun")
    records.append(record)
  return records


def _read_windows(path: str) -> dict[int, list[dict]]:
  try:
    with open(path) as f:
      return {int(k): list(v) for k, v in json.load(f).items()}
  except (ValueError, TypeError, AttributeError) as e:
    raise DamagedLog(f"{path} is damaged ({e}); delete it and rerun (the first train record after "
                     "the resume then averages only the steps after it)") from None


def event_files(directory: str) -> list[str]:
  """A run's TensorBoard event files, in the order TensorBoard reads them."""
  return sorted(glob.glob(os.path.join(directory, "*tfevents*")))


def read_events(path: str) -> list[event_pb2.Event]:
  """The complete events of one event file (a record cut short by a kill ends it)."""
  events = []
  with open(path, "rb") as f:
    data = f.read()
  pos = 0
  while pos + 12 <= len(data):
    header = data[pos:pos + 8]
    (length,) = struct.unpack("<Q", header)
    end = pos + 12 + length + 4
    if end > len(data) or struct.unpack("<I", data[end - 4:end])[0] != masked_crc32c(
        data[pos + 12:end - 4]):
      break
    events.append(event_pb2.Event.FromString(data[pos + 12:end - 4]))
    pos = end
  return events


def _replace(path: str, write) -> None:
  """Rewrites `path` atomically: a kill leaves either the old file or the new one."""
  tmp = os.path.join(os.path.dirname(path), "rewrite.tmp")  # no "tfevents": TensorBoard skips it
  with open(tmp, "wb") as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _drop_records_after(path: str, step: int) -> None:
  """On resume, forget what an interrupted run logged past its last checkpoint."""
  if not os.path.exists(path):
    return
  kept = [r for r in read_jsonl(path) if r["step"] <= step]
  _replace(path, lambda f: f.writelines((json.dumps(r) + "\n").encode() for r in kept))


def _drop_events_after(path: str, step: int) -> None:
  """The same for one event file; a file left with no scalars goes."""
  events = read_events(path)
  kept = [e for e in events if e.HasField("file_version") or e.step <= step]
  if not any(e.HasField("summary") for e in kept):
    os.remove(path)
  elif len(kept) < len(events) or sum(map(len, map(_record, events))) != os.path.getsize(path):
    _replace(path, lambda f: f.writelines(map(_record, kept)))  # also drops a cut-short record


def _record(event) -> bytes:
  data = event.SerializeToString()
  header = struct.pack("<Q", len(data))
  return (header + struct.pack("<I", masked_crc32c(header)) + data
          + struct.pack("<I", masked_crc32c(data)))
