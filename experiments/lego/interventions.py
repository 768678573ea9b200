"""Interventions on a LEGO model: which heads it needs (ablation) and where each variable's value
travels (activation patching) — the causal counterpart of the information-flow map (flow.py).

Head ablation: each head of each layer in turn is zeroed (or replaced by its mean over the batch)
and accuracy per chain position is measured on held-out chains.

Activation patching: every sentence gets a corrupted twin whose root clause holds the other value
(`a = val 0` becomes `a = val 1`), which flips every variable's value. Into the corrupted run, the
clean run's residual stream after one layer is patched at the five tokens of one clause (chain
position k) only, and two things are read off the corrupted run's predictions:
  held   the fraction of chain-position-k variables now predicted with their clean value: high once
         the value of k has been computed into its own clause by that layer;
  passed the same for chain position k + 1, whose parent is k: high while k + 1 has yet to read its
         parent after that layer.

    python -m experiments.lego.interventions runs/lego --out=docs/results/lego_interventions.png

writes the figure to --out and its numbers to --data (default: data/<name>.json beside the PNG).
"""
from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.lego import analysis_cli  # noqa: E402
from experiments.lego.study import LegoStudy  # noqa: E402
from models import interventions  # noqa: E402
from tasks.lego import CLAUSE_LEN  # noqa: E402

ABLATIONS = ("zero", "mean")


def _accuracy(logits, batch, positions: int) -> np.ndarray:
  """[positions]: accuracy per chain position 1..positions of logits [B, T, classes]."""
  correct = np.asarray(logits).argmax(-1) == batch["targets"]
  return np.array([correct[batch["position"] == k].mean() for k in range(1, positions + 1)])


def _batches(study: LegoStudy, sentences: int, batch_size: int = 256):
  return [study.batch("test", step, min(batch_size, sentences))
          for step in range(max(1, sentences // batch_size))]


def head_ablation(model, study: LegoStudy, sentences: int = 512, ablation: str = "zero"):
  """(baseline [positions], ablated [layers, heads, positions]): held-out accuracy per chain
  position, plain and with one head ablated. One compilation: every head site carries an edit
  whose position mask is empty except for the head ablated."""
  if ablation not in ABLATIONS:
    raise ValueError(f"ablation: unknown {ablation!r}; allowed: {', '.join(ABLATIONS)}")
  config, n = model.config, study.task.num_vars
  heads = [(i, j) for i in range(config.num_layers) for j in range(config.num_heads)]
  baseline, ablated = [], []
  for batch in _batches(study, sentences):
    tokens = batch["inputs"]
    logits, probes = interventions.run(model, tokens, capture=True)
    baseline.append(_accuracy(logits, batch, n))
    off = np.zeros(tokens.shape[1], bool)

    def edit(site, where):
      return (interventions.zero(where) if ablation == "zero"
              else interventions.mean(probes[site], where))

    rows = []
    for head in heads:
      edits = {f"layer_{i}/head_{j}/output": edit(f"layer_{i}/head_{j}/output",
                                                  ~off if (i, j) == head else off)
               for i, j in heads}
      rows.append(_accuracy(interventions.run(model, tokens, edits), batch, n))
    ablated.append(rows)
  shape = (config.num_layers, config.num_heads, n)
  return np.mean(baseline, 0), np.mean(ablated, 0).reshape(shape)


def corrupt(study: LegoStudy, tokens: np.ndarray) -> np.ndarray:
  """The sentences with the root's value token replaced by the next value (every variable's value
  changes, since each is a group element applied to its parent)."""
  vocab, values = study.task.vocab, study.task.algebra.values
  ids = np.array([vocab.id(v) for v in values])
  corrupted = tokens.copy()
  for i, value in enumerate(ids):
    corrupted[tokens == value] = ids[(i + 1) % len(ids)]
  return corrupted


def clause_mask(batch, k: int) -> np.ndarray:
  """[B, T]: the tokens of the clause that defines each sentence's chain-position-k variable."""
  rows, slots = np.nonzero(batch["position"] == k)
  mask = np.zeros(batch["inputs"].shape, bool)
  for offset in range(CLAUSE_LEN):
    mask[rows, slots + offset] = True
  return mask


def patching(model, study: LegoStudy, sentences: int = 512):
  """(held, passed), each [layers + 1, positions]: see the module's docstring. Rows: the residual
  stream patched (embeddings, after layer 1, ...); columns: the clause patched, chain positions
  1..train_positions (passed: up to train_positions - 1). Also the clean and corrupted runs'
  accuracy against the clean values per chain position."""
  layers, positions = model.config.num_layers, study.task.train_positions
  sites = ["embed"] + [f"layer_{i}/residual" for i in range(layers)]
  held, passed, clean_acc, corrupt_acc = [], [], [], []
  for batch in _batches(study, sentences):
    clean_logits, clean = interventions.run(model, batch["inputs"], capture=True)
    corrupted = corrupt(study, batch["inputs"])
    clean_acc.append(_accuracy(clean_logits, batch, positions))
    corrupt_acc.append(_accuracy(interventions.run(model, corrupted), batch, positions))
    off = np.zeros(batch["inputs"].shape, bool)
    grid = np.zeros((2, len(sites), positions))
    for k in range(1, positions + 1):
      mask = clause_mask(batch, k)
      for layer, patched in enumerate(sites):
        edits = {site: interventions.replace(clean[site], mask if site == patched else off)
                 for site in sites}
        accuracy = _accuracy(interventions.run(model, corrupted, edits), batch, positions)
        grid[0, layer, k - 1] = accuracy[k - 1]
        grid[1, layer, k - 1] = accuracy[k] if k < positions else np.nan
    held.append(grid[0])
    passed.append(grid[1])
  return (np.mean(held, 0), np.mean(passed, 0), np.mean(clean_acc, 0), np.mean(corrupt_acc, 0))


def plot(baseline, ablated, held, passed, path: str, title: str = "", ablation: str = "zero"):
  """Three panels: accuracy drop per ablated head and chain position; patching's `held` and
  `passed` per layer and chain position."""
  layers, heads, _ = ablated.shape
  trained = held.shape[1]
  fig, axes = plt.subplots(1, 3, figsize=(13, 0.16 * layers * heads + 1.6),
                           gridspec_kw={"width_ratios": [1.1, 1, 1]})
  drop = (baseline[None, None, :trained] - ablated[:, :, :trained]).reshape(layers * heads, trained)
  image = axes[0].imshow(drop, cmap="magma_r", vmin=0, vmax=0.5, aspect="auto")
  axes[0].set(title=f"accuracy lost, one head {ablation}-ablated",
              xticks=range(trained), xticklabels=range(1, trained + 1), xlabel="chain position",
              yticks=range(layers * heads),
              yticklabels=[f"L{i + 1} H{j}" for i in range(layers) for j in range(heads)])
  axes[0].tick_params(axis="y", labelsize=6)
  fig.colorbar(image, ax=axes[0], fraction=0.05)
  for ax, grid, name in ((axes[1], held, "held: k's own value restored"),
                         (axes[2], passed, "passed: k + 1's value restored")):
    image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set(title=name, xticks=range(trained), xticklabels=range(1, trained + 1),
           xlabel="clause patched (chain position k)", yticks=range(layers + 1),
           yticklabels=["embed"] + [str(i + 1) for i in range(layers)],
           ylabel="residual patched after layer")
    for (layer, position), a in np.ndenumerate(grid):
      a = round(float(a), 2)
      if np.isfinite(a):
        ax.text(position, layer, f"{a:.2f}"[1:] if a < 1 else "1", ha="center", va="center",
                fontsize=6, color="white" if a < 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.05)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None):
  parser = analysis_cli.parser(__doc__.splitlines()[0], sentences=512)
  parser.add_argument("--ablation", default="zero", help=", ".join(ABLATIONS))
  args = parser.parse_args(argv)
  if args.ablation not in ABLATIONS:
    parser.error(f"--ablation: unknown {args.ablation!r}; allowed: {', '.join(ABLATIONS)}")
  run = analysis_cli.load_run(parser, args)
  baseline, ablated = head_ablation(run.model, run.study, args.sentences, args.ablation)
  held, passed, clean, corrupted = patching(run.model, run.study, args.sentences)
  print("accuracy by chain position: " + " ".join(f"{a:.2f}" for a in baseline))
  for name, grid in (("held", held), ("passed", passed)):
    print(f"{name} (rows: embed, after layer 1, ...; columns: chain position)")
    for layer, row in enumerate(grid):
      print(f"{'embed' if layer == 0 else f'layer {layer}':>8}  " + " ".join(f"{a:.2f}" for a in row))
  plot(baseline, ablated, held, passed, args.out, f"{args.workdir} (step {run.step})",
       args.ablation)
  analysis_cli.write_numbers(args, run, "experiments.lego.interventions", argv, {
      "ablation": args.ablation, "baseline": baseline.tolist(), "ablated": ablated.tolist(),
      "held": held.tolist(),
      "passed": [[None if np.isnan(a) else a for a in row] for row in passed.tolist()],
      "clean": clean.tolist(), "corrupted": corrupted.tolist()})

if __name__ == "__main__":
  main()
