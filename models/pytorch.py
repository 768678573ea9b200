"""Our Transformer in PyTorch, for models that leave the codebase: the same shapes and arithmetic
as models/transformer.py, and `load_params`, our parameters into it (benchmarks/torch_reference.py
trains it as the speed baseline; models/export.py's files load into it with `from_export`).

Token embeddings plus learned positions (or rotary queries and keys), pre-norm blocks (LayerNorm;
one fused projection to the learned heads' queries and keys and every head's values, no bias;
output projection without bias; GELU MLP with biases), a final norm and a biased head; layers
untied or tied (one block applied num_layers times); an encoder or a decoder (causal). Attention is
vanilla (every head learned) or LEGO: the first heads follow the fixed manipulation and association
patterns of models/attention.py and have no query or key. Other fields (RMSNorm, gated MLPs, no
biases, other positions or attention) raise NotImplementedError.

    model = pytorch.from_export("lego.safetensors")     # a file written by python -m models.export
    logits = model(torch.from_numpy(tokens).long())      # [batch, length, num_outputs], ours to ~1e-6
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.attention import MANIPULATION_KERNEL


def fixed_patterns(tokens, manipulation: int, association: int, causal: bool):
  """[B, manipulation + association, T, T]: the fixed heads' attention weights, rows summing to 1."""
  length = tokens.shape[1]
  offset = torch.arange(length)[None, :] - torch.arange(length)[:, None]  # key - query
  half = len(MANIPULATION_KERNEL) // 2
  kernel = torch.tensor(MANIPULATION_KERNEL)[(offset + half).clamp(0, 2 * half)]
  local = torch.where(offset.abs() <= half, kernel, 0.0)
  mask = torch.ones(length, length, dtype=torch.bool)
  if causal:
    mask = mask.tril()
  self_ = torch.eye(length, dtype=torch.bool)
  same = (tokens[:, :, None] == tokens[:, None, :]) & ~self_ & mask
  alone = ~same.any(-1, keepdim=True)  # a token with no other copy in view attends to itself
  same = same | (alone & self_)
  local = (local * mask).expand(tokens.shape[0], length, length)
  patterns = [local] * manipulation + [same.float()] * association
  stacked = torch.stack(patterns, 1)
  return stacked / stacked.sum(-1, keepdim=True).clamp(min=1e-30)


def rotate(x, positions):
  """RoPE on [B, H, T, D]: channel pairs (i, i + D/2) rotated by position * 10000^(-2i/D)."""
  half = x.shape[-1] // 2
  freq = torch.exp(-math.log(10000.0) * torch.arange(half) / half)
  angle = positions[:, None].float() * freq  # [T, 1] * [D/2]
  cos, sin = angle.cos(), angle.sin()
  x1, x2 = x[..., :half], x[..., half:]
  return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


class Block(nn.Module):
  def __init__(self, m):
    super().__init__()
    d, heads = m["d_model"], m["num_heads"]
    self.heads, self.causal, self.rotary = heads, m["causal"], m["pos_encoding"] == "rotary"
    self.manipulation, self.association = (
        (int(n) for n in m["lego_heads"]) if m["attention"] == "lego" else (0, 0))
    self.fixed = self.manipulation + self.association
    self.learned = heads - self.fixed
    self.attn_norm = nn.LayerNorm(d, eps=1e-6)
    self.qkv = nn.Linear(d, (2 * self.learned + heads) * (d // heads), bias=False)
    self.out = nn.Linear(d, d, bias=False)
    self.mlp_norm = nn.LayerNorm(d, eps=1e-6)
    self.wi = nn.Linear(d, m["d_ff"])
    self.wo = nn.Linear(m["d_ff"], d)

  def attention(self, x, patterns):
    b, t, d = x.shape
    k_dim = d // self.heads
    q, k, v = self.qkv(x).split([self.learned * k_dim] * 2 + [d], -1)
    heads_major = lambda a: a.view(b, t, -1, k_dim).transpose(1, 2)
    q, k, v = heads_major(q), heads_major(k), heads_major(v)
    ys = []
    if self.fixed:
      ys.append(patterns @ v[:, :self.fixed])
    if self.learned:
      if self.rotary:
        positions = torch.arange(t)
        q, k = rotate(q, positions), rotate(k, positions)
      ys.append(F.scaled_dot_product_attention(q, k, v[:, self.fixed:], is_causal=self.causal))
    y = torch.cat(ys, 1) if len(ys) > 1 else ys[0]
    return self.out(y.transpose(1, 2).reshape(b, t, d))

  def forward(self, x, patterns):
    x = x + self.attention(self.attn_norm(x), patterns)
    return x + self.wo(F.gelu(self.wi(self.mlp_norm(x)), approximate="tanh"))


class Transformer(nn.Module):
  def __init__(self, m):
    super().__init__()
    block = tuple(m.get(k) for k in ("norm", "mlp", "bias", "experts"))
    if (m["pos_encoding"] not in ("learned", "rotary") or m["attention"] not in ("vanilla", "lego")
        or block != ("layernorm", "gelu", True, 0)):
      raise NotImplementedError(
          f"the PyTorch model has learned or rotary positions, vanilla or LEGO attention and "
          f"GPT-2's block, not {m['pos_encoding']}, {m['attention']}, (norm, mlp, bias, experts) "
          f"= {block}")
    self.embed = nn.Embedding(m["vocab_size"], m["d_model"])
    self.positions = (nn.Embedding(m["max_len"], m["d_model"])
                      if m["pos_encoding"] == "learned" else None)
    # tied layers (ALBERT): one Block applied num_layers times, its gradients summed over them
    blocks = [Block(m)] * m["num_layers"] if m["tied_layers"] else [
        Block(m) for _ in range(m["num_layers"])]
    self.blocks = nn.ModuleList(blocks)
    self.final_norm = nn.LayerNorm(m["d_model"], eps=1e-6)
    self.head = nn.Linear(m["d_model"], m["num_outputs"])
    for p in self.parameters():
      if p.ndim >= 2:
        nn.init.normal_(p, std=0.02)

  def forward(self, tokens):
    x = self.embed(tokens)
    if self.positions is not None:
      x = x + self.positions.weight[:tokens.shape[1]]
    first = self.blocks[0]
    patterns = (fixed_patterns(tokens, first.manipulation, first.association, first.causal)
                if first.fixed else None)  # the same in every layer
    for block in self.blocks:
      x = block(x, patterns)
    return self.head(self.final_norm(x))


def load_params(model: Transformer, params: dict) -> None:
  """Copies our parameters (train state's pure dict, arrays) into `model`, layouts converted."""
  t = lambda a: torch.from_numpy(np.array(a, np.float32))
  linear = lambda a: t(a).reshape(a.shape[0], -1).T  # ours [in, out...] -> torch's [out, in]
  linear_in = lambda a: t(a).reshape(-1, a.shape[-1]).T  # ours [in..., out] -> torch's [out, in]
  weights = {"embed.weight": t(params["embed"]), "final_norm.weight": t(params["final_norm"]["scale"]),
             "final_norm.bias": t(params["final_norm"]["bias"]), "head.weight": linear(params["head"]),
             "head.bias": t(params["head_bias"])}
  if model.positions is not None:
    weights["positions.weight"] = t(params["positional"]["table"])
  for i in range(len(model.blocks)):  # tied: ours hold one block; torch's state names it per layer
    ours, name = params["blocks"][i if len(params["blocks"]) > 1 else 0], f"blocks.{i}."
    attn = ours["attn"]
    qkv = (linear(attn["qkv"]) if "qkv" in attn else
           torch.cat([linear(attn["qk"])] * ("qk" in attn) + [linear(attn["v"])]))
    weights.update({
        name + "qkv.weight": qkv, name + "out.weight": linear_in(attn["out"]),
        name + "wi.weight": linear(ours["mlp"]["wi"]), name + "wi.bias": t(ours["mlp"]["bi"]),
        name + "wo.weight": t(ours["mlp"]["wo"]), name + "wo.bias": t(ours["mlp"]["bo"])})
    for norm in ("attn_norm", "mlp_norm"):
      weights[f"{name}{norm}.weight"] = t(ours[norm]["scale"])
      weights[f"{name}{norm}.bias"] = t(ours[norm]["bias"])
  model.load_state_dict(weights)


def from_export(path: str) -> Transformer:
  """The model in a file written by models.export, its parameters loaded, in eval mode."""
  from models import export
  params, meta = export.load(path)
  model = Transformer(meta["model"])
  load_params(model, params)
  return model.eval()
