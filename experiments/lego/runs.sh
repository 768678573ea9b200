#!/usr/bin/env bash
# Five models x two seeds on the LEGO study (n = 12, loss on chain positions 1-6), then their evaluation
# on held-out chains and on tree-shaped sentences (the shortcut check) and their heads' scores, into
# $RUNS (results.json, tables.md, lego_by_position.png, lego_tree.png). docs/results/lego.md's
# comparison uses the sweeps `compare` and `compare_mimic` of experiments/configs/lego.py instead.
#
#   bash experiments/lego/runs.sh                       # JOBS runs at a time (default 1)
#   JOBS=10 PY=python3 bash experiments/lego/runs.sh    # all at once, e.g. on one GPU
#
# VARIANT is appended to the config's variant string (e.g. VARIANT=layers=3,d_model=64), EXTRA to every
# training command (e.g. EXTRA="--config.num_steps=500"), MIMIC_EXTRA to the mimic runs only
# (e.g. MIMIC_EXTRA="--config.mimic.num_steps=150").
set -euo pipefail
RUNS=${RUNS:-runs/lego_attention}
PY=${PY:-.venv/bin/python}
JOBS=${JOBS:-1}
SEEDS=${SEEDS:-"0 1"}
EXTRA=${EXTRA:-}
MIMIC_EXTRA=${MIMIC_EXTRA:-}
V=${VARIANT:+,$VARIANT}
CFG=experiments/configs/lego.py
mkdir -p "$RUNS/logs"
for s in $SEEDS; do
  echo "$PY -m experiments.lego --config=$CFG:attention=vanilla,tied=False,seed=$s$V --workdir=$RUNS/vanilla_s$s $EXTRA"
  echo "$PY -m experiments.lego --config=$CFG:attention=vanilla,tied=True,seed=$s$V --workdir=$RUNS/tied_s$s $EXTRA"
  echo "$PY -m experiments.lego.mimic --config=$CFG:mimic,tied=False,seed=$s$V --workdir=$RUNS/mimic_s$s $EXTRA $MIMIC_EXTRA"
  echo "$PY -m experiments.lego --config=$CFG:tied=False,seed=$s$V --config.model.attention=lego --workdir=$RUNS/lego_s$s $EXTRA"
  echo "$PY -m experiments.lego --config=$CFG:tied=False,seed=$s$V --config.model.attention=conv_qkv --workdir=$RUNS/conv_qkv_s$s $EXTRA"
done | xargs -P "$JOBS" -I{} sh -c '{} > "$0/logs/$(echo "{}" | sed "s/.*--workdir=[^ ]*\/\([^ ]*\).*/\1/").log" 2>&1' "$RUNS"
$PY -m experiments.lego.evaluation evaluate "$RUNS"/*_s[0-9]* --out="$RUNS/results.json"
$PY -m experiments.lego.evaluation report "$RUNS/results.json" --figures="$RUNS" | tee "$RUNS/tables.md"
