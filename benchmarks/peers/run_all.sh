#!/usr/bin/env bash
# Every peer benchmark of issue 5, as it made benchmarks/results/peers_*.{json,md}
# (`make bench-peers`). Two streams run side by side, one torch thread each, on 2 cores:
# RecBole (general models, then SASRec) and mtlrec (census side by side, then ranking).
# SASRec and GRU4Rec train until validation NDCG@10 stops improving (patience 10, RecBole's
# 300-epoch default as the only cap); on this CPU an ML-100K SASRec epoch takes minutes, so
# their runs save their state after every epoch and resume when started again
# (benchmarks/peers/sequential_peers.sh runs just them).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}               # mtlrec's venv (make install)
BENCH_PY=${BENCH_PY:-.venv-bench/bin/python}  # mtlrec[bench]: RecBole, torch-rechub
OUT=benchmarks/results/peers
mkdir -p "$OUT"

for dataset in ml-100k amazon-mi; do
  for protocol in random loo; do
    "$PY" benchmarks/peers/split_files.py --dataset "$dataset" --split "$protocol"
  done
done

recbole() {
  for split in ml-100k-random amazon-mi-random; do
    for seed in 0 1 2; do
      "$BENCH_PY" benchmarks/peers/recbole_runner.py --split "$split" \
        --models Pop ItemKNN BPR LightGCN --seed "$seed" --threads 1
    done
  done
  BENCH_PY="$BENCH_PY" benchmarks/peers/sequential_peers.sh
}

mtlrec() {
  "$BENCH_PY" benchmarks/peers/census.py --seeds 0 1 2 --threads 1
  for split in amazon-mi-loo ml-100k-random ml-100k-loo amazon-mi-random; do
    "$PY" benchmarks/peers/mtlrec_ranking.py --split "$split" --seeds 0 1 2 --threads 1
  done
}

recbole > "$OUT/recbole.log" 2>&1 &
recbole_pid=$!
mtlrec > "$OUT/mtlrec.log" 2>&1 &
mtlrec_pid=$!
wait "$recbole_pid"
wait "$mtlrec_pid"
"$PY" benchmarks/peers/summarize.py
