"""The studies' training step written plainly in PyTorch (CPU), nanoGPT-style, for the benchmark.

The model is models/pytorch.py's (the same shapes and arithmetic as models/transformer.py; it is also
what exported models load into). AdamW (fused) with weight decay on matrices only, global-norm
clipping and a warmup-cosine schedule, as experiments/runtime/train.py builds them; the loss is the
studies' weighted cross-entropy.

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

from models.pytorch import Transformer, load_params  # noqa: F401  (load_params: for callers)


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
