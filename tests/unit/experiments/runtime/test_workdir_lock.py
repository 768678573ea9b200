"""One live run per workdir, with real processes: a second one is refused naming the holder, a lock
left by a SIGKILLed process or a stale one from another host does not block, and the lock goes when
its holder ends, normally or by an exception."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from experiments.runtime import workdir_lock
from experiments.runtime.workdir_lock import LOCK_NAME, RunLock, WorkdirError
from tests.paths import ROOT

# Holds the lock of argv[1] (heartbeat argv[2] s), says so, then sleeps argv[3] s or raises.
HOLDER = """
import sys, time
from experiments.runtime.workdir_lock import RunLock, WorkdirError
try:
  lock = RunLock(sys.argv[1], heartbeat=float(sys.argv[2]))
except WorkdirError as e:
  print(f"refused: {e}", flush=True)
  sys.exit(2)
with lock:
  print("holding", flush=True)
  if sys.argv[3] == "raise":
    raise RuntimeError("a fault inside the run")
  time.sleep(float(sys.argv[3]))
"""


def _holder(workdir, hold="60", heartbeat="60"):
  proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir), heartbeat, hold], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline() == "holding\n", proc.stderr.read()
  return proc


def test_a_second_process_is_refused_naming_the_holder_until_the_holder_is_killed(tmp_path):
  holder = _holder(tmp_path)
  try:
    with pytest.raises(WorkdirError) as refused:
      RunLock(str(tmp_path))
    message = str(refused.value)
    assert "\n" not in message
    assert f"is in use by the run of pid {holder.pid} on host {socket.gethostname()} (since " in message
    assert f"kill {holder.pid}" in message
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  assert (tmp_path / LOCK_NAME).exists()  # left behind by the killed holder
  with RunLock(str(tmp_path)) as lock:  # its pid is gone: stale
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
  assert not (tmp_path / LOCK_NAME).exists()
  lock.release()  # twice is harmless


@pytest.mark.parametrize("ending,status", [("0", 0), ("raise", 1)])
def test_the_lock_goes_when_its_holder_ends_normally_or_by_an_exception(tmp_path, ending, status):
  holder = _holder(tmp_path, hold=ending)
  holder.communicate()
  assert holder.returncode == status
  assert os.listdir(tmp_path) == []


def test_processes_starting_together_get_one_lock(tmp_path):
  procs = [subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "60", "3"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True) for _ in range(4)]
  outputs = [p.communicate()[0] for p in procs]
  assert sorted(o.split(":")[0].strip() for o in outputs) == ["holding"] + ["refused"] * 3, outputs


def test_the_holder_touches_its_lock(tmp_path):
  holder = _holder(tmp_path, heartbeat="0.1")
  try:
    before = os.stat(tmp_path / LOCK_NAME).st_mtime
    time.sleep(0.5)
    assert os.stat(tmp_path / LOCK_NAME).st_mtime > before
  finally:
    holder.kill()
    holder.wait()


def _plant(workdir, age: float, **record):
  path = workdir / LOCK_NAME
  path.write_text(json.dumps({"pid": 12345, "since": time.time() - age, **record}))
  os.utime(path, (time.time() - age, time.time() - age))
  return path


def test_another_hosts_lock_blocks_while_fresh_and_is_broken_once_stale(tmp_path):
  path = _plant(tmp_path, age=30, host="elsewhere")
  with pytest.raises(WorkdirError) as refused:
    RunLock(str(tmp_path))
  message = str(refused.value)
  assert "pid 12345 on host elsewhere" in message and "alive 30 s ago" in message, message
  assert f"rm {path}" in message
  _plant(tmp_path, age=workdir_lock.STALE + 1, host="elsewhere")
  RunLock(str(tmp_path)).release()


def test_a_pid_reused_by_another_process_and_a_lock_not_written_by_a_run_are_stale(tmp_path):
  _plant(tmp_path, age=0, host=socket.gethostname(), pid=os.getpid(), start="0",
         boot=workdir_lock._boot_id())  # this process is alive, but is not the holder
  RunLock(str(tmp_path)).release()
  (tmp_path / LOCK_NAME).write_text("not a record")
  RunLock(str(tmp_path)).release()


def test_a_workdir_that_cannot_be_one_is_refused_in_one_line(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(WorkdirError, match=r"^workdir: .*/file is a file, not a directory; choose "):
    RunLock(str(tmp_path / "file"))
  with pytest.raises(WorkdirError, match=r"^workdir: .*/file/run: .*/file is a file, not a "):
    RunLock(str(tmp_path / "file" / "run"))
  RunLock(str(tmp_path / "missing" / "parents")).release()  # created


@pytest.fixture
def read_only(tmp_path):
  """A directory nobody may write in: a read-only mount as root, else one without write permission."""
  directory = tmp_path / "read-only"
  directory.mkdir()
  if os.geteuid() != 0:
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)
    return
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory)],
                    capture_output=True).returncode:
    pytest.skip("cannot mount a read-only filesystem here")
  yield directory
  subprocess.run(["umount", "-l", str(directory)], check=True)


def test_an_unwritable_workdir_is_refused_in_one_line(read_only):
  for workdir in (read_only, read_only / "run"):
    with pytest.raises(WorkdirError) as refused:
      RunLock(str(workdir))
    assert str(refused.value).startswith(f"workdir: cannot write in {workdir} ("), refused.value
    assert str(refused.value).endswith("); choose another --workdir or make it writable")
