"""Each positional encoding's defining property."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models import Transformer, model_config
from models import positional as pos_lib
from tasks.arithmetic import ArithmeticTask


def _config(name, **overrides):
  return model_config(**{**dict(vocab_size=20, num_outputs=20, d_model=32, num_heads=4,
                                num_layers=2, d_ff=64, max_len=64, pos_encoding=name), **overrides})


def _encoding(name, **overrides):
  return pos_lib.make(_config(name, **overrides), nnx.Rngs(0))


def _params(module):
  return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


def test_every_name_builds_a_model():
  tokens = jnp.ones((2, 10), jnp.int32)
  for name in pos_lib.ENCODINGS:
    assert Transformer(_config(name), rngs=nnx.Rngs(0))(tokens).shape == (2, 10, 20)


def test_none_is_permutation_equivariant_in_an_encoder():
  model = Transformer(_config("none"), rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(0), (1, 12), 1, 20)
  perm = np.random.default_rng(0).permutation(12)
  np.testing.assert_allclose(model(tokens)[:, perm], model(tokens[:, perm]), atol=1e-5)
  assert _params(_encoding("none")) == 0


def test_learned_reads_one_trainable_row_per_position():
  enc = _encoding("learned")
  out = enc.embed(None, jnp.array([[3, 0, 3]]))
  np.testing.assert_array_equal(out[0, 0], enc.table[...][3])
  np.testing.assert_array_equal(out[0, 0], out[0, 2])
  assert _params(enc) == 64 * 32


def test_sinusoidal_similarity_depends_only_on_offset():
  enc = _encoding("sinusoidal")
  e = enc.embed(None, jnp.arange(40)[None])[0]
  gram = np.asarray(e @ e.T)
  np.testing.assert_allclose(gram[5, 9], gram[25, 29], rtol=1e-4)
  np.testing.assert_allclose(gram[9, 5], gram[30, 26], rtol=1e-4)
  assert not np.isclose(gram[5, 9], gram[5, 12], rtol=1e-3)
  assert _params(enc) == 0


def test_rotary_scores_depend_only_on_relative_offset():
  enc = _encoding("rotary")
  q, k = (jax.random.normal(jax.random.key(i), (1, 6, 4, 8)) for i in range(2))
  def scores(shift):
    rq, rk = enc.rotate(q, k, jnp.arange(6)[None] + shift)
    return jnp.einsum("bqhd,bkhd->bhqk", rq, rk)
  np.testing.assert_allclose(scores(0), scores(37), atol=1e-4)
  raw = jnp.einsum("bqhd,bkhd->bhqk", q, k)
  assert not np.allclose(scores(0), raw, atol=1e-3)  # rotation does change the scores
  rq, _ = enc.rotate(q, k, jnp.arange(6)[None])
  np.testing.assert_allclose(jnp.linalg.norm(rq, axis=-1), jnp.linalg.norm(q, axis=-1), rtol=1e-5)


def test_rotary_tables_from_known_positions_equal_the_traced_ones():
  """The default positions are NumPy (constant tables, no cos/sin in the step); decoding passes
  traced positions. Both must rotate alike."""
  enc = _encoding("rotary")
  q, k = (jax.random.normal(jax.random.key(i), (2, 50, 4, 8)) for i in range(2))
  known = jax.jit(lambda q, k: enc.rotate(q, k, np.arange(50)[None]))
  traced = jax.jit(lambda q, k, p: enc.rotate(q, k, p))
  for a, b in zip(known(q, k), traced(q, k, jnp.arange(50)[None])):
    np.testing.assert_allclose(a, b, atol=2e-5)
  jaxpr = str(jax.make_jaxpr(lambda q, k: enc.rotate(q, k, np.arange(50)[None]))(q, k))
  assert "cos" not in jaxpr and "sin" not in jaxpr


def test_alibi_is_a_per_head_linear_distance_penalty():
  enc = _encoding("alibi")
  pos = jnp.arange(10)[None]
  bias = np.asarray(enc.bias(pos))
  np.testing.assert_allclose(bias, np.asarray(enc.bias(pos + 100)))
  distance = np.abs(np.arange(10)[:, None] - np.arange(10)[None])
  slopes = 2.0 ** (-8.0 * np.arange(1, 5) / 4)
  np.testing.assert_allclose(bias[0], -slopes[:, None, None] * distance, rtol=1e-6)
  one_query = np.asarray(enc.bias(pos[:, 7:8], pos))
  np.testing.assert_allclose(one_query[0, :, 0], bias[0, :, 7])


def test_randomized_positions_are_an_ordered_subset_of_a_longer_range():
  rng = np.random.default_rng(0)
  pos = pos_lib.random_subset_positions(rng, 200, 10, 64)
  assert (np.diff(pos, axis=1) > 0).all()
  assert pos.min() >= 0 and pos.max() < 64
  assert pos.max() > 50  # reaches far past the sequence length
  assert len({tuple(r) for r in pos}) > 190
  with pytest.raises(ValueError, match="model.max_len"):
    pos_lib.random_subset_positions(rng, 1, 65, 64)
  assert pos_lib.ENCODINGS["randomized"].POSITIONS == "random_subset"


def test_random_embedding_tags_identify_tokens_but_carry_no_order():
  enc = _encoding("random_embedding")
  tags = pos_lib.random_tag_positions(np.random.default_rng(0), 2, 30, 64)
  assert all(len(set(row)) == 30 for row in tags)  # every token of a sequence gets its own tag
  assert not (np.diff(tags[0]) > 0).all() and not (tags[0] == tags[1]).all()
  e = np.asarray(enc.embed(None, jnp.array([[5, 9, 2], [9, 5, 7]])))
  # The vector is a function of the tag alone, whichever index carries it.
  np.testing.assert_array_equal(e[0, 0], e[1, 1])
  np.testing.assert_array_equal(e[0, 1], e[1, 0])
  same = np.asarray(enc.embed(None, jnp.array([[5, 9, 5]])))[0]
  np.testing.assert_array_equal(same[0], same[2])
  cos = same[0] @ same[1] / np.linalg.norm(same[0]) / np.linalg.norm(same[1])
  assert abs(cos) < 0.6  # distinct tags are far from parallel
  assert _params(enc) == 1  # only the gain is learned


def test_abacus_gives_one_index_per_significance():
  task = ArithmeticTask(op="add", max_digits=6, format="reverse_operands,reverse")
  batch = task.batch(0, "train", 0, 16)
  tokens = np.concatenate([batch["inputs"], batch["targets"][:, -1:]], 1)
  index = pos_lib.abacus_positions(tokens, task.digit_ids)
  for row_tokens, row_index in zip(tokens, index):
    text = task.vocab.decode(row_tokens).split()
    plus, eq, eos = text.index("+"), text.index("="), text.index("[EOS]")
    for start, stop in ((1, plus), (plus + 1, eq), (eq + 1, eos)):
      # reversed: the k-th written digit has place value 10^(k-1), and index k
      np.testing.assert_array_equal(row_index[start:stop], 1 + np.arange(stop - start))
  assert (index[~np.isin(tokens, task.digit_ids)] == 0).all()
  shifted = pos_lib.abacus_positions(tokens, task.digit_ids, offset=np.full((16, 1), 40))
  np.testing.assert_array_equal(shifted, np.where(index > 0, index + 40, 0))
  as_jax = pos_lib.abacus_positions(jnp.asarray(tokens), task.digit_ids, xp=jnp)
  np.testing.assert_array_equal(as_jax, index)


def test_abacus_skips_spaces_and_embeds_digits_only():
  digit_ids, space = (1, 2, 3), 9
  tokens = np.array([[7, 1, 9, 2, 3, 8, 3, 9, 1]])
  np.testing.assert_array_equal(pos_lib.abacus_positions(tokens, digit_ids, (space,)),
                                [[0, 1, 0, 2, 3, 0, 1, 0, 2]])
  enc = _encoding("abacus")
  out = np.asarray(enc.embed(None, jnp.array([[0, 1, 2, 0]])))
  assert (out[0, [0, 3]] == 0).all() and (np.abs(out[0, [1, 2]]) > 0).all()

