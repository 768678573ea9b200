"""Export: a run's parameters and config round-trip through the file bit for bit, the file is
safetensors (read by the safetensors package where installed), and an exported encoder or decoder
loaded into PyTorch gives our logits."""
import json
import struct

import jax
import numpy as np
import pytest
from flax import nnx

from experiments.configs.lego import get_config
from experiments.lego import LegoStudy
from experiments.runtime import train
from models import Transformer, export, model_config

quiet = lambda *_: None


def _decoder(**overrides):
  config = model_config(**{**dict(vocab_size=40, num_outputs=40, d_model=32, num_heads=4,
                                  num_layers=2, d_ff=64, max_len=30, causal=True), **overrides})
  model = Transformer(config, rngs=nnx.Rngs(3))
  return model, jax.device_get(nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def test_parameters_and_config_round_trip_bit_for_bit(tmp_path):
  model, params = _decoder()
  path = str(tmp_path / "m.safetensors")
  count = export.save(path, params, model.config.to_dict(), {"step": "7"})
  loaded, meta = export.load(path)
  assert count == len(export.flatten(params)) and meta["step"] == 7
  assert meta["model"] == json.loads(json.dumps(model.config.to_dict()))  # tuples as lists
  assert jax.tree.structure(loaded) == jax.tree.structure(params)
  jax.tree.map(np.testing.assert_array_equal, loaded, params)


def test_the_file_is_safetensors(tmp_path):
  model, params = _decoder()
  path = str(tmp_path / "m.safetensors")
  export.save(path, params, model.config.to_dict())
  raw = open(path, "rb").read()
  (size,) = struct.unpack("<Q", raw[:8])
  header = json.loads(raw[8:8 + size])
  end = max(e["data_offsets"][1] for k, e in header.items() if k != "__metadata__")
  assert len(raw) == 8 + size + end and size % 8 == 0
  qkv = header["blocks.1.attn.qkv"]
  start, stop = qkv["data_offsets"]
  np.testing.assert_array_equal(
      np.frombuffer(raw[8 + size + start:8 + size + stop], "<f4").reshape(qkv["shape"]),
      params["blocks"][1]["attn"]["qkv"])
  safetensors = pytest.importorskip("safetensors.numpy")
  theirs = safetensors.load_file(path)
  assert set(theirs) == set(export.flatten(params))
  for name, value in export.flatten(params).items():
    np.testing.assert_array_equal(theirs[name], value)


@pytest.mark.parametrize("overrides", [
    dict(), dict(tied_layers=True), dict(pos_encoding="rotary"),
    dict(causal=False, attention="lego", lego_heads=(1, 1), tied_layers=True)],
    ids=["decoder", "decoder,tied", "decoder,rotary", "encoder,lego,tied"])
def test_an_exported_model_in_pytorch_gives_our_logits(tmp_path, overrides):
  torch = pytest.importorskip("torch")
  from models import pytorch
  model, params = _decoder(**overrides)
  path = str(tmp_path / "m.safetensors")
  export.save(path, params, model.config.to_dict())
  tokens = np.random.default_rng(0).integers(0, 40, size=(3, 30))
  with torch.no_grad():
    theirs = pytorch.from_export(path)(torch.from_numpy(tokens).long()).numpy()
  np.testing.assert_allclose(theirs, model(tokens), rtol=1e-4, atol=1e-5)


def test_the_command_exports_a_lego_run_that_pytorch_reproduces(tmp_path):
  torch = pytest.importorskip("torch")
  from models import pytorch
  config = get_config("smoke")
  config.update(dict(num_steps=2, warmup_steps=1, log_every=2, eval_every=2, checkpoint_every=2))
  result = train.train_and_evaluate(config, str(tmp_path / "run"), LegoStudy(config), print_fn=quiet)
  path = str(tmp_path / "lego.safetensors")
  export.main([f"--workdir={tmp_path / 'run'}", "--study=lego", f"--out={path}"])
  _, meta = export.load(path)
  assert meta["step"] == 2 and meta["config"]["task"] == config.task.to_dict()
  tokens = LegoStudy(config).batch("test", 0, 4)["inputs"]
  ours = result["trainer"].model(result["state"]["params"])(tokens)
  with torch.no_grad():
    theirs = pytorch.from_export(path)(torch.from_numpy(tokens).long()).numpy()
  np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)


def test_the_command_names_a_bad_study(tmp_path, capsys):
  with pytest.raises(SystemExit):
    export.main([f"--workdir={tmp_path}", "--study=nope", f"--out={tmp_path / 'x'}"])
  assert "--study: unknown 'nope'; allowed: lego" in capsys.readouterr().err
