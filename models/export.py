"""Models leave the codebase: a run's parameters and config in one framework-neutral file in the
safetensors format (an 8-byte little-endian header size, a JSON header naming each tensor's dtype,
shape and byte range, then the raw little-endian bytes), written and read here with NumPy alone.

    python -m models.export --workdir=runs/lego --study=lego --out=lego.safetensors

Tensor names are our parameter paths joined by "." (`embed`, `blocks.0.attn.qkv`, `head`), in our
layouts (models/transformer.py; a tied model holds one block). The header's `__metadata__` holds
the model's config ("model", JSON: every field models.model_config takes), the run's config
("config", JSON) and its step ("step"). models/pytorch.py's `from_export` opens it in PyTorch;
any safetensors reader opens it as arrays.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

# safetensors' dtype codes of the dtypes a parameter tree holds
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "BOOL": np.bool_}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


def flatten(params, prefix: str = "") -> dict[str, np.ndarray]:
  """A nested parameter tree (dicts, lists) as {"a.b.0.c": array}."""
  items = params.items() if isinstance(params, dict) else enumerate(params)
  flat = {}
  for key, value in items:
    name = f"{prefix}{key}"
    if isinstance(value, (dict, list, tuple)):
      flat.update(flatten(value, name + "."))
    else:
      flat[name] = np.asarray(value)
  return flat


def unflatten(flat: dict[str, np.ndarray]) -> dict:
  """`flatten`'s inverse; path parts made of digits become int keys (as in our parameter trees)."""
  tree = {}
  for name, value in flat.items():
    node, *parts = tree, *name.split(".")
    for part in parts[:-1]:
      node = node.setdefault(int(part) if part.isdigit() else part, {})
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
  return tree


def save(path: str, params, model_config: dict, metadata: dict[str, str] | None = None) -> int:
  """Writes `params` and the model's config (and further string metadata) to `path`, atomically;
  returns the number of tensors."""
  flat = flatten(params)
  header, offset = {}, 0
  for name in sorted(flat):
    array = flat[name]
    if array.dtype not in CODES:
      raise ValueError(f"params: {name} has dtype {array.dtype}; allowed: "
                       f"{', '.join(str(np.dtype(d)) for d in DTYPES.values())}")
    header[name] = {"dtype": CODES[array.dtype], "shape": list(array.shape),
                    "data_offsets": [offset, offset + array.nbytes]}
    offset += array.nbytes
  header["__metadata__"] = {"model": json.dumps(model_config), **(metadata or {})}
  blob = json.dumps(header, separators=(",", ":")).encode()
  blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
  partial = path + ".partial"
  with open(partial, "wb") as f:
    f.write(struct.pack("<Q", len(blob)) + blob)
    for name in sorted(flat):
      f.write(np.ascontiguousarray(flat[name]).astype(flat[name].dtype.newbyteorder("<")).tobytes())
  os.replace(partial, path)
  return len(flat)


def load(path: str) -> tuple[dict, dict]:
  """(parameter tree, metadata) of a file `save` wrote; the metadata's "model" and "config" parsed
  from JSON, "step" an int."""
  with open(path, "rb") as f:
    (size,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(size))
    data = f.read()
  metadata = header.pop("__metadata__", {})
  flat = {}
  for name, entry in header.items():
    start, end = entry["data_offsets"]
    dtype = np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<")
    flat[name] = np.frombuffer(data[start:end], dtype).reshape(entry["shape"])
  metadata = {**metadata, **{k: json.loads(metadata[k]) for k in ("model", "config")
                             if k in metadata}}
  if "step" in metadata:
    metadata["step"] = int(metadata["step"])
  return unflatten(flat), metadata


def export_run(workdir: str, study: str, out: str) -> int:
  """Writes the latest checkpoint of the run in `workdir` (of study `study`) to `out`."""
  import jax  # noqa: E402  (restoring a run needs the studies; the file format needs neither)
  from experiments.runtime import restore
  run = restore.load(workdir, study, fill_defaults=True)
  return save(out, jax.device_get(run.params), run.model.config.to_dict(),
              {"config": json.dumps(run.config.to_dict()), "step": str(run.step),
               "study": study})


def main(argv=None):
  import experiments
  from tasks.cli import Parser
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a run's workdir")
  parser.add_argument("--study", required=True, help=", ".join(experiments.STUDIES))
  parser.add_argument("--out", required=True, help="the file to write (.safetensors)")
  args = parser.parse_args(argv)
  if args.study not in experiments.STUDIES:
    parser.error(f"--study: unknown {args.study!r}; allowed: {', '.join(experiments.STUDIES)}")
  try:
    count = export_run(args.workdir, args.study, args.out)
  except ValueError as e:
    parser.error(str(e))
  print(f"{args.out}: {count} tensors of {args.workdir}")


if __name__ == "__main__":
  main()
