#!/usr/bin/env bash
# RecBole SASRec and GRU4Rec on both leave-one-out splits, 3 seeds, trained until
# validation NDCG@10 stops improving (patience 10, no cap below RecBole's 300 epochs).
# Resumable: every run saves its trainer state after each epoch under
# .cache/recbole-resume/, and a finished run is not trained again, so after an
# interruption just start this script again. One torch thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH_PY=${BENCH_PY:-.venv-bench/bin/python}
for split in amazon-mi-loo ml-100k-loo; do
  for seed in 0 1 2; do
    OMP_NUM_THREADS=1 "$BENCH_PY" benchmarks/peers/recbole_runner.py --split "$split" \
      --models SASRec GRU4Rec --seed "$seed" --threads 1
  done
done
