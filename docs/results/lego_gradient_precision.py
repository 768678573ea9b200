"""How far the float32 gradient of a LEGO run is from float64, on XLA's path and with the CPU kernels.

    python docs/results/lego_gradient_precision.py runs/lego_untied_s1     # a run's latest checkpoint
    python docs/results/lego_gradient_precision.py --variant=tied=False    # a fresh model (init)

For 8 training batches: the loss and gradient in float64 (jax_enable_x64, XLA's path), then the
float32 gradient on each path, each in its own process (`SYNTHSTUDIES_CPU_KERNELS` picks the path
once per process). Prints each path's relative error |g32 - g64| / |g64| and the cosine between that
error and g64 (a bias along the gradient would show as a cosine far from 0 on one path only), and
how far two batches' gradients are apart, for scale. docs/results/lego.md quotes its output.
"""
import argparse
import copy
import os
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from experiments import restore, train  # noqa: E402
from experiments.configs.lego import get_config  # noqa: E402
from experiments.lego import LegoStudy  # noqa: E402
from models import transformer as transformer_lib  # noqa: E402

BATCHES = 8


def config_study_params(args):
  """The run's (a workdir: its latest checkpoint) or a fresh model's config, study and parameters."""
  if args.workdir:
    run = restore.load(args.workdir, LegoStudy, defaults=get_config())
    return run.config, run.study, run.params
  config = get_config(args.variant)
  study = LegoStudy(config)
  return config, study, train.build_trainer(config, study).init()["params"]


def gradients(config, study, params, dtype) -> list[np.ndarray]:
  """The flattened gradient of the training loss on each of the BATCHES batches, in `dtype`."""
  trainer = train.build_trainer(config, study)
  params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
  flat = lambda tree: np.concatenate([np.ravel(np.asarray(a, np.float64))
                                      for a in jax.tree.leaves(tree)])
  out = []
  for step in range(BATCHES):
    batch = study.batch("train", 10_000 + step, config.batch_size)
    loss = lambda p: study.loss(trainer.model(p)(batch["inputs"]), batch)[0]
    out.append(flat(jax.jit(jax.grad(loss))(params)))
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("workdir", nargs="?")
  parser.add_argument("--variant", default=None, help="the config's variant string, without a run")
  parser.add_argument("--save", help=argparse.SUPPRESS)  # a child process: float32 gradients here
  args = parser.parse_args()
  jax.config.update("jax_enable_x64", True)  # the parameters then initialise as float64
  config, study, params = config_study_params(args)
  if args.save:
    np.save(args.save, np.stack(gradients(config, study, params, jnp.float32)))
    return
  reference = copy.deepcopy(config)
  reference.model.dtype = "float64"
  transformer_lib.validate = lambda config: None  # float64 activations: this reference only
  exact = gradients(reference, study, params, jnp.float64)
  apart = [np.linalg.norm(a - b) / np.linalg.norm(a) for a, b in zip(exact, exact[1:])]
  print(f"two batches' gradients differ by {np.median(apart):.2f} of their norm (median)")
  for path, flag in (("XLA's path", "0"), ("kernels", "1")):
    with tempfile.TemporaryDirectory() as folder:
      save = os.path.join(folder, "g.npy")
      subprocess.run([sys.executable, __file__, *sys.argv[1:], f"--save={save}"], check=True,
                     env={**os.environ, "SYNTHSTUDIES_CPU_KERNELS": flag})
      approx = np.load(save)
    errors = [a - e for a, e in zip(approx, exact)]
    relative = [np.linalg.norm(d) / np.linalg.norm(e) for d, e in zip(errors, exact)]
    cosine = [d @ e / np.linalg.norm(d) / np.linalg.norm(e) for d, e in zip(errors, exact)]
    print(f"{path:10s} relative error median {np.median(relative):.2e} max {max(relative):.2e}; "
          f"cosine with the gradient mean {np.mean(cosine):+.2f} "
          f"(per batch {' '.join(f'{c:+.2f}' for c in cosine)})")


if __name__ == "__main__":
  main()
