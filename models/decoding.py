"""Batched greedy decoding for causal `Transformer`s with a key/value cache, jit-compiled once per
shape: a prefill over the prompts, then one token per step for every row at once.

    new = greedy_generate(model, prompts, prompt_lengths, max_new_tokens, eos_id=eos)

Prompts are right-padded to a common length and may differ in length: row b's first new token is
written at index prompt_lengths[b]. Each step writes the new token's keys and values at its row's
index before attending, so the padding left in the cache by the prefill is overwritten before any
query can see it. Positions are token indices, or `positions` [B or 1, P + max_new_tokens] chosen
by the caller (randomised, random tags), or `position_fn(tokens) -> positions` recomputed from the
tokens so far (Abacus); it must be causal and jittable, and the same function object reuses the
compiled decoder.

Each call runs the model's own blocks (`Transformer.decode`: vanilla attention reads and extends
the cache); tests/unit/models/test_decoding.py proves it matches calling the model on the whole
sequence step by step.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def greedy_generate(model, prompts, prompt_lengths, max_new_tokens: int, *, positions=None,
                    position_fn=None, eos_id: int | None = None, pad_id: int = 0) -> np.ndarray:
  """[B, max_new_tokens] int32 greedy continuations; after `eos_id` a row continues with `pad_id`.

  Stops early once every row has produced `eos_id`.
  """
  config = model.config
  if not config.causal:
    raise ValueError("model.causal: greedy decoding needs a decoder (causal=True)")
  prompts = jnp.asarray(prompts, jnp.int32)
  total = prompts.shape[1] + max_new_tokens
  if positions is not None:
    positions = jnp.broadcast_to(jnp.asarray(positions, jnp.int32), (prompts.shape[0], total))
  graphdef, state = nnx.split(model)
  out = _generate(_Static(graphdef, config.to_json()), state, prompts,
                  jnp.asarray(prompt_lengths, jnp.int32), positions, max_new_tokens=max_new_tokens,
                  position_fn=position_fn, eos_id=-1 if eos_id is None else eos_id, pad_id=pad_id)
  return np.asarray(out)


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "position_fn",
                                             "eos_id", "pad_id"))
def _generate(graphdef, state, prompts, lengths, positions, *, max_new_tokens, position_fn,
              eos_id, pad_id):
  model = nnx.merge(graphdef.value, state)
  batch, prompt_len = prompts.shape
  total = prompt_len + max_new_tokens
  slots = jnp.arange(total)
  tokens = jnp.pad(prompts, ((0, 0), (0, max_new_tokens)), constant_values=pad_id)
  tokens = jnp.where(slots < lengths[:, None], tokens, pad_id)

  def all_positions(tokens):
    if position_fn is not None:
      return jnp.broadcast_to(position_fn(tokens), (batch, total)).astype(jnp.int32)
    return positions if positions is not None else jnp.broadcast_to(slots, (batch, total))

  config = model.config
  empty = jnp.zeros((batch, total, config.num_heads, config.d_model // config.num_heads),
                    jnp.dtype(config.dtype))
  kv = ((empty, empty),) * config.num_layers
  prefill_slots = jnp.broadcast_to(jnp.arange(prompt_len), (batch, prompt_len))
  logits, kv = model.decode(tokens[:, :prompt_len], kv, prefill_slots, all_positions(tokens))
  last = jnp.take_along_axis(logits, (lengths - 1)[:, None, None], axis=1)[:, 0]
  rows = jnp.arange(batch)

  def step(carry):
    s, tokens, out, kv, done, logits = carry
    new = jnp.where(done, pad_id, logits.argmax(-1).astype(jnp.int32))
    out = out.at[:, s].set(new)
    done = done | (new == eos_id)
    index = lengths + s
    tokens = tokens.at[rows, index].set(new)
    logits, kv = model.decode(new[:, None], kv, index[:, None], all_positions(tokens))
    return s + 1, tokens, out, kv, done, logits[:, 0]

  def running(carry):
    s, *_, done, _ = carry
    return (s < max_new_tokens) & ~done.all()

  out = jnp.full((batch, max_new_tokens), pad_id, jnp.int32)
  carry = (0, tokens, out, kv, jnp.zeros(batch, bool), last)
  return jax.lax.while_loop(running, step, carry)[2]


class _Static:
  """A graph definition as a jit static argument: the model's ConfigDict makes it unhashable."""

  def __init__(self, value, key: str):
    self.value, self.key = value, key

  def __hash__(self):
    return hash(self.key)

  def __eq__(self, other):
    return isinstance(other, _Static) and self.key == other.key and self.value == other.value

