"""LEGO (Zhang et al. 2022): n = 12 Z2 chains, loss on chain positions 1-6, accuracy on all 12.

    python -m experiments.lego --config=experiments/configs/lego.py --workdir=runs/lego
    python -m experiments.lego --config=experiments/configs/lego.py:smoke --workdir=/tmp/lego-smoke
    python -m experiments.lego --config=experiments/configs/lego.py:attention=vanilla --workdir=runs/v
    python -m experiments.lego --config=experiments/configs/lego.py:tied=False,seed=1 --workdir=runs/bert
    python -m experiments.lego.mimic --config=experiments/configs/lego.py:mimic --workdir=runs/mimic

The default recipe (the README's main job, about 11 minutes on 2 CPU cores): one d_model 64 block
(d_ff 128) applied 12 times (ALBERT's tied layers) with LEGO attention (one fixed manipulation head,
one fixed association head and two learned heads), batch 64, AdamW 2e-3 with b2 0.999, warmup 200
and cosine decay to 0.1x, and the model's width-scaled init. Each chain step costs about two layers
with the fixed heads (association brings the parent's value to its mention, then it moves three
tokens to the defining token), so 6 positions need about 11 layers. Every chain step is the same
operation, and one shared block learns it once: tied, every trained position passes 0.95 by step
1,750-2,250 on every seed measured; untied (tied=False, BERT) needs 3,000 to over 5,000 steps and
whether it makes the 5,000 depends on the seed and on float rounding. Measured in
docs/results/lego.md.

Variant string: presets (smoke: a tiny untied vanilla model for tests, whose size and attention
knobs given override; mimic, vanilla attention) and
knobs key=value (layers, d_model, heads, attention, tied, group, seed, num_vars, train_positions); any
field can also be set with --config.FIELD=VALUE.
"""
import ml_collections

from experiments.configs.common import parse_variant
from experiments.runtime.train import train_fields
from models.transformer import model_config

STUDY = "lego"  # the study this file (or a copy of it elsewhere) configures
PRESETS = ("smoke", "mimic")
KNOBS = dict(layers=12, d_model=64, heads=4, attention="lego", tied=True, group="z2", seed=0,
             num_vars=12, train_positions=6)
SMOKE = dict(layers=2, d_model=32, heads=2, attention="vanilla", tied=False)  # knobs given win
KEEP_ALL = {"checkpoint_keep": 20}  # a sweep point's every checkpoint, for experiments.lego.heads


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  presets, knobs = parse_variant(arg, PRESETS, KNOBS, {"smoke": SMOKE})
  config = ml_collections.ConfigDict(train_fields(
      seed=knobs["seed"], batch_size=64, num_steps=5000, learning_rate=2e-3, warmup_steps=200,
      final_lr_ratio=0.1, b2=0.999, weight_decay=0.01, log_every=50, eval_every=250,
      checkpoint_every=500, eval_size=1024,
      # 10 steps a call measured no faster: the step's work, not dispatch, sets its time
      # (docs/performance.md)
      steps_per_call=1))
  config.task = ml_collections.ConfigDict(dict(
      num_vars=knobs["num_vars"], train_positions=knobs["train_positions"], group=knobs["group"],
      shuffle=True, held_out_buckets=8))
  # Curriculum: the first `steps` train batches hold chains of min_vars..n variables (n_max growing
  # linearly to num_vars), padded to full length; 0 turns it off.
  config.curriculum = ml_collections.ConfigDict(dict(min_vars=2, steps=0))
  config.model = model_config(
      d_model=knobs["d_model"], num_heads=knobs["heads"], num_layers=knobs["layers"],
      d_ff=2 * knobs["d_model"], tied_layers=knobs["tied"], attention=knobs["attention"])
  if "smoke" in presets:
    config.update(dict(batch_size=32, num_steps=30, warmup_steps=5, log_every=10, eval_every=15,
                       checkpoint_every=15, eval_size=64))
  if "mimic" in presets:  # the mimicking-pretraining stage run by experiments/lego/mimic.py
    config.model.attention = "vanilla"  # mimicking teaches learned heads the fixed patterns
    steps = 10 if "smoke" in presets else 1000
    config.mimic = ml_collections.ConfigDict(dict(
        num_steps=steps, warmup_steps=steps // 10, learning_rate=1e-3, log_every=steps // 10,
        manipulation_head=0, association_head=1))
  return config


def get_sweep(arg: str | None = None) -> list[dict]:
  """Sweeps of this study; a point is {"config": variant, "dotted.field": value, ...}.

      python -m launch.sweep --config=experiments/configs/lego.py:depth --workdir=runs/depth
      python -m launch.slurm --config=experiments/configs/lego.py:depth --workdir=runs/depth --submit

  docs/results/lego.md's runs: `default` (the default model, seeds 0-2, and seed 0 on XLA's path),
  `untied` (tied=False, seeds 0-1 on either path), `compare` (tied and untied LEGO attention, vanilla
  and conv-QKV, seeds 0-1; read at step 2,500 of the 5,000-step schedule) and `compare_mimic` (the
  mimicking runs of the comparison: run it with --entry=experiments.lego.mimic); `learned` and
  `learned_mimic` (learned attention, one change at a time). Each point is the whole recipe: the
  defaults carry every setting those runs used.
  """
  sweeps = {
      "smoke": [{"config": "smoke", "model.num_layers": n} for n in (1, 2)],
      "depth": [{"config": f"layers={n}"} for n in (1, 2, 3, 4, 6)],
      "tied": [{"config": f"layers={n},tied={t}"} for n in (2, 4, 6) for t in (False, True)],
      "train_positions": [{"config": f"train_positions={k}"} for k in (2, 4, 6, 8, 12)],
      "seeds": [{"config": f"seed={s}"} for s in range(5)],
      "default": [{"config": f"seed={s}"} for s in (0, 1, 2)]
                 + [{"config": "seed=0", "model.kernels": "xla"}],
      "untied": [{"config": f"tied=False,seed={s}", **k} for s in (0, 1)
                 for k in ({}, {"model.kernels": "xla"})],
      "compare": [{"config": f"{m}seed={s}"} for s in (0, 1)
                  for m in ("", "tied=False,", "attention=vanilla,tied=False,",
                            "attention=conv_qkv,tied=False,")],
      "compare_mimic": [{"config": f"mimic,tied=False,seed={s}"} for s in (0, 1)],
      # Learned attention (tied vanilla), one change at a time from `attention=vanilla`; every
      # checkpoint kept for experiments.lego.heads. Its mimicking runs: `learned_mimic`.
      "learned": [{"config": f"attention=vanilla,seed={s}", **KEEP_ALL} for s in (0, 1)] + [
          {"config": "attention=vanilla", "curriculum.steps": 2500, **KEEP_ALL},
          {"config": "attention=vanilla", "model.pos_encoding": "rotary", **KEEP_ALL},
          {"config": "attention=vanilla,d_model=128", "model.pos_encoding": "rotary", **KEEP_ALL},
          {"config": "attention=vanilla", "model.pos_encoding": "rotary", "num_steps": 10000,
           "checkpoint_every": 1000, **KEEP_ALL},
          {"config": "attention=vanilla,tied=False", "model.pos_encoding": "rotary", **KEEP_ALL}],
      "learned_mimic": [{"config": "mimic", **KEEP_ALL}],
  }
  if arg not in sweeps:
    raise ValueError(f"sweep: unknown {arg!r}; allowed: {', '.join(sweeps)}")
  return sweeps[arg]
