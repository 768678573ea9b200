"""The program generator's throughput (one core: it is single-threaded Python) against what the
programs study's train step consumes, timed in turns so both see the same machine load.

    python -m benchmarks.programs_generator                 # the default study
    python -m benchmarks.programs_generator --variant=smoke

The target: programs/s >= 20x the programs one train step consumes per second.
"""
from __future__ import annotations

import argparse
import json

from benchmarks import benchmark
from experiments.configs import programs as programs_configs
from experiments.programs import ProgramsStudy


def measure(variant: str = "", repeats: int = 20, warmup: int = 3) -> dict:
  config = programs_configs.get_config(variant or None)
  study = ProgramsStudy(config)
  size = config.batch_size
  step, _ = benchmark.step_runner(config, study)
  generate = lambda i: study.batch("train", 10_000 + i, size)
  gen_times, step_times = benchmark.time_interleaved([generate, step], warmup, repeats)
  gen, step = benchmark.summary(gen_times), benchmark.summary(step_times)
  produced = size / gen["median_s"]
  consumed = size / step["median_s"]
  return {"variant": variant or "default", "batch": size, "seq_len": study.task.seq_len,
          "generator_programs_per_s": produced, "step_median_s": step["median_s"],
          "step_programs_per_s": consumed, "ratio": produced / consumed,
          "generator": gen, "step": step}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--variant", default="")
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  args = parser.parse_args(argv)
  result = measure(args.variant, args.repeats, args.warmup)
  print(f"{result['variant']}: generator {result['generator_programs_per_s']:,.0f} programs/s; "
        f"train step {1000 * result['step_median_s']:.1f} ms for {result['batch']} programs "
        f"({result['step_programs_per_s']:,.0f} programs/s); ratio {result['ratio']:.1f}x "
        f"(target >= 20x)")
  print(json.dumps(result))


if __name__ == "__main__":
  main()
