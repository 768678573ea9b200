"""setup.cfg's version ranges install: for each Python minor version that python_requires admits, pip
resolves the whole dependency set from the package index (a dry run: nothing is installed), with
the test and bench extras, and with the [tpu] and [cuda] extras for the Linux machines they are for.
A range that cannot install anywhere (say a Python no jax in range has wheels for) fails here."""
import concurrent.futures
import configparser
import json
import os
import shutil
import subprocess
import sys

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.paths import ROOT


def _glibc(major_minor: tuple[int, int]) -> list[str]:
  """pip's --platform tags for x86_64 Linux with this glibc or any older one."""
  return [f"manylinux_2_{m}_x86_64" for m in range(major_minor[1], 16, -1)] + [
      "manylinux2014_x86_64", "linux_x86_64"]


# what each extra is resolved for, and the distributions it must bring in
TARGETS = {
    # this machine's platform: what a developer or CI installs (README's test command)
    "test,bench": (None, {"pytest", "torch"}),
    # Cloud TPU VMs run Ubuntu 22.04 (glibc 2.35); libtpu's wheels need glibc >= 2.31
    "tpu": (_glibc((2, 35)), {"libtpu"}),
    # GPU clusters: RHEL 8 and its rebuilds (glibc 2.28), the oldest Linux jax's CUDA wheels serve
    "cuda": (_glibc((2, 28)), {"jax-cuda12-plugin", "jax-cuda12-pjrt"}),
}


def _setup_cfg() -> configparser.ConfigParser:
  config = configparser.ConfigParser(interpolation=None)
  config.read(os.path.join(ROOT, "setup.cfg"))
  return config


def _pythons() -> list[str]:
  admitted = SpecifierSet(_setup_cfg()["options"]["python_requires"])
  return [f"3.{minor}" for minor in range(8, 30) if admitted.contains(f"3.{minor}")]


def _jax_range() -> SpecifierSet:
  for line in _setup_cfg()["options"]["install_requires"].split("\n"):
    if line.strip().startswith("jax>") or line.strip().startswith("jax<"):
      return SpecifierSet(line.strip().removeprefix("jax"))
  raise AssertionError("setup.cfg: no jax requirement")


def test_python_requires_claims_3_11_to_3_13():
  assert _pythons() == ["3.11", "3.12", "3.13"]


def _resolve(python: str, extras: str, directory) -> tuple[str, str | None, dict[str, str]]:
  """pip's dry run of `.[extras]` for `python`: (command, pip's error or None, {name: version})."""
  platforms, _ = TARGETS[extras]
  # the project's metadata comes from these files alone; a copy keeps the concurrent builds of it
  # (and their egg-info) apart and out of the work tree
  project = directory / "project"
  project.mkdir()
  for name in ("setup.cfg", "pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), project / name)
  report = directory / "report.json"
  command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--only-binary=:all:", f"--python-version={python}", f"--target={directory / 'env'}",
             f"--report={report}", *(f"--platform={p}" for p in platforms or ()),
             f".[{extras}]"]
  out = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900)
  if out.returncode:
    return " ".join(command), out.stderr[-3000:] or f"exit {out.returncode}", {}
  resolved = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
              for item in json.loads(report.read_text())["install"]}
  return " ".join(command), None, resolved


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory):
  """Every (Python, extras) resolution, a few at a time: each waits mostly on the index."""
  cases = [(python, extras) for python in _pythons() for extras in TARGETS]
  with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
    futures = {case: pool.submit(_resolve, *case, tmp_path_factory.mktemp("resolve"))
               for case in cases}
  return {case: future.result() for case, future in futures.items()}


@pytest.mark.system
@pytest.mark.parametrize("extras", TARGETS)
@pytest.mark.parametrize("python", _pythons())
def test_dependencies_resolve(resolutions, python, extras):
  command, error, resolved = resolutions[python, extras]
  assert error is None, f"{command}\n{error}"
  print(f"python {python} [{extras}]: " + " ".join(f"{k}=={v}" for k, v in sorted(resolved.items())))
  assert Version(resolved["jax"]) in _jax_range() and Version(resolved["jaxlib"]) in _jax_range()
  assert Version(resolved["numpy"]) >= Version("2")
  assert TARGETS[extras][1] <= set(resolved), sorted(resolved)
