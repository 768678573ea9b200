"""launch.slurm: the sbatch scripts it writes, and a real single-node SLURM cluster on localhost
(munged + slurmctld + slurmd, Debian's slurm-wlm) running a 2-point smoke sweep end to end."""
import csv
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from launch import slurm, sweep
from tests.paths import ROOT

SMOKE = "experiments/configs/lego.py:smoke"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")


def test_array_script_runs_each_unfinished_point_with_srun(tmp_path):
  runs = sweep.expand(SMOKE, str(tmp_path))
  res = slurm.Resources(nodes=2, gpus_per_node=4, partition="gpu", time="01:00:00",
                        max_parallel=1)
  text = slurm.array_script(runs, [1], res, "/logs", "/repo", "py")
  lines = text.splitlines()
  for expected in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gres=gpu:4",
                   "#SBATCH --partition=gpu", "#SBATCH --time=01:00:00", "#SBATCH --array=1%1",
                   "#SBATCH --output=/logs/%A_%a.out", "#SBATCH --requeue", "cd /repo"):
    assert expected in lines, text
  assert (f"  1) srun py -m experiments.lego --config={SMOKE} "
          f"--workdir={tmp_path}/001_smoke,model.num_layers=2 --config.model.num_layers=2 ;;"
          in lines), text
  assert not any(l.startswith("  0)") for l in lines)  # point 0 is not in the array
  assert "JAX_LOCAL_DEVICE_IDS" not in text  # one process per GPU: SLURM_LOCALID picks its GPU
  # a GPU job stops first, saying to install the [cuda] extra, where py's jax sees no GPU
  assert slurm.gpu_check("py") in lines and "pip install -e '.[cuda]'" in slurm.gpu_check("py")
  assert lines.index(slurm.gpu_check("py")) < lines.index('case "$SLURM_ARRAY_TASK_ID" in')
  cpu_only = slurm.array_script(runs, [0], slurm.Resources(), "/logs", "/repo", "py")
  assert "jax.devices" not in cpu_only
  per_node = slurm.array_script(runs, [0, 1], slurm.Resources(gpus_per_node=4, task_per="node"),
                                "/logs", "/repo", "py").splitlines()
  assert "#SBATCH --ntasks-per-node=1" in per_node
  assert "export JAX_LOCAL_DEVICE_IDS=0,1,2,3" in per_node


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _wait(check, what: str, limit: float = 300):
  """Polls `check` until true; the limit only guards against a hung cluster."""
  deadline = time.monotonic() + limit
  while not check():
    if time.monotonic() > deadline:
      raise AssertionError(f"gave up waiting for {what}")
    time.sleep(1)


@pytest.fixture
def cluster(tmp_path):
  """A one-node SLURM cluster on localhost, in its own directory, ports and munge key."""
  missing = [d for d in DAEMONS if not shutil.which(d)]
  if missing or os.geteuid() != 0:
    pytest.skip(f"slurm unavailable ({'missing ' + ', '.join(missing) if missing else 'not root'}); "
                ".ci/run installs Debian's slurm-wlm when run as root")
  d = tmp_path / "slurm"
  (d / "state").mkdir(parents=True)
  (d / "spool").mkdir()
  (d / "munge").mkdir(mode=0o700)
  key = d / "munge" / "munge.key"
  key.write_bytes(os.urandom(1024))
  key.chmod(0o600)
  socket_path = d / "munge" / "munge.socket"
  conf = d / "slurm.conf"
  conf.write_text("\n".join([
      "ClusterName=synthtest", "SlurmctldHost=localhost", "SlurmUser=root", "SlurmdUser=root",
      "AuthType=auth/munge", f"AuthInfo=socket={socket_path}", "CredType=cred/munge",
      f"StateSaveLocation={d}/state", f"SlurmdSpoolDir={d}/spool",
      f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmdPidFile={d}/slurmd.pid",
      f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
      "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_CPU", "ReturnToService=2", "MpiDefault=none",
      "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
      f"SlurmctldLogFile={d}/slurmctld.log", f"SlurmdLogFile={d}/slurmd.log",
      f"NodeName=localhost NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 "
      f"CPUs={os.cpu_count()} State=UNKNOWN",
      "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP", ""]))
  env = {**os.environ, "SLURM_CONF": str(conf)}
  pid_files = [d / "munge" / "munged.pid", d / "slurmctld.pid", d / "slurmd.pid"]
  try:
    for command in (["munged", "--force", f"--key-file={key}", f"--socket={socket_path}",
                     f"--pid-file={pid_files[0]}", f"--log-file={d}/munge/munged.log",
                     f"--seed-file={d}/munge/seed"],
                    ["slurmctld", "-i"], ["slurmd", "-N", "localhost"]):
      subprocess.run(command, env=env, check=True, capture_output=True)  # each daemonizes
    idle = lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env,
                                            capture_output=True, text=True).stdout
    _wait(idle, "the node to come up", limit=60)
    yield env
  finally:
    for path in reversed(pid_files):
      if path.exists():
        os.kill(int(path.read_text().split()[0]), 15)


def test_smoke_sweep_runs_as_a_job_array_on_a_real_cluster(tmp_path, cluster):
  workdir = tmp_path / "sweep"
  submitted = subprocess.run(
      [sys.executable, "-m", "launch.slurm", f"--config={SMOKE}", f"--workdir={workdir}",
       "--metric=eval/accuracy/trained", "--submit"],
      cwd=ROOT, env=cluster, capture_output=True, text=True)
  assert submitted.returncode == 0, submitted.stderr
  ids = submitted.stdout.strip().splitlines()[-1].split()[2:]
  assert len(ids) == 2, submitted.stdout  # the array and the results job after it
  queued = lambda: subprocess.run(["squeue", "-h", "-j", ",".join(ids)], env=cluster,
                                  capture_output=True, text=True).stdout.strip()
  _wait(lambda: not queued(), "the jobs to finish")
  logs = "".join(p.read_text() for p in (workdir / "slurm").glob("*.out"))
  with open(workdir / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["model.num_layers"], r["status"]) for r in rows] == [("1", "finished"),
                                                                  ("2", "finished")], logs
  assert all(0 <= float(r["eval/accuracy/trained"]) <= 1 for r in rows)
  assert (workdir / "results.md").exists() and (workdir / "eval_accuracy_trained.png").exists()
