"""How far the float32 gradient of a LEGO run is from float64, on XLA's path and with the CPU kernels.

    python -m experiments.lego.gradient_precision runs/lego_untied_s1     # a run's latest checkpoint
    python -m experiments.lego.gradient_precision --variant=tied=False    # a fresh model (init)

For 8 training batches: the loss and gradient in float64 (jax_enable_x64, XLA's path), then the
float32 gradient on each path (`model.kernels`: xla, then auto). Prints each path's relative error
|g32 - g64| / |g64| and the cosine between that error and g64 (a bias along the gradient would show
as a cosine far from 0 on one path only), and how far two batches' gradients are apart, for scale. docs/results/lego.md quotes its output.
"""
import argparse
import copy

import jax
import jax.numpy as jnp
import numpy as np

from experiments.configs.lego import get_config
from experiments.lego.study import LegoStudy
from experiments.runtime import restore, train
from models import transformer as transformer_lib

BATCHES = 8


def config_study_params(args):
  """The run's (a workdir: its latest checkpoint) or a fresh model's config, study and parameters."""
  if args.workdir:
    run = restore.load(args.workdir, "lego", fill_defaults=True)
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
  args = parser.parse_args()
  jax.config.update("jax_enable_x64", True)  # the parameters then initialise as float64
  config, study, params = config_study_params(args)
  reference = copy.deepcopy(config)
  reference.model.dtype = "float64"
  transformer_lib.validate = lambda config: None  # float64 activations: this reference only
  exact = gradients(reference, study, params, jnp.float64)
  apart = [np.linalg.norm(a - b) / np.linalg.norm(a) for a, b in zip(exact, exact[1:])]
  print(f"two batches' gradients differ by {np.median(apart):.2f} of their norm (median)")
  for path, kernels in (("XLA's path", "xla"), ("kernels", "auto")):
    single = copy.deepcopy(config)
    single.model.kernels = kernels
    approx = gradients(single, study, params, jnp.float32)
    errors = [a - e for a, e in zip(approx, exact)]
    relative = [np.linalg.norm(d) / np.linalg.norm(e) for d, e in zip(errors, exact)]
    cosine = [d @ e / np.linalg.norm(d) / np.linalg.norm(e) for d, e in zip(errors, exact)]
    print(f"{path:10s} relative error median {np.median(relative):.2e} max {max(relative):.2e}; "
          f"cosine with the gradient mean {np.mean(cosine):+.2f} "
          f"(per batch {' '.join(f'{c:+.2f}' for c in cosine)})")


if __name__ == "__main__":
  main()
