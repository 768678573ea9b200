"""Positional arithmetic (Shen et al. 2023): a decoder, loss on the answer, exact-match grid.

    python -m experiments.arithmetic --config=experiments/configs/arithmetic.py --workdir=runs/add
    python -m experiments.arithmetic --config=experiments/configs/arithmetic.py:smoke --workdir=/tmp/a
    # multiplication, padded operands and reversed product, up to 5 digits:
    python -m experiments.arithmetic \
        --config=experiments/configs/arithmetic.py:op=mul,digits=5,format=pad+reverse --workdir=runs/mul
    # addition length generalisation: train <= 10 digits, grid up to 15, Abacus positions:
    python -m experiments.arithmetic \
        --config=experiments/configs/arithmetic.py:pos=abacus,format=reverse_operands+reverse \
        --workdir=runs/abacus
    # the runs of docs/results/arithmetic.md (addition 5 methods x 3 seeds, multiplication 4 formats):
    XLA_PYTHON_CLIENT_PREALLOCATE=false python -m launch.sweep \
        --config=experiments/configs/arithmetic.py:figures --workdir=runs/arithmetic --workers=19

Variant string: the preset `smoke` (a tiny model; knobs given override its sizes), and knobs
key=value: op, digits (training maximum), eval_digits (grid size), format (`+`-separated, e.g.
pad+reverse), pos (model.pos_encoding), seed, layers, d_model, heads, steps, batch, lr. Any field
can also be set with --config.FIELD=VALUE.
"""
import ml_collections

from experiments.configs.common import parse_variant
from experiments.runtime.train import train_fields
from models.transformer import model_config

STUDY = "arithmetic"  # the study this file (or a copy of it elsewhere) configures
PRESETS = ("smoke",)
KNOBS = dict(op="add", digits=10, eval_digits=15, format="plain", pos="learned", seed=0, layers=6,
             d_model=128, heads=4, steps=5000, batch=128, lr=1e-3)
SMOKE = dict(digits=2, eval_digits=3, layers=2, d_model=32, heads=2, steps=30, batch=32)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  presets, knobs = parse_variant(arg, PRESETS, KNOBS, {"smoke": SMOKE})  # knobs given win
  config = ml_collections.ConfigDict(train_fields(
      seed=knobs["seed"], batch_size=knobs["batch"], num_steps=knobs["steps"],
      learning_rate=knobs["lr"], warmup_steps=min(300, knobs["steps"] // 10), weight_decay=0.1,
      log_every=100, eval_every=1000, checkpoint_every=1000, eval_size=1024))
  config.task = ml_collections.ConfigDict(dict(
      op=knobs["op"], min_digits=1, max_digits=knobs["digits"],
      format=str(knobs["format"]).replace("+", ","), pad_width=0, space_prob=0.3))
  config.model = model_config(
      d_model=knobs["d_model"], num_heads=knobs["heads"], num_layers=knobs["layers"],
      d_ff=(2 if "smoke" in presets else 4) * knobs["d_model"], pos_encoding=knobs["pos"],
      causal=True)
  config.eval = ml_collections.ConfigDict(dict(max_digits=knobs["eval_digits"],
                                               samples_per_cell=100))
  # max_len 0: the study sizes position tables to the longest grid sequence (Abacus: its offsets).
  config.positions = ml_collections.ConfigDict(dict(max_len=0, abacus_max_offset=100))
  if "smoke" in presets:
    config.update(dict(warmup_steps=5, log_every=10, eval_every=15, checkpoint_every=15,
                       eval_size=64))
    config.eval.samples_per_cell = 8
  return config


# The runs of docs/results/arithmetic.md. They used GPT-2's init (std 0.02 for kernels and
# embeddings), which the defaults no longer build, so every point carries it.
FIGURES = {"model.init_std": 0.02, "model.embed_std": 0.02, "eval_every": 1000,
           "checkpoint_every": 100000}
ADD = "digits=10,eval_digits=15,layers=4,d_model=256,heads=8,steps=4000,batch=128,lr=5e-4"
MUL = "op=mul,digits=4,eval_digits=4,layers=6,d_model=256,heads=8,steps=4000,batch=128,lr=5e-4"
# method -> (format, positions) of the addition runs; every method reads reversed operands and answer.
METHODS = {"learned": ("reverse_operands+reverse", "learned"),
           "random_space": ("reverse_operands+reverse+random_space", "learned"),
           "random_embedding": ("reverse_operands+reverse", "random_embedding"),
           "randomized": ("reverse_operands+reverse", "randomized"),
           "abacus": ("reverse_operands+reverse", "abacus")}
FORMATS = ("plain", "reverse", "pad", "pad+reverse")


def get_sweep(arg: str | None = None) -> list[dict]:
  """Sweeps of this study; a point is {"config": variant, "dotted.field": value, ...}.

      add      addition length generalisation: 5 position methods x seeds 0, 1, 2 (15 runs)
      mul      multiplication formats, 1-4 digits, seed 0 (4 runs)
      figures  both: every run of docs/results/arithmetic.md (19 runs)
      smoke    one tiny run per position method
  """
  add = [{"config": f"{ADD},seed={seed},format={fmt},pos={pos}", **FIGURES}
         for seed in (0, 1, 2) for fmt, pos in METHODS.values()]
  mul = [{"config": f"{MUL},seed=0,format={fmt}", **FIGURES} for fmt in FORMATS]
  sweeps = {"add": add, "mul": mul, "figures": add + mul,
            "smoke": [{"config": f"smoke,format=reverse_operands+reverse,pos={pos}"}
                      for pos in ("learned", "random_embedding", "randomized", "abacus")]}
  if arg not in sweeps:
    raise ValueError(f"sweep: unknown {arg!r}; allowed: {', '.join(sweeps)}")
  return sweeps[arg]
