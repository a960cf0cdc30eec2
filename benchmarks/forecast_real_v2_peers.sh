#!/bin/bash
# The baseline and peer rows on the five suite-v2 data sets, one row at a time, timed, in the bench venv
# (docs/results/forecasting.md, "Peers"). Their records are kept in docs/results/forecast_real_v2_peers.json:
# they do not depend on smr_ts, so a full run merges them instead of fitting them again.
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH="$PWD"
for model in "Last value" "Seasonal naive" "statsforecast AutoETS" "statsforecast AutoARIMA" "neuralforecast NHITS"; do
  start=$(date +%s)
  echo "=== $model start $(date -u +%H:%M:%S)"
  timeout 3000 .venv-bench/bin/python benchmarks/forecast_real.py --datasets a10 sunspot.month Phenobarb gasoline gold \
    --models "$model" --jobs 1 --threads 1 --json runs/forecast_real_v2_peers.json --out runs/forecast_real_v2_peers.md
  echo "=== $model rc $? wall $(( $(date +%s) - start )) s"
done
echo ALLDONE
