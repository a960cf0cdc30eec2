#!/bin/bash
# The baseline and peer rows of the real-data suite, one row at a time, timed, in the bench venv
# (docs/results/forecasting.md, "Peers"). They do not depend on smr_ts, so their records are kept in
# docs/results/ and a full run merges them instead of fitting them again:
#   bash benchmarks/forecast_real_peers.sh v1   # Quinidine bank_calls us_employment elecdemand ChickWeight
#   bash benchmarks/forecast_real_peers.sh v2   # a10 sunspot.month Phenobarb gasoline gold
cd "$(dirname "$0")/.."
case "$1" in
  v1) sets="Quinidine bank_calls us_employment elecdemand ChickWeight" ;;
  v2) sets="a10 sunspot.month Phenobarb gasoline gold" ;;
  *) echo "usage: $0 v1|v2" >&2; exit 2 ;;
esac
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH="$PWD"
for model in "Last value" "Seasonal naive" "statsforecast AutoETS" "statsforecast AutoARIMA" "neuralforecast NHITS"; do
  start=$(date +%s)
  echo "=== $model start $(date -u +%H:%M:%S)"
  # shellcheck disable=SC2086  # the data set names are words
  timeout 3000 .venv-bench/bin/python benchmarks/forecast_real.py --datasets $sets \
    --models "$model" --jobs 1 --threads 1 --json "runs/forecast_real_$1_peers.json" --out "runs/forecast_real_$1_peers.md"
  echo "=== $model rc $? wall $(( $(date +%s) - start )) s"
done
echo ALLDONE
# then copy the records of runs/forecast_real_v1_peers.json and runs/forecast_real_v2_peers.json into
# docs/results/forecast_real_peers.json.
