"""One live run per workdir: the process that opens a workdir for training holds `run.lock` in it
until it ends, and a second process is refused in one line naming the holder.

The lock file appears atomically (a hard link to a fully written file), holding the holder's host,
pid, start time and boot. A holder that died without releasing it (SIGKILL, a crash, a lost host)
does not block the rerun: on the same host its pid is looked up (gone, a zombie, or reused by a later
process: stale); a holder on another host touches the file every HEARTBEAT seconds, so a lock
untouched for STALE seconds is a dead run's. Nothing here imports JAX: which process of a
multi-process run takes the lock is the caller's choice (train.py: process 0).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time

LOCK_NAME = "run.lock"
HEARTBEAT = 30.0  # seconds between the holder's touches of its lock
# Another host's lock untouched this long is a dead run's: ten missed touches, short enough that a
# job requeued on another node after a hard kill waits minutes, not hours.
STALE = 5 * 60.0


class WorkdirError(ValueError):
  """The workdir cannot be opened for training: in use, not a directory, not writable."""


class RunLock:
  """Creates `workdir` if needed and holds its lock; `release()` (or leaving a `with`) gives it up."""

  def __init__(self, workdir: str, heartbeat: float = HEARTBEAT, stale: float = STALE):
    self.workdir, self.path = workdir, os.path.join(workdir, LOCK_NAME)
    try:
      _make_directory(workdir)
      self._inode = self._acquire(stale)
    except OSError as e:
      raise WorkdirError(f"workdir: cannot write in {workdir} ({e.strerror or e}); choose another "
                         "--workdir or make it writable") from None
    self._stop = threading.Event()
    self._beat = threading.Thread(target=self._touch_every, args=(heartbeat,), daemon=True)
    self._beat.start()

  def _acquire(self, stale: float) -> int:
    record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(),
              "start": _start_time(os.getpid()), "boot": _boot_id()}
    tmp = f"{self.path}.{record['host']}.{record['pid']}"
    with open(tmp, "w") as f:
      json.dump(record, f)
    try:
      for _ in range(10):  # a lock released or broken meanwhile: try again
        try:
          os.link(tmp, self.path)
          return os.stat(self.path).st_ino
        except FileExistsError:
          holder = _read(self.path)
          if holder is None:
            continue
          if not _is_stale(holder, stale):
            raise WorkdirError(_busy_message(self.workdir, self.path, holder, stale))
          _break(self.path, holder["inode"])
      raise WorkdirError(f"workdir: {self.workdir} is being opened by other processes at the same "
                         "time; rerun once they are done")
    finally:
      os.unlink(tmp)

  def _touch_every(self, seconds: float) -> None:
    while not self._stop.wait(seconds):
      try:
        os.utime(self.path)
      except OSError:  # the workdir went away; the run reports its own write errors
        pass

  def release(self) -> None:
    self._stop.set()
    self._beat.join()
    try:
      if os.stat(self.path).st_ino == self._inode:  # still ours (not broken as stale)
        os.unlink(self.path)
    except OSError:
      pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def _make_directory(workdir: str) -> None:
  """The workdir, created with its parents; one line when something in the way is a file."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except (FileExistsError, NotADirectoryError):
    blocking = os.path.abspath(workdir)
    while not os.path.exists(blocking):
      blocking = os.path.dirname(blocking)
    where = "" if blocking == os.path.abspath(workdir) else f"{workdir}: "
    raise WorkdirError(f"workdir: {where}{blocking} is a file, not a directory; choose another "
                       "--workdir") from None


def _read(path: str) -> dict | None:
  """The holder's record and the lock's inode and age; None if the lock is gone. A lock that is not
  a record (written by hand) reads as a holder with no pid: stale."""
  try:
    with open(path) as f:
      stat, text = os.fstat(f.fileno()), f.read()
  except FileNotFoundError:
    return None
  try:
    record = json.loads(text)
    record = record if isinstance(record, dict) and isinstance(record.get("pid"), int) else {}
  except ValueError:
    record = {}
  return {**record, "inode": stat.st_ino, "age": time.time() - stat.st_mtime}


def _is_stale(holder: dict, stale: float) -> bool:
  if "pid" not in holder:
    return True
  if holder.get("host") != socket.gethostname():
    return holder["age"] > stale
  return not _alive(holder)


def _alive(holder: dict) -> bool:
  """Whether the holder still runs on this host: its pid exists, is no zombie, and (where /proc
  tells) started when the holder did, in this boot."""
  try:
    os.kill(holder["pid"], 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process: it exists
    pass
  stat = _stat(holder["pid"])
  if stat is None:
    return True
  return (stat[0] != "Z" and stat[19] == holder.get("start")
          and holder.get("boot") == _boot_id())


def _break(path: str, inode: int) -> None:
  """Removes the stale lock `inode`, never a fresh one another process has just taken (rename is
  atomic: what was renamed is checked, and put back if it is not the stale one)."""
  aside = f"{path}.stale.{os.getpid()}"
  try:
    os.rename(path, aside)
  except FileNotFoundError:
    return
  if os.stat(aside).st_ino != inode:
    try:
      os.link(aside, path)
    except FileExistsError:
      pass
  os.unlink(aside)


def _busy_message(workdir: str, path: str, holder: dict, stale: float) -> str:
  since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("since", 0)))
  who = f"pid {holder['pid']} on host {holder.get('host')} (since {since})"
  if holder.get("host") == socket.gethostname():
    return (f"workdir: {workdir} is in use by the run of {who}; wait for it to end, stop it "
            f"(kill {holder['pid']}), or choose another --workdir")
  return (f"workdir: {workdir} is in use by the run of {who}, alive {holder['age']:.0f} s ago; "
          f"choose another --workdir, or if that run is gone, remove its lock (rm {path}) or rerun "
          f"once the lock is {stale / 60:.0f} minutes old")


def _stat(pid: int) -> list[str] | None:
  """Fields 3.. of /proc/<pid>/stat (state, ..., start time at index 19); None without /proc."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()
  except OSError:
    return None


def _start_time(pid: int) -> str | None:
  stat = _stat(pid)
  return stat[19] if stat else None


def _boot_id() -> str | None:
  try:
    with open("/proc/sys/kernel/random/boot_id") as f:
      return f.read().strip()
  except OSError:
    return None
