#!/usr/bin/env bash
# The full-budget pendulum runs of the tuned recipes, all at once on one GPU, in one device call.
#
# S6, S6+SMR and GRU-dt with their probe-chosen recipes (--tuned: smr_ts.recipes.PENDULUM_BACKBONE_SETTINGS),
# 3 seeds each, the full recipe (2000/1000/1000 sequences, 100 epochs), with the sampling-shift test sets:
# 9 processes sharing the GPU, one CPU thread each. On a shared H100, 18 such runs took 7-8 s per epoch
# (about 13 minutes); with 9 on a 16-core machine each has a core of its own, so expect roughly 4-5 s per
# epoch, 7-8 minutes: inside the 10 minutes one device command may run, but not by much. Give the call
# timeout_s=600 and write under $OUT, so finished runs come back even if the last ones do not.
# WITH_S5=1 adds S5 and S5+SMR seeds 3 and 4 (5 seeds each with the runs already on the page).
#
# The runs files are copied to "$OUT" at the end (the device tool brings back at most 8 files from there,
# so the per-run part files stay in "$WORK", default runs/device). The runs stop after $LIMIT seconds
# (default 560, inside a device command's 10 minutes); what finished by then is kept. Extra arguments go
# to benchmarks/pendulum.py and win over the ones here, which is how the script is tried on a CPU at a
# tiny size first:
#
#   OUT=/tmp/pend bash benchmarks/pendulum_device.sh --device cpu --epochs 2 --n-train 16 --n-valid 8 --n-test 8
#
# Then, on the page: python benchmarks/pendulum.py --results docs/results/pendulum_runs_e100.json \
#   --merge "$OUT/pendulum_tuned_e100.json" --report-only
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs}
work=${WORK:-runs/device}
mkdir -p "$out" "$work"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python}  # the interpreter that has smr_ts installed (a test passes its own)
common=(--epochs 100 --shift --device cuda --threads 1 --no-report)
pids=()
timeout "${LIMIT:-560}" "$python" benchmarks/pendulum.py --configs s6 s6+smr gru_dt --seeds 0 1 2 --tuned --jobs 9 \
  --results "$work/pendulum_tuned_e100.json" "${common[@]}" "$@" &
pids+=($!)
if [ "${WITH_S5:-0}" = 1 ]; then
  timeout "${LIMIT:-560}" "$python" benchmarks/pendulum.py --configs s5 s5+smr --seeds 3 4 --jobs 4 \
    --results "$work/pendulum_s5_seeds34_e100.json" "${common[@]}" "$@" &
  pids+=($!)
fi
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
cp "$work"/*.json "$out"/ 2>/dev/null || true
exit "$status"
