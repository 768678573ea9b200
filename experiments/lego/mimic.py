"""Mimicking pretraining (Zhang et al. 2022): before LEGO training, a randomly initialised model
learns only to make, in every layer, one head follow the manipulation pattern (kernel [1, 2, 4, 2, 1]
around each token) and one the association pattern (identical tokens), by a KL loss against those
targets (each + 1e-3, row-normalised) on fresh LEGO sentences; the stage moves only what decides
where heads look (`attention_map_mask`). Ordinary LEGO training follows.

    python -m experiments.lego.mimic --config=experiments/configs/lego.py:mimic --workdir=runs/mimic
    python -m experiments.lego.mimic --config=experiments/configs/lego.py:mimic,smoke --workdir=/tmp/m

The stage's settings are `config.mimic` (steps, learning rate, which heads; optimiser fields it does
not set are the run's). It runs only while the workdir holds no checkpoint, and is deterministic, so
a resumed run simply continues the fine-tuning.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from experiments.runtime import entry, train
from models.attention import association_pattern, manipulation_pattern

FLOOR = 1e-3
FRESH = 1_000_000  # mimicking reads train batches from this index on: sentences training never sees


def targets(tokens, causal: bool = False):
  """The manipulation and association target patterns [B, T, T] of a batch of tokens."""
  manipulation = manipulation_pattern(tokens.shape[1], causal=causal, floor=FLOOR)
  association = association_pattern(tokens, causal=causal, floor=FLOOR)
  return jnp.broadcast_to(manipulation, association.shape)[:, 0], association[:, 0]


def kl(target, weights):
  """KL(target || weights) per row, averaged over rows and batch."""
  log_ratio = jnp.log(target) - jnp.log(jnp.maximum(weights, 1e-30))
  return jnp.where(target > 0, target * log_ratio, 0.0).sum(-1).mean()


def mimic_loss(probes, tokens, num_layers: int, heads: tuple[int, int], causal: bool = False):
  """Mean over layers of the KL of head heads[0] to manipulation and heads[1] to association."""
  manipulation, association = targets(tokens, causal)
  total = 0.0
  for layer in range(num_layers):
    weights = probes[f"layer_{layer}/attention"]
    total += kl(manipulation, weights[:, heads[0]]) + kl(association, weights[:, heads[1]])
  return total / (2 * num_layers)


def attention_map_mask(params):
  """1 on what decides where heads look (embeddings, positions, pre-attention norms, query and key
  projections), 0 elsewhere. Trained freely, the stage also grows values, outputs and MLPs to steer
  later layers (a residual stream ~6x vanilla's in docs/results/lego.md); masked, the KL ends lower."""
  def mask(path, p):
    names = {getattr(k, "key", None) for k in path}
    if "qkv" in names:  # [d_model, (q, k, v), heads, head_dim]: not v
      return jnp.zeros_like(p).at[:, :2].set(1.0)
    return jnp.full_like(p, float(bool(names & {"embed", "positional", "attn_norm"})))
  return jax.tree_util.tree_map_with_path(mask, params)


def pretrain(config, study, trainer: train.Trainer, print_fn=print):
  """Parameters after the mimicking stage, from the run's own random initialisation; only those
  in `attention_map_mask` change."""
  stage = ml_collections.ConfigDict({**config.to_dict(), **config.mimic.to_dict()})
  optimizer = train.make_optimizer(stage)
  heads = (stage.manipulation_head, stage.association_head)
  model_config = train.resolved_model_config(config, study)

  def loss_fn(params, tokens):
    _, probes = nnx.merge(trainer.graphdef, params)(tokens, capture=True)
    return mimic_loss(probes, tokens, model_config.num_layers, heads, model_config.causal)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, opt_state, tokens):
    loss, grads = jax.value_and_grad(loss_fn)(params, tokens)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    updates = jax.tree.map(jnp.multiply, updates, mask)  # weight decay included
    return optax.apply_updates(params, updates), opt_state, loss

  params = trainer.init()["params"]
  mask = attention_map_mask(params)
  opt_state = optimizer.init(params)
  losses = []
  for i in range(stage.num_steps):
    tokens = study.batch("train", FRESH + i, stage.batch_size)["inputs"]
    params, opt_state, loss = step(params, opt_state, tokens)
    losses.append(loss)
    if (i + 1) % stage.log_every == 0 or i + 1 == stage.num_steps:
      mean = float(jnp.mean(jnp.stack(losses)))
      losses = []
      if not jnp.isfinite(mean):
        raise train.NonFiniteLoss(f"mimicking: loss became {mean} at step {i + 1}")
      print_fn(f"mimic step {i + 1}/{stage.num_steps} | kl {mean:.4f}")
  return params


def train_and_evaluate(config, workdir: str, study, print_fn=functools.partial(print, flush=True),
                       stop_at: int | None = None) -> dict:
  """The shared loop, started (on a fresh workdir) from the mimicking stage's parameters."""
  if "mimic" not in config:
    raise train.SetupError("mimic: the config has no mimic section; use the `mimic` preset "
                           "(experiments/configs/lego.py:mimic)")
  init = lambda trainer: pretrain(config, study, trainer, print_fn)
  return train.train_and_evaluate(config, workdir, study, print_fn, stop_at, init_params=init)


def main():
  entry.run("lego", train_fn=train_and_evaluate)


if __name__ == "__main__":
  main()
