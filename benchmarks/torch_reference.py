"""The benchmark's model and optimizer written plainly in PyTorch (eager, CPU), nanoGPT-style.

Same shapes and arithmetic as models/transformer.py with vanilla attention and learned positions:
token + position embeddings, pre-norm blocks (fused QKV without bias, output projection without
bias, GELU MLP with biases), a final norm and a biased head; AdamW with weight decay on matrices
only, global-norm clipping and a warmup-cosine schedule, as experiments/train.py builds them.

    step = make_step(model_fields, train_fields)   # one call = one optimizer step on its batch
    step(batch)                                     # batch: dict of NumPy arrays, as a study's
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
  def __init__(self, d: int, heads: int, d_ff: int, causal: bool):
    super().__init__()
    self.heads, self.causal = heads, causal
    self.attn_norm = nn.LayerNorm(d, eps=1e-6)
    self.qkv = nn.Linear(d, 3 * d, bias=False)
    self.out = nn.Linear(d, d, bias=False)
    self.mlp_norm = nn.LayerNorm(d, eps=1e-6)
    self.wi = nn.Linear(d, d_ff)
    self.wo = nn.Linear(d_ff, d)

  def forward(self, x):
    b, t, d = x.shape
    q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
    y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       is_causal=self.causal)
    x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
    return x + self.wo(F.gelu(self.wi(self.mlp_norm(x)), approximate="tanh"))


class Transformer(nn.Module):
  def __init__(self, m):
    super().__init__()
    self.embed = nn.Embedding(m["vocab_size"], m["d_model"])
    self.positions = nn.Embedding(m["max_len"], m["d_model"])
    self.blocks = nn.ModuleList(Block(m["d_model"], m["num_heads"], m["d_ff"], m["causal"])
                                for _ in range(m["num_layers"]))
    self.final_norm = nn.LayerNorm(m["d_model"], eps=1e-6)
    self.head = nn.Linear(m["d_model"], m["num_outputs"])
    for p in self.parameters():
      if p.ndim >= 2:
        nn.init.normal_(p, std=0.02)

  def forward(self, tokens):
    x = self.embed(tokens) + self.positions.weight[:tokens.shape[1]]
    for block in self.blocks:
      x = block(x)
    return self.head(self.final_norm(x))


def make_optimizer(model: nn.Module, t):
  """AdamW (decay on matrices only) with the train loop's warmup-cosine schedule."""
  matrices = [p for p in model.parameters() if p.ndim >= 2]
  vectors = [p for p in model.parameters() if p.ndim < 2]
  optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": t["weight_decay"]},
                                 {"params": vectors, "weight_decay": 0.0}],
                                lr=t["learning_rate"], betas=(t["b1"], t["b2"]))

  def schedule(step):
    if step < t["warmup_steps"]:
      return step / max(t["warmup_steps"], 1)
    progress = min((step - t["warmup_steps"]) / max(t["num_steps"] - t["warmup_steps"], 1), 1.0)
    return 0.5 * (1 + math.cos(math.pi * progress))

  return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def make_step(model_fields: dict, train_fields: dict, seed: int = 0):
  """A function running one train step on a batch (weighted cross-entropy, as the studies')."""
  torch.manual_seed(seed)
  model = Transformer(model_fields)
  optimizer, scheduler = make_optimizer(model, train_fields)

  def step(batch):
    inputs, targets, weights = (torch.from_numpy(np.asarray(batch[k]))
                                for k in ("inputs", "targets", "weights"))
    logits = model(inputs.long())
    losses = F.cross_entropy(logits.flatten(0, 1), targets.long().flatten(), reduction="none")
    loss = (losses * weights.flatten()).sum() / weights.sum().clamp(min=1.0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), train_fields["grad_clip"])
    optimizer.step()
    scheduler.step()
    return loss.item()

  return step


def set_threads(count: int) -> None:
  """Intra-op threads; 0 keeps PyTorch's default (one per core)."""
  if count:
    torch.set_num_threads(count)


def threads() -> int:
  return torch.get_num_threads()
