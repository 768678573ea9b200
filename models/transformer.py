"""The whole model, top to bottom: embeddings, pre-norm blocks (attention + MLP), a per-token head.

One `Transformer` serves every study: an encoder (bidirectional, LEGO) or a decoder (causal,
arithmetic, knowledge); layers shared (ALBERT-style weight tying) or not; the output head sized for
classes or for the vocabulary; GPT-2's block (LayerNorm, gelu MLP, biases) or LLaMA's (RMSNorm,
gated MLP, no biases), with a dense MLP or a mixture of experts (models/mlp.py, models/moe.py).
Every parameter carries logical axis names (`embed`, `heads`, `mlp`, `expert`, ...) so the same
model shards on any mesh by rules kept in the config.

    logits = model(tokens)                                   # training: fast attention
    logits, probes = model(tokens, capture=True)             # probing: explicit weights
    probes["layer_0/attention"]  # [batch, heads, query, key]
    logits = model(tokens, interventions={"layer_2/head_1/output": interventions.zero()})
    logits, kv = model.decode(tokens, kv, slots, positions)  # decoding: models/decoding.py

Every op that has a faster implementation than its jnp math goes through models/ops.py, which picks
it by `model.kernels`: on one CPU device by default the C++ kernels run in place of the norms, the
GPT-2 MLP's activation and attention (tested equal to the jnp math); `model.kernels="xla"` keeps
XLA everywhere.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from models import attention as attention_lib
from models import interventions as interventions_lib
from models import mlp as mlp_lib
from models import ops
from models import positional as positional_lib
from models.moe import MoE
from models.params import embed_std, kernel_std, param, zeros

NORMS = ("layernorm", "rmsnorm")
# Named blocks: the fields each sets (knowledge study's `block` knob, docs/results/knowledge.md).
BLOCKS = {
    "gpt2": dict(norm="layernorm", mlp="gelu", bias=True),
    "llama": dict(norm="rmsnorm", mlp="gated", bias=False),         # LLaMA / Mistral
    "llama_nogate": dict(norm="rmsnorm", mlp="silu", bias=False),   # the same, its MLP ungated
}


def model_config(**overrides) -> ml_collections.ConfigDict:
  """Defaults for every model field; studies override what they need."""
  config = ml_collections.ConfigDict(dict(
      vocab_size=32,        # input tokens
      num_outputs=2,        # head size: classes (encoder) or vocabulary (decoder)
      d_model=64,
      num_heads=4,
      num_layers=4,
      d_ff=256,
      max_len=64,           # positions the learned table covers
      causal=False,         # False: encoder; True: decoder
      tied_layers=False,    # one block applied num_layers times (ALBERT)
      pos_encoding="learned",
      attention="vanilla",
      # How ops run (models/ops.py): "auto" (the C++ kernels on one CPU device where they build and
      # fit, else XLA), "xla" (XLA only), "jax_nn" / "cudnn" (XLA, attention by
      # jax.nn.dot_product_attention's "xla" / "cudnn" implementation)
      kernels="auto",
      lego_heads=(1, 1),    # attention=lego: fixed (manipulation, association) heads per layer
      conv_kernel=3,        # attention=conv_qkv: taps of the depthwise convolution on q, k, v
      dtype="float32",      # activation dtype; parameters stay float32
      # The block (BLOCKS names the usual sets): norm, MLP kind (models.mlp), biases in the norms,
      # the MLPs and the head (attention has none).
      norm="layernorm",
      mlp="gelu",
      bias=True,
      # Mixture of experts (models.moe) in place of every MLP when experts >= 2: top-k routing
      # with a capacity per expert, and a load-balancing loss added to the training loss.
      experts=0,
      experts_per_token=1,
      capacity_factor=1.25,
      moe_loss_weight=0.01,
      # Initial stds (models.params): kernels 1/sqrt(fan_in) when init_std is None, else init_std
      # (GPT-2's recipe: init_std=0.02, embed_std=0.02); embeddings 1/sqrt(d_model) when
      # embed_std is None; learned position tables pos_std. Measured in docs/results/lego.md.
      init_std=ml_collections.config_dict.placeholder(float),
      embed_std=ml_collections.config_dict.placeholder(float),
      pos_std=0.02,
  ))
  config.update(overrides)
  return config


def validate(config: ml_collections.ConfigDict) -> None:
  """One-line errors naming the field, before any array is built."""
  for name, allowed in (("pos_encoding", positional_lib.ENCODINGS),
                        ("attention", attention_lib.VARIANTS), ("norm", NORMS),
                        ("mlp", mlp_lib.KINDS), ("kernels", ops.KERNELS)):
    if config[name] not in allowed:
      raise ValueError(f"model.{name}: unknown {config[name]!r}; allowed: {', '.join(allowed)}")
  if config.d_model % config.num_heads:
    raise ValueError(f"model.num_heads: {config.num_heads} does not divide "
                     f"model.d_model={config.d_model}")
  for name in ("vocab_size", "num_outputs", "d_model", "num_heads", "num_layers", "d_ff", "max_len"):
    if config[name] < 1:
      raise ValueError(f"model.{name}: {config[name]}; allowed: >= 1")
  for name in ("init_std", "embed_std", "pos_std"):
    value, width_scaled = config[name], name != "pos_std"  # None: scaled by width
    if not (value is None and width_scaled or value is not None and value > 0):
      raise ValueError(f"model.{name}: {value}; allowed: > 0"
                       + (" or None (scaled by width)" if width_scaled else ""))
  if config.dtype not in ("float32", "bfloat16"):
    raise ValueError(f"model.dtype: unknown {config.dtype!r}; allowed: float32, bfloat16")
  if config.experts == 1 or config.experts < 0:
    raise ValueError(f"model.experts: {config.experts}; allowed: 0 (a dense MLP) or >= 2")
  if config.experts and not 1 <= config.experts_per_token <= config.experts:
    raise ValueError(f"model.experts_per_token: {config.experts_per_token}; allowed: "
                     f"1..model.experts={config.experts}")
  if not config.capacity_factor > 0:
    raise ValueError(f"model.capacity_factor: {config.capacity_factor}; allowed: > 0")
  if not config.moe_loss_weight >= 0:
    raise ValueError(f"model.moe_loss_weight: {config.moe_loss_weight}; allowed: >= 0")


# The norms' epsilon; the C++ kernel restates it (kernels/csrc/norm.cc kEpsilon; tested equal).
NORM_EPSILON = 1e-6


def norm(x, scale, bias, centred: bool):
  """LayerNorm (centred) or RMSNorm of x [..., width], computed in float32: (x - mean) /
  sqrt(mean((x - mean)²) + NORM_EPSILON) * scale (+ bias; None for none), mean 0 uncentred."""
  y = x.astype(jnp.float32)
  if centred:
    y = y - y.mean(-1, keepdims=True)
  y = y * jax.lax.rsqrt(jnp.square(y).mean(-1, keepdims=True) + NORM_EPSILON) * scale
  return (y if bias is None else y + bias).astype(x.dtype)


class Norm(nnx.Module):
  """LayerNorm (centred, then scaled by the std) or RMSNorm (scaled by the root mean square).

  `norm` is the math. On one CPU device the C++ kernel runs in its place (tested equal; one pass
  each way, where XLA makes ~10); `model.kernels="xla"` keeps `norm`.
  """

  def __init__(self, config, rngs: nnx.Rngs):
    dim = config.d_model
    self.centred = config.norm == "layernorm"
    self.kernels = config.kernels
    self.scale = param(rngs, (dim,), ("embed",), None)
    self.bias = zeros((dim,), ("embed",)) if config.bias else None

  def __call__(self, x):
    bias = None if self.bias is None else self.bias[...]
    return ops.norm(norm, x, self.scale[...], bias, self.centred, kernels=self.kernels)


class Block(nnx.Module):
  """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x)).

  Returns the new residual stream, the attention weights (capture=True), the MLP's auxiliary
  loss (a mixture's load balancing; 0 for a dense MLP) and the attention's decoding cache with this
  call's keys and values (None without one). `site(name, value)`, when given, sees (and may edit)
  the heads' outputs ("heads") and the MLP's output ("mlp"): models/interventions.py.
  """

  def __init__(self, config, rngs: nnx.Rngs):
    self.kernels = config.kernels
    self.attn_norm = Norm(config, rngs)
    self.attn = attention_lib.make(config, rngs)
    self.mlp_norm = Norm(config, rngs)
    self.mlp = MoE(config, rngs) if config.experts else mlp_lib.MLP(config, rngs)

  def __call__(self, x, positional, positions, key_mask=None, capture: bool = False, tokens=None,
               cache=None, site=None):
    heads = None if site is None else functools.partial(site, "heads")
    y, weights, cache = self.attn(self.attn_norm(x), positional, positions, key_mask, capture,
                                  tokens, cache, heads)
    x = ops.residual_add(x, y, kernels=self.kernels)
    y, aux_loss = self.mlp(self.mlp_norm(x))
    if site is not None:
      y = site("mlp", y)
    return ops.residual_add(x, y, kernels=self.kernels), weights, aux_loss, cache


class Transformer(nnx.Module):
  def __init__(self, config: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    validate(config)
    self.config = config
    d = config.d_model
    self.embed = param(rngs, (config.vocab_size, d), ("vocab", "embed"), embed_std(config))
    self.positional = positional_lib.make(config, rngs)
    num_blocks = 1 if config.tied_layers else config.num_layers
    self.blocks = nnx.List([Block(config, rngs) for _ in range(num_blocks)])
    self.final_norm = Norm(config, rngs)
    self.head = param(rngs, (d, config.num_outputs), ("embed", "vocab"), kernel_std(config, d))
    self.head_bias = zeros((config.num_outputs,), ("vocab",)) if config.bias else None

  def layer(self, i: int) -> Block:
    return self.blocks[0 if self.config.tied_layers else i]

  def __call__(self, tokens, *, positions=None, key_mask=None, capture: bool = False,
               interventions=None):
    """Logits [batch, length, num_outputs]; with capture=True also a dict of named probes.
    `interventions` {site: Edit} edits named sites on the way (models/interventions.py)."""
    logits, probes, _ = self.forward(tokens, positions=positions, key_mask=key_mask,
                                     capture=capture, interventions=interventions)
    return (logits, probes) if capture else logits

  def forward(self, tokens, *, positions=None, key_mask=None, capture: bool = False,
              interventions=None):
    """(logits, probes or None, auxiliary loss summed over the layers: 0 without experts)."""
    if positions is None:  # NumPy: constant when traced (positional encodings precompute on it)
      positions = np.arange(tokens.shape[1])[None]
    # no site to see or edit: the forward pass traces exactly as it would without this module
    sites = (interventions_lib.Sites(self.config, interventions, capture)
             if capture or interventions else None)
    x, probes, aux_loss, _ = self._residual_stream(tokens, positions, key_mask, capture,
                                                   sites=sites)
    return self.logits(x), probes, aux_loss

  def decode(self, tokens, kv, slots, positions):
    """Logits [B, L, num_outputs] of `tokens` [B, L] taking `slots` [B, L] of a decoding cache, and
    the cache with their keys and values written there: `kv` holds one (keys, values) pair
    [B, S, heads, head_dim] per layer, `positions` [B, S] every slot's position. Each token sees
    the slots up to its own (models/decoding.py)."""
    if any(type(self.layer(i).attn) is not attention_lib.Attention
           for i in range(self.config.num_layers)):
      raise ValueError(f"model.attention: {self.config.attention!r} has no decoding cache; "
                       "allowed: vanilla")
    caches = [attention_lib.Cache(keys, values, slots, positions) for keys, values in kv]
    x, _, _, caches = self._residual_stream(
        tokens, jnp.take_along_axis(positions, slots, axis=1), None, False, caches)
    return self.logits(x), tuple((cache.keys, cache.values) for cache in caches)

  def _residual_stream(self, tokens, positions, key_mask, capture: bool, caches=None,
                       sites=None):
    """The embeddings through every block: (residual stream, probes or None, auxiliary loss, the
    layers' caches or None). `sites` (an interventions.Sites) sees and edits the named sites."""
    x = self.embed[...][tokens]
    added = self.positional.embed(tokens, positions)
    if added is not None:
      x = x + added
    x = x.astype(jnp.dtype(self.config.dtype))
    if sites is not None:
      x = sites("embed", x)
    aux_loss = jnp.zeros((), jnp.float32)
    weights_by_layer = {}
    for i in range(self.config.num_layers):
      cache = None if caches is None else caches[i]
      site = None if sites is None else sites.layer(i)
      x, weights, layer_aux, cache = self.layer(i)(x, self.positional, positions, key_mask,
                                                   capture, tokens, cache, site)
      aux_loss = aux_loss + layer_aux
      if caches is not None:
        caches[i] = cache
      if sites is not None:
        x = sites(f"layer_{i}/residual", x)
      if capture:
        weights_by_layer[f"layer_{i}/attention"] = weights
    probes = {**sites.recorded, **weights_by_layer} if capture else None
    return x, probes, aux_loss, caches

  def logits(self, x):
    """The final norm and the head: residual stream [batch, length, d] -> float32 logits."""
    logits = ops.dense(self.final_norm(x), self.head[...].astype(x.dtype)).astype(jnp.float32)
    return logits if self.head_bias is None else logits + self.head_bias[...]


def num_params(model: nnx.Module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
