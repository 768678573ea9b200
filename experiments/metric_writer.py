"""Scalars to TensorBoard event files and to a JSONL log; only process 0 writes."""
from __future__ import annotations

import json
import math
import os
import time

import jax
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class MetricWriter:
  """Writes `{name: scalar}` per step to `workdir/tensorboard` and `workdir/metrics.jsonl`."""

  def __init__(self, workdir: str, resume_step: int = 0):
    self.enabled = jax.process_index() == 0
    self.jsonl_path = os.path.join(workdir, "metrics.jsonl")
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    _drop_records_after(self.jsonl_path, resume_step)
    self._events = EventFileWriter(os.path.join(workdir, "tensorboard"))
    self._jsonl = open(self.jsonl_path, "a")

  def write(self, step: int, scalars: dict[str, float], **extra) -> None:
    if not self.enabled:
      return
    now = time.time()
    values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._events.add_event(event_pb2.Event(wall_time=now, step=step,
                                           summary=summary_pb2.Summary(value=values)))
    record = {"step": step, "time": now, **extra,
              **{k: (float(v) if math.isfinite(float(v)) else str(float(v))) for k, v in scalars.items()}}
    self._jsonl.write(json.dumps(record) + "\n")

  def flush(self) -> None:
    if self.enabled:
      self._events.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self.enabled:
      self._events.close()
      self._jsonl.close()


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _drop_records_after(path: str, step: int) -> None:
  """On resume, forget what an interrupted run logged past its last checkpoint."""
  if not os.path.exists(path):
    return
  kept = [r for r in read_jsonl(path) if r["step"] <= step]
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)
  os.replace(tmp, path)
