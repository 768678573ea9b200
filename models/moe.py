"""Mixture of experts (`model.experts` >= 2): a router sends each token to its top-k expert MLPs.

Routing happens per sequence (T tokens; batches are sharded by rows, so it never crosses devices):
  probabilities  p = softmax(x W_router) over the E experts; each token chooses its k most probable
                 experts (`model.experts_per_token`);
  capacity       an expert takes at most C = min(T, ceil(capacity_factor * k * T / E)) tokens of a
                 sequence (`model.capacity_factor`);
  drop rule      experts fill their C slots with all first choices in position order, then all
                 second choices, ...; a choice that finds its expert full is dropped: that expert
                 adds nothing to the token (its other choices still do, and a token whose every
                 choice is dropped passes on through the residual alone);
  output         y = sum over the token's kept choices e of p_e * expert_e(x), p not renormalised
                 (so the router learns at k = 1 too, as in the Switch Transformer).
Load balancing (Switch Transformer): E * sum_e f_e P_e, f_e the share of all choices that picked e
(before dropping), P_e the mean probability of e; 1 when balanced, E when one expert takes all. The
train step adds it to the loss with weight `model.moe_loss_weight`.

Expert weights carry the logical axis `expert` (sharded by the `expert` rule); tokens travel to the
experts' devices and back through the dispatch and combine contractions.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from models import ops
from models.mlp import MLP
from models.params import kernel_std, param


def expert_capacity(tokens: int, experts: int, k: int, capacity_factor: float) -> int:
  return min(tokens, math.ceil(capacity_factor * k * tokens / experts))


def route(probs, k: int, capacity: int):
  """Routing of tokens with router probabilities `probs` [B, T, E] (the rule above).

  Returns dispatch [B, T, E, C] (1 where a token sits in an expert's slot), combine [B, T, E, C]
  (that token's router probability there) and the load-balancing loss.
  """
  batch, length, experts = probs.shape
  gates, chosen = jax.lax.top_k(probs, k)                               # [B, T, k]
  choice = jax.nn.one_hot(chosen, experts, dtype=jnp.int32)             # [B, T, k, E]
  queue = choice.transpose(0, 2, 1, 3).reshape(batch, k * length, experts)  # choice-major
  ahead = (jnp.cumsum(queue, axis=1) - queue).reshape(batch, k, length, experts)
  slot = jnp.sum(ahead.transpose(0, 2, 1, 3) * choice, -1)             # [B, T, k]
  in_slot = jax.nn.one_hot(slot, capacity, dtype=probs.dtype)          # all zeros when dropped
  dispatch = jnp.einsum("btke,btkc->btec", choice.astype(probs.dtype), in_slot)
  combine = jnp.einsum("btke,btkc,btk->btec", choice.astype(probs.dtype), in_slot, gates)
  share = choice.sum((0, 1, 2)) / (batch * length * k)
  balance = experts * jnp.sum(share * probs.mean((0, 1)))
  return dispatch, combine, balance


class MoE(nnx.Module):
  def __init__(self, config, rngs: nnx.Rngs):
    d = config.d_model
    self.k, self.capacity_factor = config.experts_per_token, config.capacity_factor
    self.router = param(rngs, (d, config.experts), ("embed", None), kernel_std(config, d))
    self.experts = MLP(config, rngs, experts=config.experts)

  def __call__(self, x):
    """x [B, T, d] -> (y [B, T, d], load-balancing loss)."""
    logits = ops.dense(x, self.router[...].astype(x.dtype)).astype(jnp.float32)
    capacity = expert_capacity(x.shape[1], logits.shape[-1], self.k, self.capacity_factor)
    dispatch, combine, balance = route(jax.nn.softmax(logits), self.k, capacity)
    inputs = jnp.einsum("btec,btd->ebcd", dispatch.astype(x.dtype), x)
    outputs, _ = self.experts(inputs)
    return jnp.einsum("btec,ebcd->btd", combine.astype(x.dtype), outputs), balance
