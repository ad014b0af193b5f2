#!/bin/bash
# Per-task MemN2N, "choose on 10-fold cross-validation, then refit on the whole training file"
# (docs/results.md, session 12). Each task keeps its setting of the per-task table; the refit stops
# at the epoch whose mean validation accuracy over the folds is highest (valid_table.py --epoch).
#
#   export MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2
#   benchmarks/cv_refit.sh cv a & benchmarks/cv_refit.sh cv b; wait     # the sweeps, one queue a core
#   benchmarks/cv_refit.sh refit 1-20                                  # then train and score (test once)
#
# CV (runs/cv12), OUT (runs/refit12), SEED (0: the refit's seeds SEED..SEED+9) and PYTHON/MEMQA
# (the .venv's) can be set in the environment.
set -euo pipefail
CV=${CV:-runs/cv12}; OUT=${OUT:-runs/refit12}; SEED=${SEED:-0}
PYTHON=${PYTHON:-.venv/bin/python}; MEMQA=${MEMQA:-.venv/bin/memqa}
R50="--set model.relu=true --set encoder.embedding_dim=50"; R100="--set model.relu=true --set encoder.embedding_dim=100"
M20="--set encoder.memory_size=20"; D50="--set encoder.embedding_dim=50"; H2="--set model.hops=2"; RELU="--set model.relu=true"

sweep() { name=$1; shift; $PYTHON benchmarks/valid_sweep.py --folds 10 "$@" --out $CV/$name.json > $CV/$name.log 2>&1; }

# task -> "its sweep's name|its memqa train flags"
setting() {
  case $1 in
    3) echo "t3-relu50-m20-h2|--relu --embedding-dim 50 --memory-size 20 --hops 2" ;;
    5) echo "t5-relu50-rn20|--relu --embedding-dim 50 --random-noise 0.2" ;;
    7) echo "t7-d50-m20|--embedding-dim 50 --memory-size 20" ;;
    8|18) echo "t8-18-relu50|--relu --embedding-dim 50" ;;
    9) echo "t9-h2|--hops 2" ;;
    10) echo "t10-relu100|--relu --embedding-dim 100" ;;
    17) echo "t17-relu20-drop0.1|--relu --dropout 0.1" ;;
    19) echo "t19-d50|--embedding-dim 50" ;;
    2) echo "t2-base|" ;;
    *) echo "base-rest|" ;;
  esac
}

case ${1:-} in
  cv)
    mkdir -p $CV
    if [ "${2:-}" = a ]; then
      sweep t3-relu50-m20-h2 --tasks 3 $R50 $M20 $H2; sweep t10-relu100 --tasks 10 $R100
      sweep t7-d50-m20 --tasks 7 $D50 $M20; sweep t19-d50 --tasks 19 $D50
      sweep t5-relu50-rn20 --tasks 5 $R50 --set model.random_noise=0.2; sweep t9-h2 --tasks 9 $H2
    else
      sweep t2-base --tasks 2; sweep t17-relu20-drop0.1 --tasks 17 $RELU --set model.dropout=0.1
      sweep t8-18-relu50 --tasks 8,18 $R50; sweep base-rest --tasks 1,4,6,11-16,20
    fi ;;
  refit)
    mkdir -p $OUT
    for task in $($PYTHON -c "import sys; from memqa.data.babi import parse_task_range; print(*parse_task_range(sys.argv[1]))" "${2:-1-20}"); do
      IFS='|' read -r name flags <<< "$(setting $task)"
      epochs=$($PYTHON benchmarks/valid_table.py $CV/$name.json --epochs-for $task)
      # shellcheck disable=SC2086
      $MEMQA train --tasks $task --valid-fraction 0 --epochs $epochs --repeats 10 --seed $SEED $flags \
        --out $OUT/task$task > $OUT/task$task.log 2>&1
    done ;;
  *) echo "usage: benchmarks/cv_refit.sh cv a|b  or  benchmarks/cv_refit.sh refit [TASKS]" >&2; exit 2 ;;
esac
