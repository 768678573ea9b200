"""Cached batched greedy decoding against a slow reference that reruns the whole model each step."""
import functools

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models import Transformer, model_config
from models import positional as pos_lib
from models.decoding import greedy_generate

VOCAB, EOS = 13, 12


def _model(pos_encoding="learned", **overrides):
  # A large init makes logits decisive, so float rounding cannot flip an argmax.
  config = model_config(**{**dict(vocab_size=VOCAB, num_outputs=VOCAB, d_model=32, num_heads=4,
                                  num_layers=2, d_ff=64, max_len=64, causal=True, init_std=0.3,
                                  pos_encoding=pos_encoding), **overrides})
  return Transformer(config, rngs=nnx.Rngs(1))


def _prompts(seed=0, batch=5, length=7):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(2, length + 1, size=batch)
  lengths[0] = length
  prompts = rng.integers(1, EOS, size=(batch, length)).astype(np.int32)
  prompts[np.arange(length)[None] >= lengths[:, None]] = 0
  return prompts, lengths


def slow_greedy(model, prompts, lengths, steps, positions=None, position_fn=None, eos_id=None):
  """One row at a time, the full model on the whole sequence for every new token."""
  rows = []
  for b in range(len(prompts)):
    seq, new, stopped = list(prompts[b, :lengths[b]]), [], False
    for _ in range(steps):
      tokens = jnp.asarray([seq])
      if position_fn is not None:
        pos = position_fn(tokens)
      elif positions is not None:
        pos = jnp.asarray(positions[b:b + 1, :len(seq)])
      else:
        pos = None
      token = 0 if stopped else int(model(tokens, positions=pos)[0, -1].argmax())
      stopped = stopped or token == eos_id  # a 0 the model emits itself does not stop the row
      new.append(token)
      seq.append(token)
    rows.append(new)
  return np.array(rows)


@pytest.mark.parametrize("pos_encoding", ["learned", "rotary", "alibi"])
def test_matches_step_by_step_reference(pos_encoding):
  model = _model(pos_encoding)
  prompts, lengths = _prompts()
  fast = greedy_generate(model, prompts, lengths, 6)
  np.testing.assert_array_equal(fast, slow_greedy(model, prompts, lengths, 6))


def test_caller_positions_and_position_fn():
  model = _model("randomized")
  prompts, lengths = _prompts(seed=1)
  positions = pos_lib.random_subset_positions(np.random.default_rng(0), 5, 7 + 5, 64)
  fast = greedy_generate(model, prompts, lengths, 5, positions=positions)
  np.testing.assert_array_equal(fast, slow_greedy(model, prompts, lengths, 5, positions=positions))

  model = _model("abacus")
  digits = tuple(range(1, 6))  # tokens 1..5 play digits, the rest break runs
  fn = functools.partial(pos_lib.abacus_positions, digit_ids=digits, xp=jnp)
  fast = greedy_generate(model, prompts, lengths, 5, position_fn=fn)
  np.testing.assert_array_equal(fast, slow_greedy(model, prompts, lengths, 5, position_fn=fn))


def test_rows_stop_at_eos_and_are_padded():
  model = _model()
  prompts, lengths = _prompts(seed=2, batch=8)
  free = greedy_generate(model, prompts, lengths, 8)
  # Pretend the token each row emits at step 2 is the end token: everything after becomes padding.
  eos = int(free[0, 2])
  out = greedy_generate(model, prompts, lengths, 8, eos_id=eos)
  np.testing.assert_array_equal(out, slow_greedy(model, prompts, lengths, 8, eos_id=eos))
  first = np.argmax(out == eos, axis=1)
  for row, stop in zip(out, first):
    if eos in row:
      assert (row[stop + 1:] == 0).all()


def test_encoder_is_refused():
  with pytest.raises(ValueError, match="model.causal"):
    greedy_generate(_model(causal=False), *_prompts(), 3)
