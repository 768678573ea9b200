"""The tables of docs/results/arithmetic.md, rendered from docs/results/data/arithmetic_summary.json
(written by `python -m experiments.arithmetic.plots --runs=...` from the runs of the `figures`
sweep). `python -m experiments.pages` writes them into the page."""
from __future__ import annotations

import numpy as np

SUMMARY = "arithmetic_summary.json"
METHODS = {"learned": "learned (baseline)", "random_space": "random spaces",
           "random_embedding": "random embedding", "randomized": "randomised positions",
           "abacus": "Abacus"}
FORMATS = {"plain": "plain", "reverse": "reversed product", "pad": "padding",
           "pad_reverse": "padding + reversed product"}
TRAINED = 10  # addition trains on 1-10 digits


def _grids(summary, method):
  """{seed: grid} of an addition method."""
  return {r["seed"]: np.array(r["grid"]) for name, r in summary.items()
          if r["op"] == "add" and name.rsplit("_s", 1)[0] == method}


def _beyond(grid):
  mask = np.ones(grid.shape, bool)
  mask[:TRAINED, :TRAINED] = False
  return mask


def _regions(grid):
  """(in range, 11-15 x 11-15, every cell with a > 10 or b > 10): mean exact match."""
  return (grid[:TRAINED, :TRAINED].mean(), grid[TRAINED:, TRAINED:].mean(),
          grid[_beyond(grid)].mean())


def _mean_sd(values):
  values = np.asarray(values, float)
  sd = values.std(ddof=1) if len(values) > 1 else float("nan")
  return f"{values.mean():.2f} ± {sd:.2f}"


def _best(grid, mask):
  """'0.95 (11 × 5)': the best cell under `mask`, digits of a × digits of b."""
  i, j = np.unravel_index(np.where(mask, grid, -1).argmax(), grid.shape)
  return f"{grid[i, j]:.2f} ({i + 1} × {j + 1})"


def addition(load) -> str:
  summary = load(SUMMARY)
  lines = ["| method | 1–10 × 1–10, seeds 0 / 1 / 2 | mean ± SD | 11–15 × 11–15, seeds 0 / 1 / 2 "
           "| mean ± SD | every cell with a or b > 10, seeds 0 / 1 / 2 | mean ± SD |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for method, label in METHODS.items():
    grids = _grids(summary, method)
    regions = np.array([_regions(grids[s]) for s in sorted(grids)])  # [seeds, 3]
    cells = []
    for k in range(3):
      cells += [" / ".join(f"{v:.2f}" for v in regions[:, k]), _mean_sd(regions[:, k])]
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def reach(load) -> str:
  """How far past the trained 10 digits each addition run gets: its best cell where one operand
  has 11 digits and the other at most 10, where both have 11 or more, and where one has 12 or more."""
  summary = load(SUMMARY)
  lines = ["| method | seed | 1–10 × 1–10 | teacher-forced, 1–10 | best cell, one operand of 11 "
           "digits | best cell, both ≥ 11 digits | best cell, an operand of ≥ 12 digits |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  forced = {(name.rsplit("_s", 1)[0], r["seed"]): r["teacher_forced"]["exact_match"]
            for name, r in summary.items() if r["op"] == "add"}
  for method, label in METHODS.items():
    for seed, grid in sorted(_grids(summary, method).items()):
      n = len(grid)
      eleven = np.zeros((n, n), bool)
      eleven[TRAINED, :TRAINED] = eleven[:TRAINED, TRAINED] = True
      both = np.zeros((n, n), bool)
      both[TRAINED:, TRAINED:] = True
      twelve = np.zeros((n, n), bool)
      twelve[TRAINED + 1:, :] = twelve[:, TRAINED + 1:] = True
      lines.append(f"| {label} | {seed} | {grid[:TRAINED, :TRAINED].mean():.2f} | "
                   f"{forced[method, seed]:.2f} | "
                   f"{_best(grid, eleven)} | {_best(grid, both)} | {_best(grid, twelve)} |")
  return "\n".join(lines)


def multiplication(load) -> str:
  summary = load(SUMMARY)
  lines = ["| format | seed | mean (16 cells) | 2 × 2 | 3 × 3 | 4 × 4 | 1 × 3 / 3 × 1 | 1 × 4 / 4 × 1 |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for name, label in FORMATS.items():
    run = summary[name]
    g = np.array(run["grid"])
    lines.append(f"| {label} | {run['seed']} | {g.mean():.2f} | {g[1, 1]:.2f} | {g[2, 2]:.2f} | "
                 f"{g[3, 3]:.2f} | {g[0, 2]:.2f} / {g[2, 0]:.2f} | {g[0, 3]:.2f} / {g[3, 0]:.2f} |")
  return "\n".join(lines)


def margin(load) -> str:
  """Where padding + reversed product's lead over each other format comes from: the lead in the
  16-cell mean, and the share of it that the 2 x 2 cell gives."""
  summary = load(SUMMARY)
  best = np.array(summary["pad_reverse"]["grid"])
  lines = ["| padding + reversed product against | lead in the mean (seed 0) | lead at 2 × 2 "
           "| share of the lead from 2 × 2 | cells where it is behind |",
           "| --- | --- | --- | --- | --- |"]
  for name in ("reverse", "pad", "plain"):
    g = np.array(summary[name]["grid"])
    diff = best - g
    share = diff[1, 1] / diff.sum() if diff.sum() else float("nan")
    lines.append(f"| {FORMATS[name]} | {diff.mean():+.2f} | {diff[1, 1]:+.2f} | {share:.0%} | "
                 f"{int((diff < 0).sum())} of 16 |")
  return "\n".join(lines)


def findings(load) -> str:
  """Each published finding (docs/STUDIES: Shen et al. 2023 and the anchors), ours, a verdict."""
  summary = load(SUMMARY)

  def regions(method):
    grids = _grids(summary, method)
    return {s: _regions(g) for s, g in sorted(grids.items())}

  def seeds(method, k):
    return " / ".join(f"{v[k]:.2f}" for v in regions(method).values())

  mul = {name: np.array(summary[name]["grid"]).mean() for name in FORMATS}
  rows = [
      ("Basic training (learned absolute positions) does not extrapolate past the trained length "
       "(Shen et al.)",
       f"learned: 1–10 digits {seeds('learned', 0)}, every cell with a or b > 10: "
       f"{seeds('learned', 2)} (seeds 0 / 1 / 2)", "holds",
       "the seed that learned the range scores 0 beyond it"),
      ("Random spaces let addition extrapolate to 11–12 digits (Shen et al.)",
       f"random spaces: beyond 10 digits {seeds('random_space', 2)}; 11–15 × 11–15 "
       f"{seeds('random_space', 1)}", "partly",
       "the seeds that learned the range (1, 2) solve many cells with one 11-digit operand, far "
       "fewer with both operands ≥ 11 digits or one ≥ 12 (the 'how far' table)"),
      ("Random embedding lets addition extrapolate (Shen et al.)",
       f"random embedding: beyond 10 digits {seeds('random_embedding', 2)}; 11–15 × 11–15 "
       f"{seeds('random_embedding', 1)}", "partly",
       "one seed of three learned the range; seeds 0 and 1 solve some cells with one 11-digit "
       "operand, far fewer beyond (the 'how far' table); our random embedding is a reconstruction"),
      ("Abacus positions extrapolate (McLeish et al.: ≤ 20 digits → 100)",
       f"Abacus: 1–10 digits {seeds('abacus', 0)}, 11–15 × 11–15 {seeds('abacus', 1)}", "holds",
       "tested to 15 digits only (1.5×); one seed of three learned the range; the other two score "
       "about as well beyond the range as within it"),
      ("Randomised positions (Ruoss et al.) generalise in length",
       f"randomised: 1–10 digits {seeds('randomized', 0)}", "inconclusive",
       "no seed learned the trained range in 4,000 steps"),
      ("Seed variance is large (Zhou et al.)",
       "in-range accuracy per seed: " + "; ".join(f"{METHODS[m]} {seeds(m, 0)}"
                                                  for m in ("learned", "random_space", "abacus")),
       "holds", ""),
      ("Multiplication: padding + reversed product is the best format, plain fails first "
       "(Shen et al., to 15 digits)",
       "seed 0, 1–4 digits, mean of 16 cells: " + ", ".join(f"{FORMATS[n]} {v:.2f}"
                                                            for n, v in mul.items()),
       "partly", "one seed; reversed product and padding alone tie; half or more of the lead of "
       "padding + reversed product comes from the 2 × 2 cell; no format learns 3 × 3 or 4 × 4"),
      ("Addition in natural-language context; recursive scratchpad; index hints and FIRE (Zhou "
       "et al.); relative positions (Jelassi et al.); position coupling (Cho et al.)",
       "–", "not run", "the scratchpad, index-hint and text formats exist in tasks/arithmetic.py "
       "and ALiBi in models/positional.py; none has a run"),
  ]
  lines = ["| published finding | ours | verdict | why it differs |", "| --- | --- | --- | --- |"]
  lines += [f"| {a} | {b} | {c} | {d or '–'} |" for a, b, c, d in rows]
  return "\n".join(lines)

