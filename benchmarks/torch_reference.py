"""The studies' model and optimizer written plainly in PyTorch (CPU), nanoGPT-style, for the benchmark.

Same shapes and arithmetic as models/transformer.py: token embeddings plus learned positions (or
rotary queries and keys), pre-norm blocks (one fused projection to the learned heads' queries and
keys and every head's values, no bias; output projection without bias; GELU MLP with biases), a
final norm and a biased head; layers untied or tied (one block applied num_layers times).
Attention is vanilla (every head learned) or LEGO: the first heads follow the fixed manipulation and
association patterns of models/attention.py and have no query or key. AdamW (fused) with weight
decay on matrices only, global-norm clipping and a warmup-cosine schedule, as
experiments/runtime/train.py builds them; the loss is the studies' weighted cross-entropy.

    step = make_step(model_fields, train_fields)         # one call = one optimizer step on its batch
    step = make_step(..., compiled=True)                  # the forward and backward via torch.compile
    step(batch)                                           # batch: dict of NumPy arrays, as a study's
    load_params(model, params)                            # our parameters (a pure dict) into `model`
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
    if m["pos_encoding"] not in ("learned", "rotary") or m["attention"] not in ("vanilla", "lego"):
      raise NotImplementedError(f"the PyTorch reference has learned or rotary positions and vanilla "
                                f"or LEGO attention, not {m['pos_encoding']}, {m['attention']}")
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


def make_optimizer(model: nn.Module, t):
  """Fused AdamW (decay on matrices only) with the train loop's warmup-cosine schedule."""
  matrices = [p for p in model.parameters() if p.ndim >= 2]
  vectors = [p for p in model.parameters() if p.ndim < 2]
  optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": t["weight_decay"]},
                                 {"params": vectors, "weight_decay": 0.0}],
                                lr=t["learning_rate"], betas=(t["b1"], t["b2"]), fused=True)
  floor = t["final_lr_ratio"]

  def schedule(step):
    if step < t["warmup_steps"]:
      return step / max(t["warmup_steps"], 1)
    progress = min((step - t["warmup_steps"]) / max(t["num_steps"] - t["warmup_steps"], 1), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

  return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def loss(model: nn.Module, inputs, targets, weights):
  """The studies' loss: mean cross-entropy over the tokens `weights` selects."""
  logits = model(inputs)
  losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
  return (losses * weights.flatten()).sum() / weights.sum().clamp(min=1.0)


def tensors(batch) -> tuple[torch.Tensor, ...]:
  """(inputs, targets, weights) of a study's batch."""
  return (torch.from_numpy(np.asarray(batch["inputs"])).long(),
          torch.from_numpy(np.asarray(batch["targets"])).long(),
          torch.from_numpy(np.asarray(batch["weights"])))


def make_step(model_fields: dict, train_fields: dict, seed: int = 0, compiled: bool = False):
  """A function running one train step on a batch; `compiled`: forward and backward compiled by
  torch.compile (the optimizer is fused either way)."""
  torch.manual_seed(seed)
  model = Transformer(model_fields)
  optimizer, scheduler = make_optimizer(model, train_fields)
  if compiled:
    # dynamo caches compiled code per Python function, across models: a benchmark's ninth model
    # would pass its recompile limit and silently run eager
    torch._dynamo.reset()
  loss_fn = torch.compile(loss) if compiled else loss

  def step(batch):
    value = loss_fn(model, *tensors(batch))
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    nn.utils.clip_grad_norm_(model.parameters(), train_fields["grad_clip"], foreach=True)
    optimizer.step()
    scheduler.step()
    return value.detach()

  return step


def set_threads(count: int) -> None:
  """Intra-op threads; 0 keeps PyTorch's default (one per core)."""
  if count:
    torch.set_num_threads(count)


def threads() -> int:
  return torch.get_num_threads()
