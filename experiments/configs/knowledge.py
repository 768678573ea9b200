"""Knowledge ("Physics of LMs" 3.1 / 3.3): a GPT2-ℓ-h decoder (ℓ layers, h heads, hidden 64h, rotary,
no dropout) pretrained on bioS, then QA fine-tuned on P_train (or mixed training).

    python -m experiments.knowledge --config=experiments/configs/knowledge.py --workdir=runs/knowledge
    python -m experiments.knowledge --config=experiments/configs/knowledge.py:smoke --workdir=/tmp/k
    python -m experiments.knowledge \
        --config=experiments/configs/knowledge.py:people=2000,multi=5,permute=True --workdir=runs/m5p
    python -m experiments.knowledge --config=experiments/configs/knowledge.py:mixed --workdir=runs/mix
    python -m experiments.knowledge \
        --config=experiments/configs/knowledge.py:data=biod,people=5000,K=4,C=2,D=16 --workdir=runs/d

Variant string: presets (smoke, mixed) and knobs key=value: people, multi, permute, fullname,
layers, heads, head_dim (hidden = head_dim·heads; 64 for GPT2-ℓ-h), gpt2_init (True: GPT-2's init,
std 0.02 for every kernel and embedding; False: the width-scaled default), exposures (times each
person's biography is seen in pretraining), qa_epochs, batch, lr, wd (pretraining weight decay),
bios_per_window, seed, qa (False: pretraining and capacity only), probe;
block (gpt2, llama: gated MLP + RMSNorm + no biases, llama_nogate: the same without the gate);
experts (0: dense; >= 2: a mixture of experts), top_k (experts per token), capacity (capacity
factor); int4_group (int4 quantisation's group size along the input axis, 0: one scale per channel);
data=biod with K, C, D, L, T for bioD(N=people, K, C, D, L, T) (pretraining and capacity only), and
its junk mixture: junk (share of each batch's rows holding junk biographies), junk_exposures (times
each junk person is seen; 0: a new person every time), domain (a domain token before every useful
biography). Pretraining steps follow from exposures (of the useful people).
"""
import math

import ml_collections

from experiments.configs.common import parse_variant
from experiments.knowledge.quantize import INT4_GROUP_SIZE
from experiments.runtime.train import train_fields
from models.transformer import BLOCKS, model_config

STUDY = "knowledge"  # the study this file (or a copy of it elsewhere) configures
PRESETS = ("smoke", "mixed")
KNOBS = dict(people=2000, multi=1, permute=False, fullname=False, layers=4, heads=2, head_dim=64,
             exposures=100, qa_epochs=4, batch=64, lr=1e-3, wd=0.1, bios_per_window=2, seed=0,
             qa=True, probe=True, data="bios", K=4, C=2, D=16, L=2, T=32, block="gpt2",
             experts=0, top_k=1, capacity=1.25, int4_group=INT4_GROUP_SIZE, junk=0.0,
             junk_exposures=0, domain=False, gpt2_init=False)
SMOKE = dict(people=40, multi=2, permute=True, layers=2, heads=2, exposures=4, qa_epochs=2,
             batch=16)
MIXED_QA_SHARE = 0.25
GPT2_INIT_STD = 0.02


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  presets, k = parse_variant(arg, PRESETS, KNOBS, {"smoke": SMOKE})  # knobs given override smoke's
  mixed = "mixed" in presets
  if k["data"] not in ("bios", "biod") or mixed and k["data"] == "biod":
    raise ValueError(f"config variant: data={k['data']!r}; allowed: bios, biod (not with mixed)")
  if k["block"] not in BLOCKS:
    raise ValueError(f"config variant: block={k['block']!r}; allowed: {', '.join(BLOCKS)}")
  if (k["junk"] or k["domain"]) and k["data"] != "biod":
    raise ValueError("config variant: junk and domain need data=biod")
  other_rows = round(k["batch"] * (MIXED_QA_SHARE if mixed else k["junk"]))  # QA or junk rows
  windows_per_round = math.ceil(k["people"] / k["bios_per_window"])
  steps = math.ceil(k["exposures"] * windows_per_round / max(1, k["batch"] - other_rows))
  config = ml_collections.ConfigDict(train_fields(
      seed=k["seed"], batch_size=k["batch"], num_steps=steps, learning_rate=k["lr"],
      warmup_steps=min(1000, steps // 10), final_lr_ratio=0.1, weight_decay=k["wd"], b2=0.98,
      log_every=max(1, steps // 20), eval_every=max(1, steps // 4), checkpoint_every=steps,
      eval_size=256))
  if k["data"] == "biod":
    junk_bios = steps * other_rows * k["bios_per_window"]
    config.task = ml_collections.ConfigDict(dict(
        people=k["people"], attributes=k["K"], chunks=k["C"], pool=k["D"], length=k["L"],
        values=k["T"], bios_per_window=k["bios_per_window"], junk_share=float(k["junk"]),
        junk_people=math.ceil(junk_bios / k["junk_exposures"]) if k["junk_exposures"] else 0,
        domain_token=k["domain"]))
  else:
    config.task = ml_collections.ConfigDict(dict(
        people=k["people"], multi=k["multi"], permute=k["permute"], fullname=k["fullname"],
        bios_per_window=k["bios_per_window"], mixed_qa_share=MIXED_QA_SHARE))
  config.model = model_config(
      d_model=k["head_dim"] * k["heads"], num_heads=k["heads"], num_layers=k["layers"],
      d_ff=4 * k["head_dim"] * k["heads"],
      pos_encoding="rotary", experts=k["experts"], experts_per_token=k["top_k"],
      capacity_factor=float(k["capacity"]), **BLOCKS[k["block"]],
      **(dict(init_std=GPT2_INIT_STD, embed_std=GPT2_INIT_STD) if k["gpt2_init"] else {}))
  qa_steps = math.ceil(k["qa_epochs"] * (k["people"] // 2) * 6 / k["batch"])
  config.knowledge = ml_collections.ConfigDict(dict(
      data=k["data"], mixed=mixed, quantize=True, int4_group_size=k["int4_group"], qa=k["qa"],
      probe_people=min(k["people"], 2000) * k["probe"],
      qa_eval_people=min(k["people"] // 2, 1000),
      finetune=dict(num_steps=qa_steps, learning_rate=k["lr"] / 3, warmup_steps=qa_steps // 10,
                    weight_decay=0.01, log_every=max(1, qa_steps // 10),
                    eval_every=max(1, qa_steps // 2), checkpoint_every=qa_steps)))
  if "smoke" in presets:
    config.model.update(dict(d_model=32, d_ff=64))
    config.eval_size = 32
    config.knowledge.finetune.update(dict(eval_size=32))
  return config


BIOD_CAPACITY = "data=biod,K=8,C=4,D=64,L=1,T=64,qa=False,probe=False"
BIOD_SIZES = ((1, 1), (2, 1), (4, 1))  # (layers, heads)
CPU_CUT = f"{BIOD_CAPACITY},people=500,exposures=100,layers=1,heads=1,lr=0.01"  # minutes a run
CPU_WIDTHS = (32, 48, 64)  # GPT2-1-1 at hidden 32, 48, 64: 28k, 51k, 80k parameters
CPU_PEOPLE_1000 = (600, 1000, 1500)  # per width: data over twice what 2 bits/param would store
JUNK = ("", ",junk=0.875,junk_exposures=4", ",junk=0.875", ",junk=0.875,junk_exposures=4,domain=True",
        ",junk=0.875,domain=True")
SWEEPS = {
    # Part 3.1: extraction needs knowledge augmentation (P_test QA, published ~10% vs ~97%).
    # The results page's runs of this and the five bioD sweeps below used GPT-2's init (std 0.02),
    # the default when they ran: gpt2_init=True builds that model under today's defaults.
    "extraction": [f"people=4000,exposures=200,layers=4,heads=4,batch=128{extra},gpt2_init=True"
                   for extra in ("", ",multi=5,permute=True", ",multi=5,permute=True,fullname=True")]
    + ["mixed,people=4000,exposures=200,layers=4,heads=4,batch=128,gpt2_init=True"],
    # Part 3.3: bits stored vs parameters at 100 and 1000 exposures (published ~1 and ~2 bits/param).
    "capacity100": [f"people=20000,exposures=100,layers={l},heads={h},batch=128,qa=False,probe=False"
                    for l, h in ((1, 1), (2, 1), (4, 1), (2, 2))],
    "capacity1000": [f"people=20000,exposures=1000,layers={l},heads={h},batch=128,qa=False,"
                     "probe=False" for l, h in ((1, 1), (2, 1), (4, 1))],
    # The same on bioD(N, K=8, C=4, D=64, L=1, T=64): 192 value bits in 55 tokens a person (bioS
    # has ~47 in ~90), so a model reaches its capacity in a fraction of the tokens: CPU-sized.
    "capacity100_biod": [f"{BIOD_CAPACITY},people=5000,exposures=100,layers={l},heads={h},"
                         "gpt2_init=True" for l, h in ((1, 1), (2, 1), (4, 1))],
    "capacity1000_biod": [f"{BIOD_CAPACITY},people=1500,exposures=1000,layers=1,heads=1,"
                          "gpt2_init=True"],
    "capacity1000_biod_fast": [f"{BIOD_CAPACITY},people=1500,exposures=1000,layers=1,heads=1,"
                               "lr=0.01,gpt2_init=True"],
    # Is 100 exposures training-limited? GPT2-1-1 of capacity100_biod with more lr, less decay.
    "capacity100_biod_lr": [f"{BIOD_CAPACITY},people=5000,exposures=100,layers=1,heads=1,{opt},"
                            "gpt2_init=True" for opt in ("lr=0.003", "lr=0.01", "lr=0.003,wd=0.01")],
    "capacity100_biod_fast": [f"{BIOD_CAPACITY},people=5000,exposures=100,layers={l},heads={h},"
                              "lr=0.01,gpt2_init=True" for l, h in ((1, 1), (2, 1), (4, 1))],
    # The rest of Part 3.3, bioD at lr 1e-2, three sizes a curve. 1000 exposures: people
    # sized so the data holds over twice what 2 bits/param would store. Every run reports float32,
    # int8 and int4 (per group of 32) capacity: the quantisation curve is these runs.
    "capacity1000_biod_sizes": [f"{BIOD_CAPACITY},people={n},exposures=1000,layers={l},heads={h},"
                                "lr=0.01" for l, h, n in ((1, 1, 1500), (2, 1, 3000), (4, 1, 5000))],
    # Its CPU cut: GPT2-1-1 at the three CPU widths, people sized as above, with GPT-2's init, which
    # stored more at hidden 32 (1.62 bits/param at wd 0.1 and 0.3) than the width-scaled one at
    # its best weight decay (wd 0.01, 0.1, 0.3, 1.0: 1.40, 1.52, 1.58, 1.51): the _scaled runs.
    "capacity1000_biod_cpu": [f"{BIOD_CAPACITY},people={n},exposures=1000,layers=1,heads=1,"
                              f"head_dim={w},lr=0.01,gpt2_init=True"
                              for w, n in zip(CPU_WIDTHS, CPU_PEOPLE_1000)],
    "capacity1000_biod_cpu_scaled": [f"{BIOD_CAPACITY},people={n},exposures=1000,layers=1,heads=1,"
                                     f"head_dim={w},lr=0.01,wd=0.3"
                                     for w, n in zip(CPU_WIDTHS, CPU_PEOPLE_1000)],
    # The recipe of that cut, tuned at hidden 32 (N = 600), one change at a time against lr 1e-2,
    # wd 0.1, batch 64 and the width-scaled init; two of its runs are the cuts' hidden-32 runs.
    "capacity1000_biod_cpu_recipe": [
        f"{BIOD_CAPACITY},people=600,exposures={e},layers=1,heads=1,head_dim=32,lr={lr}{extra}"
        for e, lr, extra in ((1000, 0.01, ""), (1000, 0.01, ",wd=0.01"), (1000, 0.01, ",wd=0.3"),
                             (1000, 0.01, ",wd=1.0"), (1000, 0.03, ""), (1000, 0.01, ",batch=32"),
                             (1000, 0.01, ",gpt2_init=True"), (1000, 0.01, ",wd=0.3,gpt2_init=True"),
                             (2000, 0.01, ""))],
    # Architecture at 100 exposures: GPT-2 vs LLaMA (gated MLP, RMSNorm, no biases) vs LLaMA
    # without its gate (published: GPT-2 stores up to 1.3x more; the gate is what costs).
    "arch100_biod": [f"{BIOD_CAPACITY},people=5000,exposures=100,layers={l},heads={h},lr=0.01,"
                     f"block={b}" for l, h in BIOD_SIZES for b in BLOCKS],
    # Its CPU cut: three one-layer widths at N = 500, two seeds (one seed's points did not line up).
    "arch100_biod_cpu": [f"{CPU_CUT},seed={s},head_dim={w},block={b}"
                         for s in (0, 1) for w in CPU_WIDTHS for b in BLOCKS],
    # The same blocks with 10x the people (and steps) at hidden 32, seed 0.
    "arch100_biod_cpu_n5000": [f"{BIOD_CAPACITY},people=5000,exposures=100,layers=1,heads=1,"
                               f"head_dim=32,lr=0.01,block={b}" for b in BLOCKS],
    # CPU cuts of the two below: the same widths and people as arch100_biod_cpu.
    "moe100_biod_cpu": [f"{CPU_CUT},seed={s},head_dim={w}{m}" for s in (0, 1) for w in CPU_WIDTHS
                        for m in ("", ",experts=8,top_k=1", ",experts=8,top_k=2")],
    "junk100_biod_cpu": [f"{CPU_CUT},head_dim={w}{j}" for w in CPU_WIDTHS for j in JUNK],
    # Mixture of experts vs dense at 100 exposures, capacity per total parameter (published: ~1.3x
    # lower for the mixture): 8 experts, top-1 and top-2.
    "moe100_biod": [f"{BIOD_CAPACITY},people=5000,exposures=100,layers={l},heads={h},lr=0.01{m}"
                    for l, h in BIOD_SIZES for m in ("", ",experts=8,top_k=1", ",experts=8,top_k=2")],
    # Junk data: 7/8 of the rows junk, the useful people seen 100 times; junk people seen 4 times
    # or never twice, and the junk-free run; then a domain token on useful biographies (published:
    # junk cuts capacity ~20x, the domain token restores most of it).
    "junk100_biod": [f"{BIOD_CAPACITY},people=5000,exposures=100,layers={l},heads={h},lr=0.01{j}"
                     for l, h in BIOD_SIZES for j in JUNK],
}


SWEEPS["quantize1000_biod"] = SWEEPS["capacity1000_biod_sizes"]  # the same runs (and run names)


def get_sweep(arg: str) -> list[str]:
  """Variant strings of a named sweep (each runs as `knowledge.py:<variant>`, by launch.sweep or
  launch.slurm; experiments.knowledge.sweep_report gathers them)."""
  if arg not in SWEEPS:
    raise ValueError(f"sweep: unknown {arg!r}; allowed: {', '.join(SWEEPS)}")
  return SWEEPS[arg]
