"""Knowledge manipulation ("Physics of LMs" 3.2): a GPT2-ℓ-h decoder pretrained on bioS (multi5 +
permute by default: the augmentation that makes knowledge extractable), then fine-tuned on P_train
manipulation examples with and without a chain of thought, and tested on P_test.

    python -m experiments.knowledge.manipulation \
        --config=experiments/configs/manipulation.py --workdir=runs/manipulation
    python -m experiments.knowledge.manipulation \
        --config=experiments/configs/manipulation.py:smoke --workdir=/tmp/manip
    python -m launch.sweep --config=experiments/configs/manipulation.py:cpu --workdir=runs/manip_cpu

Variant string: preset smoke; knobs key=value: the knowledge config's people, multi, permute, layers,
heads, head_dim, exposures, batch, lr, wd, bios_per_window, seed, gpt2_init (see
experiments/configs/knowledge.py); mixed (True: P_train QA pairs of the six attributes mixed
into pretraining, the knowledge config's mixed preset, instead of biographies alone); values
(at most this many values per attribute, 0: the whole pools); bio (all, or the attributes the
biographies tell joined by +, birth_date and birth_city among them: shorter biographies); kinds
(all, or kinds joined by +: retrieval+comparison), cot
(both: a fine-tuning stage without and one with chains of thought; none; mixed), ft_steps and ft_lr
(each fine-tuning stage's schedule), test_examples (greedy-decoded examples per kind and split).
"""
import ml_collections

from experiments.configs import knowledge
from experiments.configs.common import parse_variant
from tasks.biography import ATTRIBUTES
from tasks.manipulation import COT_MODES, KINDS

PRESETS = ("smoke",)
SHARED = ("people", "multi", "permute", "layers", "heads", "head_dim", "exposures", "batch", "lr",
          "wd", "bios_per_window", "seed", "gpt2_init")  # knobs the knowledge config reads
KNOBS = dict(people=2000, multi=5, permute=True, layers=4, heads=2, head_dim=64, exposures=100,
             batch=64, lr=1e-3, wd=0.1, bios_per_window=2, seed=0, gpt2_init=False, mixed=False,
             values=0, bio="all", kinds="all",
             cot="both", ft_steps=2000, ft_lr=3e-4, test_examples=500)
SMOKE = dict(people=40, multi=2, layers=2, heads=2, exposures=4, batch=16, ft_steps=6,
             test_examples=16)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  presets, k = parse_variant(arg, PRESETS, KNOBS, {"smoke": SMOKE})
  kinds = KINDS if k["kinds"] == "all" else tuple(str(k["kinds"]).split("+"))
  told = ATTRIBUTES if k["bio"] == "all" else tuple(str(k["bio"]).split("+"))
  if any(kind not in KINDS for kind in kinds):
    raise ValueError(f"config variant: kinds={k['kinds']!r}; allowed: all or a +-joined subset of "
                     f"{', '.join(KINDS)}")
  if k["cot"] not in ("both", *COT_MODES):
    raise ValueError(f"config variant: cot={k['cot']!r}; allowed: both, {', '.join(COT_MODES)}")
  if k["ft_steps"] < 2:
    raise ValueError(f"config variant: ft_steps={k['ft_steps']}; allowed: >= 2")
  presets = [*presets, *(["mixed"] if k["mixed"] else [])]
  shared = ",".join([*presets, *(f"{name}={k[name]}" for name in SHARED), "qa=False",
                     "probe=False"])
  config = knowledge.get_config(shared)
  config.task = ml_collections.ConfigDict(dict(
      people=k["people"], multi=k["multi"], permute=k["permute"], fullname=False,
      bios_per_window=k["bios_per_window"], mixed_qa_share=knowledge.MIXED_QA_SHARE,
      values=k["values"],
      bio_attributes=told, attributes=told))
  steps = k["ft_steps"]
  config.knowledge.finetune = ml_collections.ConfigDict(dict(
      num_steps=steps, learning_rate=k["ft_lr"], warmup_steps=steps // 10, weight_decay=0.01,
      log_every=max(1, steps // 10), eval_every=max(1, steps // 2), checkpoint_every=steps,
      **({"eval_size": config.eval_size} if "smoke" in presets else {})))
  config.manipulation = ml_collections.ConfigDict(dict(
      kinds=kinds, cot_modes=COT_MODES if k["cot"] == "both" else (k["cot"],),
      test_examples=k["test_examples"]))
  return config


SHORT = "people=300,bio=birth_date+birth_city,bios_per_window=4"
MODEL = "layers=2,heads=2,head_dim=32,batch=32"  # GPT2-2-2 at hidden 64: minutes a pretraining
CPU_TRY = f"{MODEL},kinds=retrieval,cot=none,ft_steps=600,ft_lr=0.001"
SWEEPS = {
    # The search for a CPU scale where P_test retrieval is high, one change at a time (the tries
    # before these ran the knowledge study: docs/results/knowledge_manipulation.md).
    "cpu_scale": [f"people=300,values=12,exposures=300,lr=0.003,{CPU_TRY}",
                  f"people=1000,exposures=100,lr=0.003,{CPU_TRY}",
                  f"{SHORT},exposures=300,lr=0.003,{CPU_TRY}",
                  f"{SHORT},exposures=300,lr=0.01,{CPU_TRY}",
                  f"{SHORT},exposures=1000,lr=0.01,{CPU_TRY}"],
    # Every kind, fine-tuned without and with chains of thought, at the fourth of those scales,
    # and at the third (pretraining lr 3e-3, where P_test retrieval is at chance).
    "cpu": [f"{SHORT},exposures=300,lr=0.01,{MODEL},ft_steps=1000,ft_lr=0.001,seed={seed}"
            for seed in (0, 1)],
    "cpu_e1000": [f"{SHORT},exposures=1000,lr=0.01,{MODEL},ft_steps=1000,ft_lr=0.001,seed={seed}"
                  for seed in (0, 1)],  # the fifth
    "cpu_lr3e-3": [f"{SHORT},exposures=300,lr=0.003,{MODEL},ft_steps=1000,ft_lr=0.001,seed={seed}"
                   for seed in (0, 1)],
}


def get_sweep(arg: str) -> list[str]:
  """Variant strings of a named sweep (each runs as `manipulation.py:<variant>`)."""
  if arg not in SWEEPS:
    raise ValueError(f"sweep: unknown {arg!r}; allowed: {', '.join(SWEEPS)}")
  return SWEEPS[arg]
