"""Head scores through training: at every checkpoint a LEGO run kept, how strongly each layer's
heads follow the paper's association and manipulation patterns (models.probing.head_scores), beside
the run's accuracy per chain position at that step; and, at the last checkpoint, where each chain
position's defining token looks (`attention_targets`): at its parent's definition (the hop the
chain needs), at the root's definition or the root's value (a shortcut that solves position 2
only), or at the mention of its parent in its own clause.

    python -m experiments.lego.heads runs/lego_vanilla --out=docs/results/lego_vanilla_heads.png

Run with `--config.checkpoint_keep` at least num_steps / checkpoint_every to keep every checkpoint.
Writes the figure to --out and its numbers to --data (default: data/<name>.json beside the PNG).
"""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.lego import analysis_cli  # noqa: E402
from experiments.lego.evaluation import layer_best, variant  # noqa: E402
from experiments.runtime import restore  # noqa: E402
from experiments.runtime.metric_log import read_jsonl  # noqa: E402
from models import probing  # noqa: E402
from tasks.lego import CLAUSE_LEN  # noqa: E402

PATTERNS = ("association", "manipulation")
TARGETS = ("parent definition", "root definition", "root value", "parent mention")


def scores_through_training(workdir: str, sentences: int = 64) -> dict:
  """{"steps": [...], "scores": [{head: {pattern: score}}] per step, "accuracy": [per position]
  per step (the eval logged at that step, or None)} over every checkpoint `workdir` kept."""
  evals = {r["step"]: r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))
           if "eval/accuracy/position_1" in r}
  steps, scores, accuracy = restore.steps(workdir), [], []
  for step in steps:
    run = restore.load(workdir, "lego", fill_defaults=True, step=step)
    tokens = run.study.batch("test", 0, sentences)["inputs"]
    scores.append(probing.head_scores(probing.probe(run.model, tokens), tokens))
    record, positions = evals.get(step), range(1, run.study.task.num_vars + 1)
    accuracy.append(None if record is None else
                    [record[f"eval/accuracy/position_{k}"] for k in positions])
  return {"steps": steps, "scores": scores, "accuracy": accuracy}


def attention_targets(probes, batch, layers: int, heads: int, positions) -> dict:
  """{target: [positions][layers]}: per chain position in `positions` (from 2: the root has no
  parent) and layer, the attention mass the layer's most attentive head puts, from each variable's
  defining token, on each of TARGETS."""
  position, offset = batch["position"], batch["parent_offset"]
  rows, cols = np.nonzero(position)
  root = np.zeros(len(position), int)
  root[rows[position[rows, cols] == 1]] = cols[position[rows, cols] == 1]
  out = {t: [] for t in TARGETS}
  for k in positions:
    r, c = rows[position[rows, cols] == k], cols[position[rows, cols] == k]
    keys = dict(zip(TARGETS, (c + CLAUSE_LEN * offset[r, c], root[r], root[r] + 3, c + 3)))
    for target, key in keys.items():
      out[target].append([max(float(probes[f"layer_{i}/head_{h}/attention"][r, c, key].mean())
                              for h in range(heads)) for i in range(layers)])
  return out


def plot_heads(history: dict, layers: int, trained: int, path: str, title: str = ""):
  """Per pattern, a (layer x step) map of the best head's score; below, trained-position accuracy."""
  steps = history["steps"]
  fig, axes = plt.subplots(1, 3, figsize=(14, 4))
  for ax, pattern in zip(axes, PATTERNS):
    grid = np.array([layer_best(s, pattern) for s in history["scores"]]).T
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set(xticks=range(len(steps)), xticklabels=[f"{s:,}" for s in steps],
           yticks=range(layers), yticklabels=range(1, layers + 1), xlabel="step", ylabel="layer",
           title=f"best {pattern} score in the layer")
    ax.tick_params(axis="x", labelrotation=90, labelsize=6)
    fig.colorbar(image, ax=ax)
  ax = axes[2]
  for k in range(trained):
    points = [(s, a[k]) for s, a in zip(steps, history["accuracy"]) if a is not None]
    if points:
      ax.plot(*zip(*points), marker=".", label=f"position {k + 1}")
  ax.set(xlabel="step", ylabel="held-out accuracy", ylim=(0.4, 1.02), title="trained positions")
  ax.legend(fontsize=6)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None):
  parser = analysis_cli.parser(__doc__.splitlines()[0], sentences=64)
  args = parser.parse_args(argv)
  run = analysis_cli.load_run(parser, args)
  history = scores_through_training(args.workdir, args.sentences)
  layers, trained = run.config.model.num_layers, run.study.task.train_positions
  for step, scores in zip(history["steps"], history["scores"]):
    print(f"step {step:>6,}  " + "  ".join(
        f"{p[:5]} " + " ".join(f"{x:.2f}" for x in layer_best(scores, p)) for p in PATTERNS))
  plot_heads(history, layers, trained, args.out, f"{args.workdir} ({variant(run.config)})")
  batch = run.study.batch("test", 0, args.sentences)
  targets = attention_targets(probing.probe(run.model, batch["inputs"]), batch, layers,
                              run.config.model.num_heads, range(2, trained + 3))
  print(f"step {run.step:,}: the most attentive head's mass, from each position's defining token, "
        f"at layers 1..{layers}")
  for target, per_position in targets.items():
    for k, masses in enumerate(per_position, 2):
      print(f"  {target:>17}  position {k}: " + " ".join(f"{m:.2f}" for m in masses))
  analysis_cli.write_numbers(args, run, "experiments.lego.heads", argv,
                             {**history, "targets": targets})

if __name__ == "__main__":
  main()
