"""The LEGO model comparison with the shortcut check on trees (experiments/lego/runs.sh): evaluates finished `experiments.lego` /
`experiments.lego.mimic` runs per chain position, on held-out chains and on tree-shaped sentences
(the shortcut check), scores their heads, and draws the figures. Trains nothing.

    python -m experiments.lego.evaluation evaluate runs/lego_attention/*_s[0-9]* --out=results.json
    python -m experiments.lego.evaluation report results.json --figures=runs/lego_attention

The notebook notebooks/lego_attention.ipynb calls the same functions on one run.
"""
from __future__ import annotations

import copy
import json
import os

import jax
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from experiments.configs.lego import get_config as lego_config
from experiments.lego.study import LegoStudy
from experiments.runtime import restore
from experiments.runtime.metric_log import read_jsonl
from models import attention as attn_lib
from models import probing
from tasks.cli import Parser, at_least

# The study's models, in table order (evaluation.variant's names)
VARIANTS = ("vanilla", "vanilla_tied", "tied", "mimic", "mimic_tied", "lego", "conv_qkv")


def variant(config) -> str:
  """Which of the study's models a run's config is: its attention (or "mimic"), with "_tied" for
  tied layers; the default model, tied LEGO attention, is "tied"."""
  name = "mimic" if "mimic" in config else config.model.attention
  if config.model.tied_layers:
    return "tied" if name == "lego" else f"{name}_tied"
  return name


RECIPE_FIELDS = ("model.d_model", "model.num_heads", "model.num_layers", "model.pos_encoding",
                 "num_steps", "learning_rate", "warmup_steps", "batch_size", "curriculum.steps")


def recipe(config) -> str:
  """The fields of RECIPE_FIELDS in which a run departs from the study's default config, as
  "field=value" joined by commas ("" for none)."""
  default = lego_config()
  changes = []
  for field in RECIPE_FIELDS:
    section, _, name = field.rpartition(".")
    value = (config[section] if section else config).get(name)
    if value != (default[section] if section else default)[name]:
      changes.append(f"{field}={value}")
  return ",".join(changes)


def with_graph(config, graph: str) -> LegoStudy:
  """The run's study (seed, task sizes) on sentences whose dependency graph is `graph`."""
  config = copy.deepcopy(config)
  config.task.graph = graph
  return LegoStudy(config)


def accuracy_by_position(model, study: LegoStudy, sentences: int = 2048, batch_size: int = 512,
                         min_count: int = 100):
  """(accuracy, count) per chain position (depth + 1 on trees) over held-out test sentences;
  accuracy is NaN where fewer than `min_count` variables sit at that position (deep tree levels)."""
  graphdef, params = nnx.split(model)
  logits_fn = jax.jit(lambda p, inputs: nnx.merge(graphdef, p)(inputs))
  correct = count = 0
  for step in range(max(1, sentences // batch_size)):
    batch = study.batch("test", step, min(batch_size, sentences))
    sums = jax.device_get(study.eval_sums(logits_fn(params, batch["inputs"]), batch))
    correct, count = correct + sums["correct"], count + sums["count"]
  accuracy = np.where(count >= min_count, correct / np.maximum(count, 1), np.nan)
  return accuracy.tolist(), count.astype(int).tolist()


def evaluate_run(workdir: str, sentences: int = 2048) -> dict:
  run = restore.load(workdir, "lego", fill_defaults=True)
  chain, _ = accuracy_by_position(run.model, run.study, sentences)
  tree, tree_count = accuracy_by_position(run.model, with_graph(run.config, "tree"), sentences)
  tokens = run.study.batch("test", 0, 64)["inputs"]
  scores = probing.head_scores(probing.probe(run.model, tokens), tokens)
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  model_config = run.model.config
  return {"workdir": workdir, "variant": variant(run.config), "seed": run.config.seed,
          "step": run.step, "train_seconds": max(r.get("train_seconds", 0.0) for r in records),
          "params": int(sum(p.size for p in jax.tree.leaves(nnx.state(run.model, nnx.Param)))),
          "attention": attn_lib.cost(model_config, run.study.task.seq_len),
          "chain": chain, "tree": tree, "tree_count": tree_count, "head_scores": scores}


# -- figures and tables --------------------------------------------------------------------------

def plot_attention(probes, labels, layers: int, heads: int, path: str | None = None, scores=None):
  """One sentence's attention map for every layer (rows) and head (columns), tokens on the axes."""
  fig, axes = plt.subplots(layers, heads, figsize=(4.2 * heads, 4.2 * layers), squeeze=False)
  ticks = np.arange(len(labels))
  for layer in range(layers):
    for head in range(heads):
      ax, name = axes[layer, head], f"layer_{layer}/head_{head}"
      ax.imshow(probes[f"{name}/attention"][0], cmap="viridis", vmin=0)
      ax.set_xticks(ticks, labels, fontsize=4, rotation=90)
      ax.set_yticks(ticks, labels, fontsize=4)
      title = name
      if scores is not None:
        score = scores[name]
        title += f"\nassoc {score['association']:.2f} manip {score['manipulation']:.2f}"
      ax.set_title(title, fontsize=8)
  fig.tight_layout()
  if path:
    fig.savefig(path, dpi=110)
  return fig


def _table_order(name: str) -> tuple[int, str]:
  return (VARIANTS.index(name) if name in VARIANTS else len(VARIANTS), name)


def layer_best(scores: dict, pattern: str) -> list[float]:
  """Per layer, the highest `pattern` score of its heads (scores: models.probing.head_scores)."""
  layers = sorted({h.split("/")[0] for h in scores}, key=lambda n: int(n[len("layer_"):]))
  return [max(v[pattern] for h, v in scores.items() if h.startswith(layer + "/"))
          for layer in layers]


def _nanmean(rows):
  valid = ~np.isnan(rows)
  return np.where(valid.any(0), np.nansum(rows, 0) / np.maximum(valid.sum(0), 1), np.nan)


def _mean_over_seeds(results, key):
  by_variant = {}
  for r in results:
    by_variant.setdefault(r["variant"], []).append(np.asarray(r[key], dtype=float))
  return {v: np.stack(by_variant[v]) for v in sorted(by_variant, key=_table_order)}


def plot_positions(results, key: str, trained: int, path: str | None = None, title: str = ""):
  """Accuracy by chain position for every variant: the seed mean as a line, each seed as dots."""
  fig, ax = plt.subplots(figsize=(7, 4))
  for name, rows in _mean_over_seeds(results, key).items():
    positions = np.arange(1, rows.shape[1] + 1)
    line, = ax.plot(positions, _nanmean(rows), "o-", label=f"{name} ({len(rows)} seeds)")
    for row in rows:
      ax.plot(positions, row, ".", color=line.get_color(), alpha=0.4)
  ax.axvspan(0.5, trained + 0.5, color="tab:green", alpha=0.08)
  ax.axhline(0.5, color="gray", ls=":", lw=1)
  ax.set(xlabel="chain position (tree: depth + 1)", ylabel="test accuracy", ylim=(0.3, 1.02),
         title=title, xticks=list(positions))
  ax.legend(fontsize=8, loc="lower left")
  fig.tight_layout()
  if path:
    fig.savefig(path, dpi=120)
  return fig


def markdown_table(results, key: str, positions: int) -> str:
  """Seed-mean accuracy per position, one row per variant (seeds in brackets)."""
  head = "| model | " + " | ".join(str(i) for i in range(1, positions + 1)) + " |"
  lines = [head, "|" + "---|" * (positions + 1)]
  for name, rows in _mean_over_seeds(results, key).items():
    cells = ["–" if np.isnan(a) else f"{a:.3f}" for a in _nanmean(rows)]
    lines.append(f"| {name} ({len(rows)}) | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def head_table(results) -> str:
  """Per variant (seed mean): each layer's best association and best manipulation head score."""
  lines = ["| model | best association score per layer | best manipulation score per layer |",
           "|---|---|---|"]
  by_variant = {}
  for r in results:
    best = [layer_best(r["head_scores"], kind) for kind in ("association", "manipulation")]
    by_variant.setdefault(r["variant"], []).append(best)
  for name in sorted(by_variant, key=_table_order):
    assoc, manip = np.mean(by_variant[name], axis=0)
    lines.append(f"| {name} | {' '.join(f'{a:.2f}' for a in assoc)} | "
                 f"{' '.join(f'{m:.2f}' for m in manip)} |")
  return "\n".join(lines)


def main(argv=None):
  parser = Parser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)
  evaluate = sub.add_parser("evaluate", help="evaluate run workdirs into a JSON file")
  evaluate.add_argument("workdirs", nargs="+")
  evaluate.add_argument("--out", required=True)
  evaluate.add_argument("--sentences", type=at_least(1), default=4096)
  report = sub.add_parser("report", help="tables (stdout) and figures from the JSON file")
  report.add_argument("results")
  report.add_argument("--figures", default=".", help="folder of lego_by_position.png and lego_tree.png")
  report.add_argument("--trained", type=at_least(1), default=6)
  args = parser.parse_args(argv)
  if args.command == "evaluate":
    results = [evaluate_run(w, args.sentences) for w in args.workdirs]
    with open(args.out, "w") as f:
      json.dump(results, f, indent=1)
    return
  with open(args.results) as f:
    results = json.load(f)
  positions = len(results[0]["chain"])
  os.makedirs(args.figures, exist_ok=True)
  plot_positions(results, "chain", args.trained, os.path.join(args.figures, "lego_by_position.png"),
                 "held-out chains (trained on positions 1-%d)" % args.trained)
  plot_positions(results, "tree", args.trained, os.path.join(args.figures, "lego_tree.png"),
                 "tree-shaped sentences (shortcut check)")
  print("chains\n" + markdown_table(results, "chain", positions))
  print("\ntrees\n" + markdown_table(results, "tree", positions))
  print("\nheads\n" + head_table(results))


if __name__ == "__main__":
  main()
