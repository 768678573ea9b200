"""Tables and figures of docs/results/lego.md's comparison at the default study's scale, read from the
runs' own evaluations (metrics.jsonl, 1,024 held-out sentences each), so every model is compared at
the same training step of the same schedule, whether or not a checkpoint of that step was kept.

    python -m experiments.lego.curves --step=2500 --summary=docs/results/data/lego_compare.json runs/lego_compare/*

Prints accuracy by chain position at --step (seed mean per model) and the first step at which each
run holds >= 0.95 on each trained position and on all of them; writes the same per run (with each
model's size, the parent-clause split at --step, and the seed means) to --summary, the JSON that
docs/results/lego.md's tables are rendered from; draws <--prefix>_by_position.png (at --step) and
<--prefix>_curves.png (positions 2-8 against step, every run) into --figures (none when empty).
"""
import argparse
import json
import os

import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from experiments.lego.evaluation import markdown_table, plot_positions, recipe, variant
from experiments.runtime.metric_log import read_jsonl

TARGET = 0.95
GROUPS = ("left", "right", "near", "far")


def load(workdir: str) -> dict:
  """A run's model (as evaluation.variant names it), seed and per-step position accuracy."""
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  positions = config["task"]["num_vars"]
  curve = {r["step"]: [r[f"eval/accuracy/position_{i}"] for i in range(1, positions + 1)]
           for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))
           if "eval/accuracy/position_1" in r}
  parent = {r["step"]: {g: [r.get(f"eval/accuracy_parent_{g}/position_{i}")
                            for i in range(2, positions + 1)] for g in GROUPS}
            for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))
            if "eval/accuracy/position_1" in r}
  minutes = {r["step"]: r["train_seconds"] / 60 for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))
             if "eval/accuracy/position_1" in r and "train_seconds" in r}
  config_dict = ml_collections.ConfigDict(config)
  return {"workdir": workdir, "variant": variant(config_dict), "recipe": recipe(config_dict),
          "seed": config["seed"], "curve": curve, "parent": parent, "config": config,
          "minutes": minutes}


def model_size(config: dict) -> dict:
  """Parameters of a run's model, and of one attention layer with its forward FLOPs on one sentence
  (models.attention.cost)."""
  from flax import nnx

  from experiments.lego.study import LegoStudy
  from experiments.runtime import train
  from models import attention
  from models.transformer import Transformer, num_params
  config = ml_collections.ConfigDict(config)
  study = LegoStudy(config)
  model = train.resolved_model_config(config, study)
  layer = attention.cost(model, study.task.seq_len)
  return {"parameters": num_params(nnx.eval_shape(lambda: Transformer(model, rngs=nnx.Rngs(0)))),
          "attention_parameters": layer["params"], "attention_flops": layer["flops"]}


def summary(runs: list[dict], step: int, trained: int) -> dict:
  """What docs/results/data/lego_*.json holds: per run its accuracy at `step`, the first step at
  TARGET on each trained position and on all of them (None: not reached by its last evaluation),
  its last evaluated step and the parent-clause split at `step`; per model its seeds, size and the
  seed mean at `step`."""
  out = {"step": step, "target": TARGET, "trained": trained, "runs": [], "models": {}}
  for r in runs:
    positions = range(1, trained + 1)
    reached = first_step_at_target(r, positions)
    out["runs"].append({
        "workdir": r["workdir"], "model": r["variant"], "seed": r["seed"],
        "recipe": r["recipe"],
        "path": r["config"]["model"].get("kernels"), "at_step": r["curve"][step],
        "last_step": max(r["curve"]), "at_last_step": r["curve"][max(r["curve"])],
        "first_step": [first_step_at_target(r, range(p, p + 1)) for p in positions],
        "first_step_all": reached, "parent": r["parent"].get(step),
        "train_minutes": [r["minutes"].get(reached), r["minutes"].get(step)]})
  for r in runs:
    model = out["models"].setdefault(r["variant"], {"seeds": [], **model_size(r["config"])})
    model["seeds"].append(r["seed"])
  for name, model in out["models"].items():
    model["mean_at_step"] = np.mean([r["at_step"] for r in out["runs"] if r["model"] == name],
                                    axis=0).tolist()
  return out


def first_step_at_target(run: dict, positions: range) -> int | None:
  """The first evaluated step at which every chain position in `positions` (1-based) is >= TARGET."""
  return next((s for s in sorted(run["curve"])
               if min(run["curve"][s][p - 1] for p in positions) >= TARGET), None)


def plot_curves(runs: list[dict], positions: range, path: str):
  fig, axes = plt.subplots(1, len(positions), figsize=(2.6 * len(positions), 3), sharey=True)
  colors = {}
  for run in runs:
    steps = sorted(run["curve"])
    model = run["variant"] + (f" ({run['recipe']})" if run["recipe"] else "")
    color = colors.setdefault(model, f"C{len(colors)}")
    for ax, p in zip(axes, positions):
      ax.plot(steps, [run["curve"][s][p - 1] for s in steps], color=color,
              ls="-" if run["seed"] == 0 else "--", label=f"{model} seed {run['seed']}")
      ax.set(title=f"position {p}", xlabel="step", ylim=(0.4, 1.02))
  axes[0].set_ylabel("held-out accuracy")
  fig.tight_layout()
  fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0),
             ncol=2, fontsize=7)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("workdirs", nargs="+")
  parser.add_argument("--step", type=int, required=True)
  parser.add_argument("--trained", type=int, default=6)
  parser.add_argument("--figures", default="docs/results", help="folder of the PNGs ('': none)")
  parser.add_argument("--prefix", default="lego_compare", help="the PNGs' file-name prefix")
  parser.add_argument("--summary", default=None, help="JSON path for summary() (default: none)")
  args = parser.parse_args(argv)
  runs = [load(w) for w in args.workdirs]
  missing = [r["workdir"] for r in runs if args.step not in r["curve"]]
  if missing:
    parser.error(f"--step: no evaluation at step {args.step} in {', '.join(missing)}")
  at_step = [{**r, "chain": r["curve"][args.step]} for r in runs]
  print(f"accuracy by chain position at step {args.step}\n"
        + markdown_table(at_step, "chain", len(at_step[0]["chain"])))
  trained = range(1, args.trained + 1)
  print(f"\nfirst step at >= {TARGET}: each trained position, then all of them (-: not reached)")
  print("| model | seed | " + " | ".join(map(str, trained)) + " | all |\n|---|---|"
        + "---|" * (len(trained) + 1))
  for r in runs:
    steps = [first_step_at_target(r, range(p, p + 1)) for p in trained]
    steps.append(first_step_at_target(r, trained))
    print(f"| {r['variant']} | {r['seed']} | " + " | ".join("-" if s is None else str(s)
                                                          for s in steps) + " |")
  if args.summary:
    with open(args.summary, "w") as f:
      json.dump(summary(runs, args.step, args.trained), f, indent=1)
  if args.figures:
    plot_positions(at_step, "chain", args.trained,
                   os.path.join(args.figures, f"{args.prefix}_by_position.png"),
                   f"held-out chains at step {args.step} (trained on positions 1-{args.trained})")
    plot_curves(runs, range(2, 9), os.path.join(args.figures, f"{args.prefix}_curves.png"))


if __name__ == "__main__":
  main()
