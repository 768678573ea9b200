"""Parameter constructors: float32 values named by logical axes (for sharding rules)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def param(rngs: nnx.Rngs, shape, axes, std: float | None) -> nnx.Param:
  """normal(0, std) values, or ones when std is None."""
  value = jnp.ones(shape) if std is None else std * jax.random.normal(rngs.params(), shape)
  return nnx.Param(value, out_sharding=axes, eager_sharding=False)


def zeros(shape, axes) -> nnx.Param:
  return nnx.Param(jnp.zeros(shape), out_sharding=axes, eager_sharding=False)
