"""Interventions: replace, add to or zero a named site of the forward pass, at any positions, inside
the jitted computation — activation patching (a clean run's activations into a corrupted run, or
back) and head ablation (zero or mean), read off the logits.

Sites carry the names probing gives them, and `capture=True` records each one as it flows on:
  embed                   [B, T, d_model]   token (+ position) embeddings
  layer_i/head_j/output   [B, T, head_dim]  head j's output in block i, before the output projection
  layer_i/mlp             [B, T, d_model]   block i's MLP output, before it joins the residual stream
  layer_i/residual        [B, T, d_model]   the residual stream after block i

    clean = interventions.run(model, clean_tokens, capture=True)[1]
    patched = interventions.run(model, corrupted_tokens, {
        "layer_3/residual": interventions.replace(clean["layer_3/residual"], positions=mask)})
    ablated = interventions.run(model, tokens, {"layer_2/head_1/output": interventions.zero()})

The edits are an argument of the traced forward pass, neither a second pass nor module state. Flax
NNX's own hooks (flax 0.12) do other jobs: `sow` with `nnx.capture` records intermediates as module
variables, and `perturb` adds a stored perturbation to a value to take its gradient; patching must
replace a value where it flows, at chosen positions. With no edit and no capture the model traces
no site at all (the same lowered program as `interventions={}`, tested).
"""
from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
from flax import nnx
from flax import struct

HEAD_SITE = re.compile(r"^layer_(\d+)/head_(\d+)/output$")


@struct.dataclass
class Edit:
  """What happens at one site: its value becomes `value` (or itself + `value` when `add`) at the
  positions `where` [T] or [B, T] selects (None: every position); `value` broadcasts to the site."""
  value: jax.Array
  where: jax.Array | None = None
  add: bool = struct.field(pytree_node=False, default=False)

  def __call__(self, x):
    value = jnp.asarray(self.value, x.dtype)
    edited = x + value if self.add else jnp.broadcast_to(value, x.shape)
    if self.where is None:
      return edited
    where = jnp.asarray(self.where, bool)
    where = where.reshape((1,) * (2 - where.ndim) + where.shape + (1,) * (x.ndim - 2))
    return jnp.where(where, edited, x)


def replace(value, positions=None) -> Edit:
  """The site takes `value` (e.g. another run's activations) at `positions` (a bool mask)."""
  return Edit(jnp.asarray(value), _mask(positions))


def add(delta, positions=None) -> Edit:
  """The site's value plus `delta` (a steering vector, a difference of runs) at `positions`."""
  return Edit(jnp.asarray(delta), _mask(positions), add=True)


def zero(positions=None) -> Edit:
  """Zero ablation: the site contributes nothing at `positions`."""
  return Edit(jnp.zeros((), jnp.float32), _mask(positions))


def mean(activations, positions=None) -> Edit:
  """Mean ablation: the site takes its mean over a batch of reference activations [B, T, ...]
  (per position) at `positions`."""
  return replace(jnp.asarray(activations).mean(0), positions)


def _mask(positions):
  """A bool mask [T] (every row) or [B, T]."""
  if positions is None:
    return None
  positions = jnp.asarray(positions, bool)
  if positions.ndim not in (1, 2):
    raise ValueError(f"positions: a mask of shape {positions.shape}; allowed: [length] or "
                     "[batch, length]")
  return positions


def site_names(config) -> list[str]:
  """Every site of a model with this config, in the order the forward pass meets them."""
  names = ["embed"]
  for i in range(config.num_layers):
    names += [f"layer_{i}/head_{j}/output" for j in range(config.num_heads)]
    names += [f"layer_{i}/mlp", f"layer_{i}/residual"]
  return names


class Sites:
  """One forward pass's view of its sites: applies the edits named for them and, when capturing,
  records each value as it flows on (after its edit) in `recorded`."""

  def __init__(self, config, edits, capture: bool):
    self.edits = dict(edits or {})
    unknown = sorted(set(self.edits) - set(site_names(config)))
    if unknown:
      raise ValueError(f"interventions: unknown site {unknown[0]!r}; allowed: embed, "
                       f"layer_i/residual, layer_i/mlp, layer_i/head_j/output for i < "
                       f"{config.num_layers}, j < {config.num_heads}")
    self.capture = capture
    self.recorded = {}

  def __call__(self, name: str, x):
    if name.endswith("/heads"):
      return self._heads(name[:-len("heads")], x)
    if name in self.edits:
      x = self.edits[name](x)
    if self.capture:
      self.recorded[name] = x
    return x

  def layer(self, i: int):
    """The sites of block i, as the block names them ("heads", "mlp")."""
    return lambda name, x: self(f"layer_{i}/{name}", x)

  def _heads(self, prefix: str, y):
    """y [B, T, heads, head_dim]: each head's slice is the site `<prefix>head_j/output`."""
    for j in range(y.shape[2]):
      name = f"{prefix}head_{j}/output"
      if name in self.edits:
        y = y.at[:, :, j].set(self.edits[name](y[:, :, j]))
      if self.capture:
        self.recorded[name] = y[:, :, j]
    return y


@functools.partial(nnx.jit, static_argnames=("capture",))
def _forward(model, tokens, edits, key_mask, capture):
  return model(tokens, key_mask=key_mask, capture=capture, interventions=edits)


def run(model, tokens, edits=None, *, capture: bool = False, key_mask=None):
  """The model's jitted forward pass on `tokens` with `edits` {site: Edit} applied: logits, and
  with `capture` also every site's value (and the attention maps) by name. One compilation per
  model, set of edited sites and shapes; the edits' values and positions are traced."""
  return _forward(model, jnp.asarray(tokens), edits or None, key_mask, capture=capture)
