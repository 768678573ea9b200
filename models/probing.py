"""Probing: every layer's attention maps (per head) and residual stream under stable names, and
scores that say which pattern each head follows.

    probes = probing.probe(model, tokens)
    probes["layer_0/head_1/attention"]   # [batch, query, key]
    probes["layer_0/residual"]           # [batch, length, d_model], after the block
    probes["layer_0/head_1/output"]      # [batch, length, head_dim], before the output projection
    probes["layer_0/mlp"]                # [batch, length, d_model], the MLP's output
    scores = probing.head_scores(probes, tokens)   # {"layer_0/head_1": {"association": .., ...}}

The names other than the attention maps are the sites models/interventions.py edits.
`ridge_accuracy` scores a linear probe (ridge regression onto one-hot classes) of hidden states.

Scores (1 = the pure pattern):
  association   attention mass on the other copies of the query's own token, averaged over queries
                that have another copy in view;
  manipulation  attention mass within +-2 positions of the query, averaged over queries.
"""
from __future__ import annotations

import re

import jax
import numpy as np

from models.masking import attention_mask

RIDGE = 1.0  # ridge_accuracy's penalty, on standardised features
WINDOW = 2  # manipulation: keys within +-WINDOW positions of the query
NAME = re.compile(r"^(layer_\d+/head_\d+)/attention$")


def probe(model, tokens, *, positions=None, key_mask=None) -> dict[str, np.ndarray]:
  """Logits, embeddings, per-head attention and output, MLP output and residual stream of one
  batch, as NumPy arrays."""
  logits, captured = model(tokens, positions=positions, key_mask=key_mask, capture=True)
  probes = {"logits": np.asarray(logits)}
  for name, value in jax.device_get(captured).items():
    if name.endswith("/attention"):  # [batch, heads, query, key]: one map per head
      probes.update({f"{name[:-len('attention')]}head_{head}/attention": np.asarray(value[:, head])
                     for head in range(value.shape[1])})
    else:
      probes[name] = np.asarray(value)
  return probes


def head_scores(probes, tokens, *, causal: bool = False, key_mask=None) -> dict[str, dict]:
  """{"layer_i/head_j": {"association": float, "manipulation": float}} for every head probed."""
  tokens = np.asarray(tokens)
  length = tokens.shape[1]
  visible = attention_mask(length, length, causal, key_mask)
  visible = np.ones((1, length, length), bool) if visible is None else np.asarray(visible)[:, 0]
  copies = (tokens[:, :, None] == tokens[:, None, :]) & ~np.eye(length, dtype=bool) & visible
  has_copy = copies.any(-1)
  queries = np.ones(tokens.shape, bool) if key_mask is None else np.asarray(key_mask, bool)
  offset = np.arange(length)[None, :] - np.arange(length)[:, None]
  near = np.abs(offset) <= WINDOW
  scores = {}
  for name, weights in probes.items():
    match = NAME.match(name)
    if match:
      association = (weights * copies).sum(-1)
      manipulation = (weights * near).sum(-1)
      scores[match.group(1)] = {
          "association": float(association[has_copy & queries].mean()),
          "manipulation": float(manipulation[queries].mean())}
  return scores


def name_heads(scores: dict[str, dict], threshold: float = 0.5) -> dict[str, str]:
  """The pattern each head follows ("association", "manipulation" or "other"): its best score if
  that clears `threshold`."""
  names = {}
  for head, score in scores.items():
    best = max(score, key=score.get)
    names[head] = best if score[best] >= threshold else "other"
  return names


def ridge_accuracy(x_train, y_train, x_test, y_test, classes: int) -> float:
  """Test accuracy of a ridge-regression probe from features x [n, d] to labels y [n] in
  0..classes-1, the features standardised by the training set's statistics."""
  mean, std = x_train.mean(0), x_train.std(0) + 1e-6
  xs, xt = (x_train - mean) / std, (x_test - mean) / std
  onehot = np.eye(classes)[y_train]
  w = np.linalg.solve(xs.T @ xs + RIDGE * np.eye(xs.shape[1]), xs.T @ (onehot - onehot.mean(0)))
  return float(((xt @ w).argmax(1) == y_test).mean())
