"""launch.tpu in dry run: the gcloud commands it prints, checked flag by flag."""
import shlex

from launch import tpu

BASE = ["--name=lego", "--zone=us-central2-b", "--accelerator=v4-32",
        "--config=experiments/configs/lego.py:layers=12", "--workdir=/mnt/runs/lego"]


def _printed(capsys, *extra):
  assert tpu.main([*BASE, *extra]) == 0
  return [shlex.split(line) for line in capsys.readouterr().out.strip().splitlines()]


def test_tpu_vm_create_copy_install_and_run_on_every_worker(capsys):
  create, archive, scp, install, train = _printed(capsys, "--project=proj",
                                                  "--override=--config.seed=3")
  assert create == ["gcloud", "compute", "tpus", "tpu-vm", "create", "lego",
                    "--accelerator-type=v4-32", "--version=tpu-ubuntu2204-base",
                    "--zone=us-central2-b", "--project=proj"]
  assert archive == ["git", "archive", "--format=tar.gz", "-o", "synthstudies.tar.gz", "HEAD"]
  assert scp == ["gcloud", "compute", "tpus", "tpu-vm", "scp", "synthstudies.tar.gz",
                 "lego:synthstudies.tar.gz", "--zone=us-central2-b", "--project=proj",
                 "--worker=all"]
  for step in (install, train):
    assert step[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "lego"]
    assert "--worker=all" in step and "--zone=us-central2-b" in step
  install_cmd = install[-1].removeprefix("--command=")
  assert "tar -xzf synthstudies.tar.gz -C synthstudies" in install_cmd
  # the image's python3 is older than python_requires: uv installs CPython 3.11 and the venv is
  # built from it, then the project with its [tpu] extra (jax[tpu]) goes in
  steps = install_cmd.split(" && ")
  assert "curl -LsSf https://astral.sh/uv/install.sh | sh" in install_cmd
  assert steps[-4:] == ["uv python install 3.11", "rm -rf .venv", "uv venv --python 3.11 .venv",
                        "uv pip install --python .venv/bin/python -q -e '.[tpu]'"]
  assert "python3 -m venv" not in install_cmd and "pip install" not in install_cmd.replace(
      "uv pip install", "")
  assert shlex.split(train[-1].removeprefix("--command=")) == [
      "cd", "synthstudies", "&&", ".venv/bin/python", "-m", "experiments.lego",
      "--config=experiments/configs/lego.py:layers=12", "--workdir=/mnt/runs/lego",
      "--distributed=on", "--config.seed=3"]


def test_queued_spot_resource_waits_for_active_and_is_deleted_after(capsys):
  steps = _printed(capsys, "--queued", "--spot", "--delete", "--version=v2-alpha-tpuv5-lite")
  assert steps[0] == ["gcloud", "compute", "tpus", "queued-resources", "create", "lego",
                      "--node-id=lego", "--accelerator-type=v4-32",
                      "--runtime-version=v2-alpha-tpuv5-lite", "--zone=us-central2-b", "--spot"]
  assert steps[1][:2] == ["bash", "-c"] and "queued-resources describe lego" in steps[1][2]
  assert "ACTIVE" in steps[1][2]
  assert steps[-1] == ["gcloud", "compute", "tpus", "queued-resources", "delete", "lego",
                       "--zone=us-central2-b", "--quiet", "--force"]
  assert len(steps) == 7


def test_python_version_of_the_workers_venv(capsys):
  install = _printed(capsys, "--python=3.13")[3][-1]
  assert "uv python install 3.13 && rm -rf .venv && uv venv --python 3.13 .venv" in install
