"""Sharding as configuration: a device mesh and the rules that map logical axis names onto it.

    config.mesh = {data: -1, fsdp: 1, tensor: 1, expert: 1}   # -1 takes the devices the others leave
    config.sharding_rules = {batch: "data,fsdp,expert", embed: "fsdp", mlp: "tensor",
                             heads: "tensor", expert: "expert", ...}

Parameters name their dimensions by logical axes (`embed`, `mlp`, `heads`, ...); a rule maps each name
to mesh axes (comma-separated; "" keeps that dimension whole on every device). Optimizer state is
placed like the parameter it mirrors, batches split their leading dimension over the `batch` rule.
A dimension or batch the mesh does not divide is a one-line ValueError naming the field to change.
The `expert` axis holds a mixture's experts (models/moe.py), and splits the batch like `data` (the
layers without experts run data-parallel over it).
"""
from __future__ import annotations

import functools
import math

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor", "expert")

# The vocabularies of these studies are tiny (tens of tokens), so `vocab` stays whole by default.
RULES = dict(batch="data,fsdp,expert", embed="fsdp", mlp="tensor", heads="tensor", head_dim="",
             vocab="", expert="expert")


def mesh_fields() -> dict:
  return dict(mesh=dict(data=-1, fsdp=1, tensor=1, expert=1), sharding_rules=dict(RULES))


def mesh_shape(mesh_config, num_devices: int) -> tuple[int, ...]:
  """Axis sizes in MESH_AXES order, with the one -1 filled from `num_devices`."""
  sizes = [int(mesh_config.get(a, 1)) for a in MESH_AXES]  # configs saved before `expert`: 1
  described = ", ".join(f"{a}={s}" for a, s in zip(MESH_AXES, sizes))
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"mesh: {described}; allowed: sizes >= 1 and at most one -1")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % known:
      raise ValueError(f"mesh: {described} does not fit {num_devices} devices "
                       f"({known} does not divide {num_devices})")
    sizes[sizes.index(-1)] = num_devices // known
  elif known > num_devices:
    raise ValueError(f"mesh: {described} needs {known} devices; {num_devices} available")
  return tuple(sizes)


def make_mesh(mesh_config) -> jax.sharding.Mesh:
  shape = mesh_shape(mesh_config, jax.device_count())
  if jax.process_count() > 1 and math.prod(shape) != jax.device_count():
    raise ValueError(f"mesh: {dict(zip(MESH_AXES, shape))} uses {math.prod(shape)} of "
                     f"{jax.device_count()} devices; a multi-process run must use them all")
  # Auto axes: XLA propagates shardings through the model from the placements given here.
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def simulate_devices(mesh_config) -> None:
  """Gives a CPU-only JAX as many devices as a fully sized mesh needs (for --compile_only).

  Must run before JAX starts its backends; a mesh with -1 keeps the local devices.
  """
  sizes = [int(mesh_config.get(a, 1)) for a in MESH_AXES]
  if -1 not in sizes:
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", math.prod(sizes))


def mesh_axes(rules, logical: str | None) -> tuple[str, ...]:
  """The mesh axes a logical axis name maps to; unnamed or unruled dimensions stay whole."""
  if logical is None or logical not in rules:
    return ()
  axes = tuple(a.strip() for a in rules[logical].split(",") if a.strip())
  for axis in axes:
    if axis not in MESH_AXES:
      raise ValueError(f"sharding_rules.{logical}: unknown mesh axis {axis!r}; "
                       f"allowed: {', '.join(MESH_AXES)}")
  return axes


def spec_for(name: str, shape, logical_axes, rules, mesh) -> P:
  """The PartitionSpec of one array, checking that every sharded dimension divides evenly."""
  spec, used = [], set()
  for dim, (size, logical) in enumerate(zip(shape, logical_axes)):
    axes = tuple(a for a in mesh_axes(rules, logical) if a not in used and mesh.shape[a] > 1)
    ways = math.prod(mesh.shape[a] for a in axes)
    if size % ways:
      split = "*".join(f"{a}={mesh.shape[a]}" for a in axes)
      raise ValueError(f"sharding: {name} dimension {dim} ({logical!r}, size {size}) is not "
                       f"divisible by mesh {split}; change config.mesh or "
                       f"config.sharding_rules.{logical}")
    used.update(axes)
    spec.append(axes[0] if len(axes) == 1 else (axes or None))
  return P(*spec)


def param_shardings(logical_specs, abstract_params, rules, mesh):
  """NamedShardings for a params pytree from its logical PartitionSpecs (same structure)."""
  def place(path, spec, leaf):
    name = "params/" + "/".join(str(getattr(k, "key", k)) for k in path)
    return NamedSharding(mesh, spec_for(name, leaf.shape, tuple(spec), rules, mesh))
  return jax.tree.map_with_path(place, logical_specs, abstract_params,
                                is_leaf=lambda x: isinstance(x, P))


def state_shardings(abstract_state, params_shardings, mesh):
  """Shardings for the whole train state: each optimizer moment is placed like its parameter.

  An optimizer-state leaf whose tree path ends with a parameter's path and has its shape mirrors
  that parameter; everything else (step counters, scalars) is replicated.
  """
  by_path = {path: s for path, s in jax.tree.flatten_with_path(params_shardings)[0]}
  shapes = {path: leaf.shape for path, leaf in
            jax.tree.flatten_with_path(abstract_state["params"])[0]}
  replicated = NamedSharding(mesh, P())

  def place(path, leaf):
    for start in range(len(path)):
      suffix = path[start:]
      if suffix in by_path and shapes[suffix] == leaf.shape:
        return by_path[suffix]
    return replicated
  return jax.tree.map_with_path(place, abstract_state)


def batch_sharding(rules, mesh) -> NamedSharding:
  """Leading (batch) dimension split over the `batch` rule's axes, the rest whole."""
  axes = tuple(a for a in mesh_axes(rules, "batch") if mesh.shape[a] > 1)
  return NamedSharding(mesh, P(axes or None))


def check_batch(name: str, size: int, sharding: NamedSharding) -> None:
  axes = sharding.spec[0] or ()
  axes = (axes,) if isinstance(axes, str) else axes
  if size % math.prod(sharding.mesh.shape[a] for a in axes):
    axes = "*".join(f"{a}={sharding.mesh.shape[a]}" for a in axes)
    raise ValueError(f"{name}: {size} is not divisible by the mesh's batch axes {axes}; "
                     "change it or config.mesh")


@functools.lru_cache(maxsize=None)
def process_rows(sharding: NamedSharding, batch_size: int) -> slice:
  """The rows of the global batch that this process's devices hold (contiguous by construction)."""
  indices = sharding.addressable_devices_indices_map((batch_size,)).values()
  starts = [i[0].start or 0 for i in indices]
  stops = [batch_size if i[0].stop is None else i[0].stop for i in indices]
  lo, hi = min(starts), max(stops)
  if sum(b - a for a, b in set(zip(starts, stops))) != hi - lo:
    raise ValueError("mesh: this process's devices hold non-contiguous batch rows; "
                     "order config.mesh so that `data` is the outermost axis")
  return slice(lo, hi)


def global_batch(batch: dict[str, np.ndarray], sharding: NamedSharding, batch_size: int) -> dict:
  """Global arrays from this process's rows of a batch."""
  return {k: jax.make_array_from_process_local_data(sharding, v, (batch_size, *v.shape[1:]))
          for k, v in batch.items()}
