"""The knowledge results page's tables (docs/results/knowledge.md), rendered by experiments.pages
from the summaries in docs/results/data/ (knowledge_*.json: {"runs", "command", "seeds", "sweeps":
{sweep: {variant: results}}}, as `python -m experiments.knowledge.sweep_report summary` writes them).

Every function takes `load` (a summary's name -> its parsed JSON) and returns Markdown.
"""
from __future__ import annotations

import statistics

from experiments.knowledge.study import ATTRIBUTES

EXTRACTION = "knowledge_extraction.json"
CAPACITY = "knowledge_capacity_biod.json"
CPU1000 = "knowledge_capacity1000_cpu.json"
CUTS = "knowledge_arch_moe_junk_cpu.json"
UNIFORM_P2 = 133.1  # nats a person of a uniform guess of bioD(K=8, C=4, D=64, L=1, T=64)'s values
VOCAB = 236  # the bioD task's tokens: embedding + head (with bias) = VOCAB * (2 * hidden + 1)
PUBLISHED_P_TEST = {"single": 0.097, "multi5 + permute": 0.966, "mixed (single)": 0.866}
BLOCK_NAMES = ("gpt2", "llama", "llama_nogate")
WIDTHS = (32, 48, 64)


def knobs(variant: str) -> dict[str, str]:
  """A variant string's knobs ({key: value}; a preset maps to "")."""
  return dict((p.split("=", 1) + [""])[:2] for p in variant.split(","))


def _table(header: list[str], rows: list[list]) -> str:
  lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
  return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]) + "\n"


def _pick(runs: dict, **want) -> tuple[str, dict]:
  """The one run whose knobs include every `want` (None: the knob is absent)."""
  found = [(v, r) for v, r in runs.items()
           if all(knobs(v).get(k) == (None if w is None else str(w)) for k, w in want.items())]
  if len(found) != 1:
    raise ValueError(f"{len(found)} runs match {want}")
  return found[0]


def _resolve(data: dict, results: dict) -> dict:
  """A run's results, following "same_run_as" to the arch100_biod_cpu run it shares."""
  if "same_run_as" in results:
    return data["sweeps"]["arch100_biod_cpu"][results["same_run_as"]]
  return results


def _bpp(r: dict, key: str = "capacity") -> float:
  return r[key]["bits_per_param"]


def _sd(values: list[float]) -> float:
  return statistics.stdev(values)  # sample SD (ddof = 1)


def _seeds(data: dict) -> str:
  seeds = data["seeds"]
  return ", ".join(map(str, seeds)) if isinstance(seeds, list) else seeds


# ---------------------------------------------------------------------------------------------
# Part 3.1: extraction and probes


def _extraction_runs(load) -> list[tuple[str, dict]]:
  runs = load(EXTRACTION)["sweeps"]["extraction"]
  named = []
  for variant, r in runs.items():
    k = knobs(variant)
    name = ("mixed (single)" if "mixed" in k else "multi5 + permute + fullname" if "fullname" in k
            else "multi5 + permute" if "multi" in k else "single")
    named.append((name, r))
  return named


def extraction(load) -> str:
  """P_train / P_test QA per pretraining variant, against the published P_test."""
  rows = []
  for name, r in _extraction_runs(load):
    if "qa" not in r:
      rows.append([name, "–", "–", "–", r["note"]])
      continue
    rows.append([name, f"{r['qa']['P_train']:.3f}", f"**{r['qa']['P_test']:.3f}**",
                 f"{PUBLISHED_P_TEST[name]:.1%}", "seed " + _seeds(load(EXTRACTION))])
  return _table(["pretraining data", "P_train QA", "P_test QA", "published P_test (N = 100k, "
                 "GPT-2 124M)", "runs"], rows)


def extraction_by_attribute(load) -> str:
  rows = [[name] + [f"{r['qa'][f'P_test/{a}']:.3f}" for a in ATTRIBUTES]
          for name, r in _extraction_runs(load) if "qa" in r]
  return _table(["P_test QA, seed " + _seeds(load(EXTRACTION))] + list(ATTRIBUTES), rows)


def probes(load) -> str:
  """P-probe accuracy on P_test per position and attribute: every cell of the single-biography
  model; for multi5 + permute only the range over positions was kept."""
  runs = dict(_extraction_runs(load))
  probe, rng = runs["single"]["probe"], runs["multi5 + permute"]["probe_summary"]
  rows = [[f"single: {position}"] + [f"{v:.3f}" for v in accuracy]
          for position, accuracy in zip(probe["positions"], probe["accuracy"])]
  low, high = rng["range_over_positions"]["birth_date"]
  rows.append(["multi5 + permute: any of these positions", f"{low:.2f}–{high:.2f}"]
              + [f"≤ {rng['range_over_positions']['others_max']:.2f}"] * (len(ATTRIBUTES) - 1))
  majority = probe["majority_class"]
  rows.append(["majority class", f"{majority['birth_date']:.3f}"]
              + [f"{majority['others'][0]:.2f}–{majority['others'][1]:.2f}"] * (len(ATTRIBUTES) - 1))
  return _table(["position (seed 0)"] + probe["attributes"], rows)


# ---------------------------------------------------------------------------------------------
# Part 3.3: capacity


def capacity_biod(load) -> str:
  """bioD capacity at 100 and 1000 exposures, GPT2-l-1 at lr 1e-3, 3e-3 and 1e-2."""
  data = load(CAPACITY)
  rows = []
  for sweep in ("capacity100_biod", "capacity100_biod_lr", "capacity100_biod_fast",
                "capacity1000_biod", "capacity1000_biod_fast"):
    for variant, r in data["sweeps"][sweep].items():
      k = knobs(variant)
      if sweep == "capacity100_biod_lr" and k.get("lr") == "0.01":
        continue  # the same run as capacity100_biod_fast's GPT2-1-1
      c = r["capacity"]
      bits = (f"{c['bits']:,.0f} ({c['max_bits']:,.0f})" if "bits" in c else "–")
      split = (f"{c['name_bits']:,.0f} / {c['value_bits']:,.0f}" if "name_bits" in c else "–")
      rows.append([f"`{sweep}`", f"GPT2-{k['layers']}-{k['heads']}", f"{r['params']:,}",
                   f"{int(k['people']):,}", k["exposures"], k.get("lr", "0.001"),
                   k.get("wd", "0.1"), bits, split, f"**{_bpp(r):.2f}**",
                   f"{_bpp(r, 'capacity_int8'):.2f}" if "capacity_int8" in r else "–"])
  return _table(["sweep", "model", "parameters", "people N", "exposures", "lr", "wd",
                 "bits stored (max)", "name / value bits", "bits/param", "int8 bits/param"], rows)


def _cpu1000(load, sweep: str) -> list[tuple[dict, dict]]:
  return [(knobs(v), r) for v, r in load(CPU1000)["sweeps"][sweep].items()]


def capacity1000_recipe(load) -> str:
  """The 1000-exposure recipe at hidden 32, one change at a time."""
  rows = []
  for k, r in _cpu1000(load, "capacity1000_biod_cpu_recipe"):
    change = ", ".join(filter(None, (
        "GPT-2's init" if k.get("gpt2_init") == "True" else "",
        f"wd {k['wd']}" if "wd" in k else "", f"lr {k['lr']}" if k["lr"] != "0.01" else "",
        f"batch {k['batch']}" if "batch" in k else "",
        f"{k['exposures']} exposures" if k["exposures"] != "1000" else ""))) or "none"
    if "capacity" not in r:
      rows.append([change, r["note"], "", ""])
      continue
    rows.append([change, f"**{_bpp(r):.3f}**", f"{_bpp(r, 'capacity_int8'):.3f}",
                 f"{_bpp(r, 'capacity_int4'):.2f}"])
  return _table(["change (seed 0)", "bits/param", "int8", "int4"], rows)


def capacity1000_curve(load) -> str:
  """GPT2-1-1 at three widths, 1000 exposures: GPT-2's init and the width-scaled one."""
  rows = []
  for sweep, recipe in (("capacity1000_biod_cpu", "GPT-2 init, wd 0.1"),
                        ("capacity1000_biod_cpu_scaled", "width-scaled init, wd 0.3")):
    for k, r in _cpu1000(load, sweep):
      c, hidden = r["capacity"], int(k["head_dim"])
      block = r["params"] - VOCAB * (2 * hidden + 1)
      rows.append([hidden, f"{r['params']:,} ({block:,})", f"{int(k['people']):,}", recipe,
                   f"{c['bits']:,.0f} ({c['max_bits']:,.0f})", f"{c['bits'] / c['max_bits']:.0%}",
                   f"{c['name_bits']:,.0f} / {c['value_bits']:,.0f}", f"{c['p1']:.2f} / {c['p2']:.1f}",
                   f"**{_bpp(r):.2f}**", f"{c['bits'] / block:.2f}", f"{_bpp(r, 'capacity_int8'):.2f}",
                   f"{_bpp(r, 'capacity_int4'):.2f}"])
  return _table(["hidden", "parameters (outside embedding and head)", "N", "recipe",
                 "bits stored (max)", "share of max", "name / value bits",
                 f"p1 / p2 nats (uniform p2 {UNIFORM_P2})", "bits/param",
                 "bits per param outside embedding and head", "int8", "int4"], rows)


# ---------------------------------------------------------------------------------------------
# Part 3.3 at 100 exposures: architecture, mixture of experts, junk (CPU cuts, N = 500)


def _arch_runs(load, block: str, width: int) -> dict[int, dict]:
  runs = load(CUTS)["sweeps"]["arch100_biod_cpu"]
  return {s: _pick(runs, seed=s, head_dim=width, block=block)[1] for s in (0, 1)}


def arch(load) -> str:
  rows = []
  for width in WIDTHS:
    for block in BLOCK_NAMES:
      runs = _arch_runs(load, block, width)
      bpp = [_bpp(runs[s]) for s in (0, 1)]
      rows.append([block, width, f"{runs[0]['params']:,}",
                   " / ".join(f"{runs[s]['capacity']['bits']:,.0f}" for s in (0, 1)),
                   " / ".join(f"{b:.3f}" for b in bpp), f"**{statistics.mean(bpp):.3f}**",
                   f"{_sd(bpp):.3f}",
                   " / ".join(f"{_bpp(runs[s], 'capacity_int4'):.3f}" for s in (0, 1))])
  return _table(["block", "hidden", "parameters", "bits (seed 0 / 1)", "bits/param (seed 0 / 1)",
                 "mean", "sample SD", "int4 bits/param (seed 0 / 1)"], rows)


def _llama_vs_gpt2(load) -> list[tuple[int, float, int]]:
  """Per width: the ratio of mean bits/param (llama / gpt2) and how many seeds have llama ahead."""
  out = []
  for width in WIDTHS:
    llama, gpt2 = _arch_runs(load, "llama", width), _arch_runs(load, "gpt2", width)
    ratio = (statistics.mean(_bpp(llama[s]) for s in (0, 1))
             / statistics.mean(_bpp(gpt2[s]) for s in (0, 1)))
    out.append((width, ratio, sum(_bpp(llama[s]) > _bpp(gpt2[s]) for s in (0, 1))))
  return out


def arch_agreement(load) -> str:
  return _table(["hidden", "llama / gpt2 (mean bits/param)", "seeds with llama ahead"],
                [[w, f"{ratio:.2f}×", f"{ahead} of 2"] for w, ratio, ahead in _llama_vs_gpt2(load)])


def arch_n5000(load) -> str:
  runs = load(CUTS)["sweeps"]["arch100_biod_cpu_n5000"]
  rows = [[knobs(v)["block"], f"{r['params']:,}", f"{r['capacity']['bits']:,.0f}",
           f"**{_bpp(r):.3f}**", f"{r['capacity']['p2']:.1f}"] for v, r in runs.items()]
  return _table(["block (hidden 32, N = 5,000, 3,907 steps, seed 0)", "parameters", "bits",
                 "bits/param", f"p2 nats (uniform {UNIFORM_P2})"], rows)


def _moe_means(load) -> list[tuple[int, str, list[float], dict]]:
  data = load(CUTS)
  runs = data["sweeps"]["moe100_biod_cpu"]
  out = []
  for width in WIDTHS:
    for label, want in (("dense", dict(experts=None)), ("8 experts, top-1", dict(experts=8, top_k=1)),
                        ("8 experts, top-2", dict(experts=8, top_k=2))):
      seeds = [_resolve(data, _pick(runs, seed=s, head_dim=width, **want)[1]) for s in (0, 1)]
      seeds = [r for r in seeds if "capacity" in r]
      out.append((width, label, [_bpp(r) for r in seeds], seeds))
  return out


def moe(load) -> str:
  rows, dense = [], {}
  for width, label, bpp, seeds in _moe_means(load):
    mean = statistics.mean(bpp)
    dense.setdefault(width, mean)
    rows.append([label, width, f"{seeds[0]['params']:,}",
                 " / ".join(f"{r['capacity']['bits']:,.0f}" for r in seeds),
                 " / ".join(f"{b:.3f}" for b in bpp) + ("" if len(bpp) > 1 else " (seed 0 only)"),
                 f"**{mean:.3f}**", f"{_sd(bpp):.3f}" if len(bpp) > 1 else "–",
                 "–" if label == "dense" else f"{dense[width] / mean:.2f}×"])
  return _table(["model", "hidden", "total parameters", "bits (seed 0 / 1)",
                 "bits/param (seed 0 / 1)", "mean", "sample SD", "dense / this (means)"], rows)


JUNK = (("no junk", dict(junk=None)), ("7/8 junk, seen 4×", dict(junk=0.875, junk_exposures=4, domain=None)),
        ("7/8 junk, seen once", dict(junk=0.875, junk_exposures=None, domain=None)),
        ("+ domain token (junk seen 4×)", dict(junk=0.875, junk_exposures=4, domain=True)),
        ("+ domain token (junk seen once)", dict(junk=0.875, junk_exposures=None, domain=True)))


def _junk_bits(load) -> dict[int, list[float]]:
  data = load(CUTS)
  runs = data["sweeps"]["junk100_biod_cpu"]
  return {w: [_resolve(data, _pick(runs, head_dim=w, **want)[1])["capacity"]["bits"]
              for _, want in JUNK] for w in WIDTHS}


def junk(load) -> str:
  rows = []
  for width, bits in _junk_bits(load).items():
    rows.append([width, f"{bits[0]:,.0f}"] + [f"{b:,.0f} ({bits[0] / b:.1f}×)" for b in bits[1:]])
  return _table(["hidden (seed 0)"] + [name for name, _ in JUNK], rows)


# ---------------------------------------------------------------------------------------------
# The findings, first on the page


def _range(values, fmt: str = "{:.2f}") -> str:
  lo, hi = (fmt.format(v).replace("-", "−") for v in (min(values), max(values)))
  return lo if lo == hi else f"{lo} to {hi}" if "−" in lo + hi else f"{lo}–{hi}"


def findings(load) -> str:
  ext = dict(_extraction_runs(load))
  cap = load(CAPACITY)["sweeps"]
  fast = [_bpp(r) for r in cap["capacity100_biod_fast"].values()]
  slow = [_bpp(r) for r in cap["capacity100_biod"].values()]
  curve = [(k, r) for k, r in _cpu1000(load, "capacity1000_biod_cpu")]
  f32 = [_bpp(r) for _, r in curve]
  int8 = [_bpp(r, "capacity_int8") for _, r in curve]
  int4 = [_bpp(r, "capacity_int4") for _, r in curve]
  block = [r["capacity"]["bits"] / (r["params"] - VOCAB * (2 * int(k["head_dim"]) + 1))
           for k, r in curve]
  arch_rows = _llama_vs_gpt2(load)
  moe_rows = _moe_means(load)
  dense = {w: statistics.mean(b) for w, label, b, _ in moe_rows if label == "dense"}
  top = {k: [dense[w] / statistics.mean(b) for w, label, b, _ in moe_rows if label.endswith(k)]
         for k in ("top-1", "top-2")}
  junk_bits = _junk_bits(load)
  retrieval = _mean_p_test(_manipulation_runs(load), "retrieval", "no CoT")
  cut = [b[0] / x for b in junk_bits.values() for x in b[1:3]]
  domain_left = [b[0] / x for b in junk_bits.values() for x in b[3:]]
  single, multi, mixed = ext["single"], ext["multi5 + permute"], ext["mixed (single)"]
  probe = single["probe"]["accuracy"]
  rows = [
      ["3.1 extraction needs augmentation (P_test QA, single → multi5 + permute)",
       f"{PUBLISHED_P_TEST['single']:.1%} → {PUBLISHED_P_TEST['multi5 + permute']:.1%}",
       f"{single['qa']['P_test']:.1%} → {multi['qa']['P_test']:.1%} (N = 4,000, GPT2-4-4, 1 seed)",
       "partly", "`extraction`", "knowledge_extraction.png"],
      ["3.1 mixed training rescues single (P_test QA)", f"{PUBLISHED_P_TEST['mixed (single)']:.1%}",
       f"{mixed['qa']['P_test']:.1%} (1 seed)", "not", "`extraction`",
       "knowledge_extraction.png"],
      ["3.1 P-probe: the attribute sits on the name tokens only with augmentation",
       "single: not on the name; multi5 + permute: on the name",
       f"single: at most {max(probe[0]):.2f} at the name; multi5 + permute: majority-class level "
       "at every position (1 seed)", "not", "`extraction`", "–"],
      ["3.2 retrieval, classification, comparison, inverse search", "see STUDIES.md",
       f"P_test retrieval {retrieval:.2f} at N = 300 (GPT2-2-2, CPU); the rest untested there "
       "(knowledge_manipulation.md)", "holds" if retrieval >= 0.8 else "not",
       f"`{MANIPULATION_HEADLINE}` (manipulation.py)", "knowledge_manipulation.png"],
      ["3.3 ~1 bit/param at 100 exposures", "~1",
       f"{_range(fast)} at lr 1e-2; {_range(slow)} at lr 1e-3 (bioD, GPT2-1/2/4-1, 1 seed)",
       "holds", "`capacity100_biod_fast`", "knowledge_capacity.png"],
      ["3.3 ≥ 2 bits/param at 1000 exposures", "≥ 2",
       f"{_range(f32)} (three widths, training-limited; {_range(block)} per parameter outside "
       "embedding and head; 1 seed)", "not", "`capacity1000_biod_cpu`",
       "knowledge_capacity1000_biod_cpu.png"],
      ["3.3 int8 keeps the capacity (1000 exposures)", "~2 → ~2",
       f"{_range(f32)} → {_range(int8)} (1 seed)", "holds", "`capacity1000_biod_cpu`",
       "knowledge_capacity1000_biod_cpu.png"],
      ["3.3 int4 keeps ~0.7 bits/param (1000 exposures)", "~0.7", _range(int4) + " (1 seed)", "not",
       "`capacity1000_biod_cpu`", "knowledge_capacity1000_biod_cpu.png"],
      ["3.3 GPT-2 ≥ LLaMA at 100 exposures", "GPT-2 up to 1.3× ahead",
       "llama / gpt2 = " + ", ".join(f"{r:.2f}×" for _, r, _ in arch_rows)
       + " at hidden 32, 48, 64 (means of 2 seeds; both seeds agree at hidden "
       + ", ".join(str(w) for w, _, a in arch_rows if a in (0, 2)) + " only)",
       "not", "`arch100_biod_cpu`", "knowledge_arch100_biod_cpu.png"],
      ["3.3 MoE only ~1.3× lower per parameter", "~1.3× (32 experts)",
       f"dense / MoE bits per parameter: top-1 {_range(top['top-1'])}×, top-2 "
       f"{_range(top['top-2'])}× (8 experts; 2 seeds at hidden 32, 1 at 48 and 64)", "partly", "`moe100_biod_cpu`",
       "knowledge_moe100_biod_cpu.png"],
      ["3.3 7/8 junk cuts capacity ~20× (100 exposures)", "~20×",
       f"{_range(cut, '{:.1f}')}× (grows with width; 1 seed)", "partly", "`junk100_biod_cpu`", "–"],
      ["3.3 a domain token restores most of it", "most",
       f"still {_range(domain_left, '{:.1f}')}× below no junk (1 seed)", "partly",
       "`junk100_biod_cpu`", "–"],
  ]
  spread = max(max(b) / min(b) for w in WIDTHS for block in BLOCK_NAMES
               for b in [[r["capacity"]["bits"] for r in _arch_runs(load, block, w).values()]])
  reasons = [
      'far fewer people and parameters (untested)',
      'untested: scale, one QA share, 4 QA epochs',
      "untested: 2,000 probe-training people for 100-300 classes; a code a linear probe misses",
      "–" if retrieval >= 0.8 else "P_test retrieval fails at every CPU scale tried",
      'only at lr 1e-2: lr 1e-3 leaves these small models training-limited',
      "training-limited: under half the data's bits stored, more exposures still add",
      '–',
      'how much int4 destroys depends on weight decay (recipe table); why is untested',
      f"training-limited runs whose two seeds differ by up to {spread:.1f}×",
      'training-limited runs, 8 experts not 32, one seed at hidden 48 and 64',
      'training-limited runs at small widths; the cost grows with width',
      'untested',
  ]
  rows = [row + [reason] for row, reason in zip(rows, reasons)]
  return _table(["finding (Part)", "published", "ours", "verdict", "sweep", "plot",
                 "why it differs"], rows)


# -- Part 3.2: knowledge manipulation (docs/results/knowledge_manipulation.md) --------------------

MANIPULATION = "knowledge_manipulation.json"
MANIPULATION_SCALE = "knowledge_manipulation_scale.json"
MANIPULATION_HEADLINE = "cpu_e1000"  # the sweep the findings, subtasks and plot read
MANIPULATION_COLUMNS = ("no CoT", "CoT in training", "CoT in training and inference")
# The published pattern per kind, in MANIPULATION_COLUMNS' order, and the chance level on P_test.
MANIPULATION_PUBLISHED = {"retrieval": ("high", "–", "–"),
                          "classification": ("~chance", "~chance", "high"),
                          "comparison": ("~chance", "~chance", "high"),
                          "inverse": ("~0", "~0", "~0")}
CHANCE = {"retrieval": "~0", "classification": "0.5", "comparison": "0.5", "inverse": "~0"}


def _manipulation_runs(load, sweep: str = MANIPULATION_HEADLINE) -> list[dict]:
  return list(load(MANIPULATION)["sweeps"][sweep].values())


def _manipulation_cell(runs: list[dict], key: str, column: str) -> str:
  """Mean over runs (each run's figure after it) of `key` in one column, "–" where no run has it."""
  from experiments.knowledge.manipulation import columns
  cells = [r[stage].get(f"{key}/{form}") for r in runs
           for stage, form in [columns(r).get(column, (None, None))] if stage]
  values = [v for v in cells if v is not None]
  if not values:
    return "–"
  each = " / ".join(f"{v:.3f}" for v in values)
  return f"**{statistics.mean(values):.3f}**" + (f" ({each})" if len(values) > 1 else "")


def manipulation_kinds(load, sweep: str = MANIPULATION_HEADLINE) -> str:
  """P_test (and P_train) exact match per kind and column, against the published pattern."""
  runs = _manipulation_runs(load, sweep)
  rows = []
  for kind, published in MANIPULATION_PUBLISHED.items():
    for split in ("P_test", "P_train"):
      rows.append([kind, split, " / ".join(published) if split == "P_test" else "–",
                   CHANCE[kind] if split == "P_test" else "–",
                   *(_manipulation_cell(runs, f"{split}/{kind}", c) for c in MANIPULATION_COLUMNS)])
  return _table(["kind", "people", "published (no CoT / CoT train / CoT train + test)", "chance",
                 *MANIPULATION_COLUMNS], rows)


def manipulation_kinds_e300(load) -> str:
  """The same at 300 exposures (cpu)."""
  return manipulation_kinds(load, "cpu")


def manipulation_kinds_lr3e3(load) -> str:
  """The same at pretraining lr 3e-3 (cpu_lr3e-3), where P_test retrieval is at chance."""
  return manipulation_kinds(load, "cpu_lr3e-3")


def manipulation_subtasks(load) -> str:
  """P_test exact match per subtask; the chain of thought's own accuracy where it has one."""
  from tasks.manipulation import SUBTASKS
  runs = _manipulation_runs(load)
  rows = [[kind, subtask, *(_manipulation_cell(runs, f"P_test/{kind}/{subtask}", c)
                            for c in MANIPULATION_COLUMNS)]
          for kind, subtasks in SUBTASKS.items() for subtask in subtasks]
  rows = [row for row in rows if set(row[2:]) != {"–"}]  # subtasks the runs never asked
  rows += [[kind, f"its chain of thought stated right ({split})", "–", "–",
            _stated(runs, split, kind)]
           for split in ("P_test", "P_train") for kind in ("retrieval", "classification",
                                                            "comparison")]
  return _table(["kind", "subtask", *MANIPULATION_COLUMNS], rows)


def _stated(runs: list[dict], split: str, kind: str) -> str:
  """Mean over runs of the share of chains of thought stated right (CoT prompt)."""
  values = [r["finetune_mixed"][f"{split}/{kind}/cot_stated"] for r in runs
            if "finetune_mixed" in r]
  return f"**{statistics.mean(values):.3f}**" if values else "–"


def manipulation_scale(load) -> str:
  """The search for a CPU scale where P_test retrieval is high: each try, one change at a time."""
  tries = load(MANIPULATION_SCALE)["tries"]
  return _table(["try", "change (from the try before)", "measure", "P_train", "P_test",
                 "minutes (one shared core)"],
                [[i + 1, t["change"], t["measure"], f"{t['P_train']:.3f}", f"**{t['P_test']:.3f}**",
                  t["minutes"]] for i, t in enumerate(tries)])


def manipulation_scale_commands(load) -> str:
  """Each try's command, as a code block."""
  tries = load(MANIPULATION_SCALE)["tries"]
  return "\n".join(["```bash", *(f"# try {i + 1}\n{t['command']}" for i, t in enumerate(tries)),
                    "```"]) + "\n"


def _mean_p_test(runs: list[dict], kind: str, column: str) -> float | None:
  from experiments.knowledge.manipulation import columns
  values = [r[columns(r)[column][0]][f"P_test/{kind}/{columns(r)[column][1]}"] for r in runs
            if column in columns(r)]
  return statistics.mean(values) if values else None


def manipulation_findings(load) -> str:
  """The published claims against ours, with a verdict each, by these rules: retrieval holds at
  P_test >= 0.8; "near chance without CoT" holds within 0.1 of 0.5 in both columns without CoT at
  inference; "CoT in training and inference makes it work" holds at >= 0.8, partly when it beats the
  columns without CoT at inference by >= 0.1; inverse holds at <= 0.05 in every column."""
  runs = _manipulation_runs(load)
  cell = lambda kind, column: _mean_p_test(runs, kind, column)
  retrieval = cell("retrieval", "no CoT")
  no_fact = retrieval < 0.8
  sweeps = f"`{MANIPULATION_HEADLINE}`"
  seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
  why_small = "P_test retrieval fails at this scale (first row): no stored fact to use"
  trivial = "holds trivially: no P_test fact is retrievable here (first row)"
  rows = [["3.2 retrieval works on P_test", "high", f"{retrieval:.3f} ({seeds})",
           "holds" if not no_fact else "not", sweeps, "knowledge_manipulation.png",
           "–" if not no_fact else "training-limited (pretraining lr 1e-2 over 3e-3 lifted it, scale "
           "table); more steps, people or width untested"]]
  for kind in ("classification", "comparison"):
    direct = [cell(kind, c) for c in MANIPULATION_COLUMNS[:2]]
    cot = cell(kind, MANIPULATION_COLUMNS[2])
    near = all(v is not None and abs(v - 0.5) <= 0.1 for v in direct)
    rows.append([f"3.2 {kind} near chance without CoT at inference (even with CoT in training)",
                 "~0.5", " / ".join(f"{v:.3f}" for v in direct) + f" ({seeds})",
                 "holds" if near else "not", sweeps, "knowledge_manipulation.png",
                 trivial if near and no_fact else "–" if near else "untested"])
    best = max(direct)
    verdict = "holds" if cot >= 0.8 else "partly" if cot >= best + 0.1 else "not"
    rows.append([f"3.2 {kind} works with CoT in training and inference", "high",
                 f"{cot:.3f} ({seeds})", verdict, sweeps, "knowledge_manipulation.png",
                 "–" if verdict == "holds" else why_small if no_fact else "untested"])
  inverse = [cell("inverse", c) for c in MANIPULATION_COLUMNS if cell("inverse", c) is not None]
  rows.append(["3.2 inverse search near 0 whatever the prompt", "~0",
               " / ".join(f"{v:.3f}" for v in inverse) + f" ({seeds})",
               "holds" if max(inverse) <= 0.05 else "not", sweeps, "knowledge_manipulation.png",
               "untested" if max(inverse) > 0.05 else trivial if no_fact else "–"])
  return _table(["finding (Part)", "published", "ours (P_test)", "verdict", "sweep", "plot",
                 "why it differs"], rows)
