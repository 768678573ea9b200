"""Parameter constructors: float32 values named by logical axes (for sharding rules)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def param(rngs: nnx.Rngs, shape, axes, std: float | None) -> nnx.Param:
  """normal(0, std) values, or ones when std is None."""
  value = jnp.ones(shape) if std is None else std * jax.random.normal(rngs.params(), shape)
  return nnx.Param(value, out_sharding=axes, eager_sharding=False)


def kernel_std(config, fan_in: int, residual_output: bool = False) -> float:
  """Initial std of a weight matrix with `fan_in` inputs per output.

  model.init_std None: 1/sqrt(fan_in) (LeCun), so every projection starts variance-preserving at
  any width. A number: that std everywhere (GPT-2's 0.02, sized for d_model 768), with the
  projections writing to the residual stream (`residual_output`) scaled by 1/sqrt(2 * layers).
  """
  if config.init_std is None:
    return fan_in ** -0.5
  return config.init_std / ((2 * config.num_layers) ** 0.5 if residual_output else 1.0)


def embed_std(config) -> float:
  """Initial std of the token embeddings: model.embed_std, or 1/sqrt(d_model) (unit-norm rows)."""
  return config.d_model ** -0.5 if config.embed_std is None else config.embed_std


def zeros(shape, axes) -> nnx.Param:
  return nnx.Param(jnp.zeros(shape), out_sharding=axes, eager_sharding=False)
