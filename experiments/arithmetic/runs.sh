#!/usr/bin/env bash
# The reproduction runs of docs/results/arithmetic.md, run in parallel on one GPU machine:
#   bash experiments/arithmetic/runs.sh add OUTDIR   # length generalisation, 5 methods x 3 seeds
#   bash experiments/arithmetic/runs.sh mul OUTDIR   # multiplication formats
#   bash experiments/arithmetic/runs.sh all OUTDIR   # both at once
# Each run writes OUTDIR/<name>/{accuracy_grid.json,accuracy_grid.png,metrics.jsonl,log.txt}; all
# grids are then gathered into OUTDIR/summary.json (plots: python -m experiments.arithmetic.plots).
set -u
study=$1 out=$2
PY=${PYTHON:-python3}
CFG=experiments/configs/arithmetic.py
export XLA_PYTHON_CLIENT_PREALLOCATE=false
ADD="digits=10,eval_digits=15,layers=4,d_model=256,heads=8,steps=${ADD_STEPS:-6000},batch=128,lr=5e-4"
MUL="op=mul,digits=${MUL_DIGITS:-4},eval_digits=${MUL_DIGITS:-4},layers=6,d_model=256,heads=8,steps=${MUL_STEPS:-8000},batch=128,lr=5e-4"
declare -A RUNS
if [ "$study" != mul ]; then
  for seed in 0 1 2; do
    base="$ADD,seed=$seed,format=reverse_operands+reverse"
    RUNS[learned_s$seed]="$base,pos=learned"
    RUNS[random_space_s$seed]="$ADD,seed=$seed,format=reverse_operands+reverse+random_space,pos=learned"
    RUNS[random_embedding_s$seed]="$base,pos=random_embedding"
    RUNS[randomized_s$seed]="$base,pos=randomized"
    RUNS[abacus_s$seed]="$base,pos=abacus"
  done
fi
if [ "$study" != add ]; then
  RUNS[plain]="$MUL,format=plain"
  RUNS[reverse]="$MUL,format=reverse"
  RUNS[pad]="$MUL,format=pad"
  RUNS[pad_reverse]="$MUL,format=pad+reverse"
fi
for name in "${!RUNS[@]}"; do
  mkdir -p "$out/$name"
  ( $PY -m experiments.arithmetic --config="$CFG:${RUNS[$name]}" --workdir="/tmp/runs/$name" \
      --config.eval_every=1000 --config.checkpoint_every=100000 > "$out/$name/log.txt" 2>&1
    cp /tmp/runs/$name/{accuracy_grid.json,accuracy_grid.png,metrics.jsonl} "$out/$name/" ) &
done
wait
$PY - "$out" <<'PYEOF'
import glob, json, os, sys
out = sys.argv[1]
summary = {}
for path in sorted(glob.glob(os.path.join(out, "*", "accuracy_grid.json"))):
  name = os.path.basename(os.path.dirname(path))
  with open(path) as f:
    summary[name] = json.load(f)
  logs = open(os.path.join(out, name, "metrics.jsonl")).read().splitlines()
  summary[name]["curve"] = [json.loads(l) for l in logs if "eval/exact_match" in l]
with open(os.path.join(out, "summary.json"), "w") as f:
  json.dump(summary, f)
print("gathered", len(summary), "runs")
PYEOF
