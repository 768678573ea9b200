"""Information flow in a LEGO model: at which layer each chain position's value becomes linearly
decodable from the residual stream (the paper: about one chain step per layer).

For every layer's output (and the embeddings), a ridge classifier per chain position reads the
residual stream at the token of the clause that defines the variable; it is fitted on training
sentences and scored on held-out ones.

    python -m experiments.lego.flow runs/lego --out=docs/results/lego_flow.png

writes the map to --out and its numbers to --data (default: data/<name>.json beside the PNG, the
summary docs/results/lego.md's information-flow table is rendered from).
"""
from __future__ import annotations


import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from models.probing import ridge_accuracy  # noqa: E402
from experiments.lego import analysis_cli  # noqa: E402
from experiments.lego.study import LegoStudy  # noqa: E402


def residual_streams(model, study: LegoStudy, split: str, sentences: int, batch_size: int = 256):
  """(features [layers + 1, variables, d_model], positions [variables], values [variables]) at the
  defining token of every variable in `sentences` sentences of `split`."""
  graphdef, state = nnx.split(model)
  names = ["embed"] + [f"layer_{i}/residual" for i in range(model.config.num_layers)]

  @jax.jit
  def streams(state, inputs):
    probes = nnx.merge(graphdef, state)(inputs, capture=True)[1]
    return jax.numpy.stack([probes[n] for n in names])

  feats, positions, values = [], [], []
  for step in range(max(1, sentences // batch_size)):
    batch = study.batch(split, step, min(batch_size, sentences))
    rows, cols = np.nonzero(batch["position"])
    feats.append(np.asarray(streams(state, batch["inputs"]))[:, rows, cols])
    positions.append(batch["position"][rows, cols])
    values.append(batch["targets"][rows, cols])
  return np.concatenate(feats, 1), np.concatenate(positions), np.concatenate(values)


def decodability(train, test, num_positions: int, classes: int) -> np.ndarray:
  """[layers + 1, positions]: held-out accuracy of a linear probe per (layer, chain position)."""
  (x_train, p_train, y_train), (x_test, p_test, y_test) = train, test
  return np.array([[ridge_accuracy(x_train[layer, p_train == k], y_train[p_train == k],
                                   x_test[layer, p_test == k], y_test[p_test == k], classes)
                    for k in range(1, num_positions + 1)] for layer in range(len(x_train))])


def information_flow(model, study: LegoStudy, sentences: int = 2048) -> np.ndarray:
  """decodability() of a model on `sentences` training and as many held-out sentences."""
  train = residual_streams(model, study, "train", sentences)
  test = residual_streams(model, study, "test", sentences)
  return decodability(train, test, study.task.num_vars, study.task.num_classes)


def plot_flow(accuracy: np.ndarray, trained: int, path: str, title: str = ""):
  fig, ax = plt.subplots(figsize=(6.5, 4))
  image = ax.imshow(accuracy, origin="lower", cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
  ax.set(xticks=range(accuracy.shape[1]), xticklabels=range(1, accuracy.shape[1] + 1),
         yticks=range(accuracy.shape[0]),
         yticklabels=["embed"] + [str(i + 1) for i in range(accuracy.shape[0] - 1)],
         xlabel=f"chain position (trained: 1-{trained})", ylabel="after layer", title=title)
  for (layer, position), a in np.ndenumerate(accuracy):
    a = round(float(a), 2)
    ax.text(position, layer, f"{a:.2f}"[1:] if a < 1 else "1", ha="center", va="center",
            fontsize=6, color="white" if a < 0.8 else "black")
  fig.colorbar(image, ax=ax, label="linear-probe accuracy (held out)")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv=None):
  parser = analysis_cli.parser(__doc__.splitlines()[0], sentences=2048)
  args = parser.parse_args(argv)
  run = analysis_cli.load_run(parser, args)
  accuracy = information_flow(run.model, run.study, args.sentences)
  for layer, row in enumerate(accuracy):
    print(f"{'embed' if layer == 0 else f'layer {layer}':>8}  " + " ".join(f"{a:.2f}" for a in row))
  plot_flow(accuracy, run.study.task.train_positions, args.out, f"{args.workdir} (step {run.step})")
  analysis_cli.write_numbers(args, run, "experiments.lego.flow", argv,
                             {"accuracy": accuracy.tolist()})

if __name__ == "__main__":
  main()
