"""MFU of a 12-layer d_model 1024 causal decoder train step on one GPU (bf16, cuDNN attention).

    python benchmarks/gpu_mfu.py cudnn 32   # model.kernels (cudnn or jax_nn), batch size
"""
import functools
import sys
import time

import jax
import numpy as np
import optax
from flax import nnx

from models import Transformer, model_config
from models.transformer import num_params

impl = sys.argv[1] if len(sys.argv) > 1 else "cudnn"
V, L, D, T, B = 32768, 12, 1024, 1024, int(sys.argv[2]) if len(sys.argv) > 2 else 32
cfg = model_config(vocab_size=V, num_outputs=V, d_model=D, num_heads=16, num_layers=L, d_ff=4 * D,
                   max_len=T, causal=True, dtype="bfloat16", kernels=impl)
model = Transformer(cfg, rngs=nnx.Rngs(0))
graphdef, params = nnx.split(model, nnx.Param)
params = nnx.to_pure_dict(params)
tx = optax.adamw(1e-4)
state = (params, tx.init(params))

def loss_fn(p, tokens):
  logits = nnx.merge(graphdef, p)(tokens[:, :-1])
  return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

@functools.partial(jax.jit, donate_argnums=0)
def step(state, tokens):
  p, o = state
  loss, g = jax.value_and_grad(loss_fn)(p, tokens)
  u, o = tx.update(g, o, p)
  return (optax.apply_updates(p, u), o), loss

tokens = jax.random.randint(jax.random.key(0), (B, T + 1), 0, V)
for _ in range(3): state, loss = step(state, tokens)
loss.block_until_ready()
times = []
for _ in range(10):
  t0 = time.perf_counter(); state, loss = step(state, tokens); loss.block_until_ready(); times.append(time.perf_counter() - t0)
dt = float(np.median(times))
n = num_params(model); n_embed = V * D
flops_per_token = 6 * (n - n_embed) + 12 * L * T * D  # PaLM accounting: matmuls incl. head, attention fwd+bwd
achieved = flops_per_token * B * T / dt
print(f"impl={impl} B={B} T={T} params={n/1e6:.1f}M step={dt*1000:.1f}ms tokens/s={B*T/dt:,.0f} "
      f"TFLOP/s={achieved/1e12:.1f} MFU(989 dense bf16)={achieved/989e12*100:.1f}%", flush=True)
