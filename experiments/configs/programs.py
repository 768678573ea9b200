"""Learning to execute small C programs (tasks/programs.py): a decoder reads a program's tokens and
writes what it prints; exact-match accuracy on held-out programs per (statements, depth) bucket.

    python -m experiments.programs --config=experiments/configs/programs.py --workdir=runs/programs
    python -m experiments.programs --config=experiments/configs/programs.py:smoke --workdir=/tmp/p
    python -m experiments.programs --config=experiments/configs/programs.py:attention=conv_qkv,kernel=5 \
        --workdir=runs/programs_conv5
    python -m launch.sweep --config=experiments/configs/programs.py:compare --workdir=runs/compare

The default study (~8 minutes on 2 CPU cores): programs of 1-4 statements over 3 variables, values
mod 10, loops of 2-3 iterations, nesting up to 2; a 4-layer d_model 64 decoder with learned
positions, loss on the answer tokens only. Attention `lego` swaps two heads per layer for fixed
patterns and gets the Q/K parameters it saves back in its MLP (`d_ff`), so every variant has the
same parameter budget (conv-QKV adds its few kernel taps).

Variant string: preset `smoke` (a tiny model; knobs given override its sizes), and knobs key=value:
attention, kernel (model.conv_kernel), statements, depth, vars, loop_bound, modulus, seed, layers,
d_model, heads, steps, batch, lr. Any field can also be set with --config.FIELD=VALUE.
"""
import ml_collections

from experiments.configs.common import parse_variant
from experiments.runtime.train import train_fields
from models.transformer import model_config

STUDY = "programs"  # the study this file (or a copy of it elsewhere) configures
PRESETS = ("smoke",)
KNOBS = dict(attention="vanilla", kernel=3, statements=4, depth=2, vars=3, loop_bound=3,
             modulus=10, seed=0, layers=4, d_model=64, heads=4, steps=3000, batch=64, lr=1e-3)
ATTENTIONS = ("vanilla", "conv_qkv", "lego")
# Four heads of 8: LEGO attention keeps two learned heads beside its two fixed ones.
SMOKE = dict(statements=2, depth=1, layers=2, d_model=32, heads=4, steps=30, batch=32)
COMPARE = "statements=3,depth=1,d_model=32,layers=3,steps=3000,lr=3e-3"


def lego_d_ff(d_model: int, heads: int, d_ff: int, fixed_heads: int = 2) -> int:
  """The MLP width that gives LEGO attention (no Q/K for `fixed_heads`) vanilla's parameters."""
  saved = 2 * d_model * (d_model // heads) * fixed_heads  # Q and K kernels of the fixed heads
  return d_ff + saved // (2 * d_model + 1)  # an MLP unit: d_model in, d_model out, one bias


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  presets, knobs = parse_variant(arg, PRESETS, KNOBS, {"smoke": SMOKE})  # knobs given win
  config = ml_collections.ConfigDict(train_fields(
      seed=knobs["seed"], batch_size=knobs["batch"], num_steps=knobs["steps"],
      learning_rate=knobs["lr"], warmup_steps=min(200, knobs["steps"] // 10), weight_decay=0.1,
      log_every=100, eval_every=500, checkpoint_every=500, eval_size=2048))
  config.task = ml_collections.ConfigDict(dict(
      num_vars=knobs["vars"], min_statements=1, max_statements=knobs["statements"],
      max_depth=knobs["depth"], loop_bound=knobs["loop_bound"], modulus=knobs["modulus"],
      ops="+-*%", constructs="if,else,for", held_out_buckets=8))
  d, h = knobs["d_model"], knobs["heads"]
  d_ff = (2 if "smoke" in presets else 4) * d
  if knobs["attention"] == "lego":
    d_ff = lego_d_ff(d, h, d_ff)
  config.model = model_config(
      d_model=d, num_heads=h, num_layers=knobs["layers"], d_ff=d_ff, pos_encoding="learned",
      causal=True, attention=knobs["attention"], conv_kernel=knobs["kernel"], lego_heads=(1, 1))
  if "smoke" in presets:
    config.update(dict(warmup_steps=5, log_every=10, eval_every=15, checkpoint_every=15,
                       eval_size=64))
  return config


def get_sweep(arg: str | None = None) -> list[dict]:
  """Sweeps of this study; a point is {"config": variant, "dotted.field": value, ...}.

      python -m launch.sweep --config=experiments/configs/programs.py:compare --workdir=runs/compare
  """
  models = ["attention=vanilla", *(f"attention=conv_qkv,kernel={k}" for k in (2, 3, 5)),
            "attention=lego"]
  sweeps = {
      "smoke": [{"config": f"smoke,attention={a}"} for a in ATTENTIONS],
      "attention": [{"config": m} for m in models],
      "kernel": [{"config": f"attention=conv_qkv,kernel={k}"} for k in (1, 2, 3, 5, 7)],
      "difficulty": [{"config": f"statements={s},depth={d}"} for s, d in ((2, 1), (4, 2), (6, 3))],
      # The comparison of docs/results/programs.md, sized for a shared 2-core CPU.
      "compare": [{"config": f"{COMPARE},{m},seed={s}", "eval_size": 1024}
                  for s in range(3) for m in models],
  }
  if arg not in sweeps:
    raise ValueError(f"sweep: unknown {arg!r}; allowed: {', '.join(sweeps)}")
  return sweeps[arg]
