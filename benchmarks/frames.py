"""Time the conversion of a long frame to tensors (100,000 rows x 600 value columns) and write a table to docs/.

Usage (from the repository root)::

    python benchmarks/frames.py [--repeats 11] [--out docs/benchmarks/frames.md]

The frame: 1000 series of 100 rows at exponential gaps (tz-naive datetimes), 600 float32
value columns with 10% NaN, rows shuffled so every series has to be gathered and sorted.
Timed over ``--repeats`` runs each (wall-clock median and minimum, median CPU time):

- the pandas layer, step by step: ``split_frame`` (ids, raw times, value columns),
  ``numeric_values`` (float32 array, inf check), ``to_panel`` (group, sort, pad, mask);
- the estimator's tensor building on that panel (``SMRForecaster._panel_tensors``: scaling with
  the fitted feature scalers, zero-filling, gaps), with scalers fitted on a few series;
- ``predict(X)`` end to end, which adds the forward pass of a tiny model (d_model=8, one S5
  layer) to the conversion.

numpy and pandas run these steps on one thread; torch is set to one thread as well.
"""

import os

# Thread pools size themselves at import time, so this must come before numpy / torch.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from smr_ts import SMRForecaster  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
from _machine import command, cpu_model, software, today  # noqa: E402
from smr_ts.data.frames import numeric_values, split_frame  # noqa: E402
from smr_ts.data.panel import to_panel  # noqa: E402
from smr_ts.regression.scaling import column_moments  # noqa: E402
from smr_ts.regression.windows import Scaling, panel_tensors  # noqa: E402

N_SERIES, N_ROWS, N_COLUMNS = 1000, 100, 600


def make_frame(seed: int = 0) -> pd.DataFrame:
    """The benchmark frame: long format, shuffled rows, NaN = not observed."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((N_SERIES * N_ROWS, N_COLUMNS), dtype=np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    hours = np.cumsum(rng.exponential(1.0, (N_SERIES, N_ROWS)), axis=1).ravel()
    frame = pd.DataFrame(values, columns=[f"v{j:03d}" for j in range(N_COLUMNS)])
    frame.insert(0, "ds", pd.Timestamp("2024-01-01") + pd.to_timedelta(hours, unit="h"))
    frame.insert(0, "unique_id", np.repeat([f"s{i:04d}" for i in range(N_SERIES)], N_ROWS))
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _seconds(function, repeats: int) -> tuple[float, float, float]:
    """Median and minimum wall-clock seconds, and median CPU seconds of this process.

    On a shared machine wall time includes waiting for a core; CPU time does not, and for
    these single-threaded steps it is what the wall time would be on an idle machine.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
        del result
    return float(np.median(wall)), float(min(wall)), float(np.median(cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/frames.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    frame = make_frame()
    ids, times, _, values = split_frame(frame, "unique_id", "ds")
    array = numeric_values(values, "X")
    panel = to_panel(ids, times, array)

    # The statistics the estimator would fit (per-column moments), and a time unit of an hour.
    feature_mean, feature_scale = column_moments(array)
    scaling = Scaling(feature_mean, feature_scale, np.zeros(0, np.float32), np.ones(0, np.float32), 3600e9)
    # predict(X) end to end needs a fitted model: a tiny regression model on 8 of the series.
    small = frame[frame["unique_id"] < "s0008"]
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0)
    model.fit(small, pd.Series(np.zeros(len(small)), index=small.index))

    def frames_layer():
        ids, times, _, values = split_frame(frame, "unique_id", "ds")
        return to_panel(ids, times, numeric_values(values, "X"))

    steps = [
        ("`split_frame`", lambda: split_frame(frame, "unique_id", "ds")),
        ("`numeric_values`", lambda: numeric_values(values, "X")),
        ("`to_panel`", lambda: to_panel(ids, times, array)),
        ("**pandas layer: frame -> padded arrays** (the three above in one go)", frames_layer),
        ("`panel_tensors` (scale, zero-fill, gaps -> torch tensors)",
         lambda: panel_tensors(panel, scaling)),
        ("**frame -> tensors** (pandas layer + `panel_tensors`)", lambda: panel_tensors(frames_layer(), scaling)),
        ("`predict(X)` end to end (conversion + tiny model's forward pass + output frame)",
         lambda: model.predict(frame)),
    ]
    rows = []
    for what, function in steps:
        median, best, cpu = _seconds(function, args.repeats)
        rows.append((what, median, best, cpu))
        print(f"{median:8.3f} s (min {best:.3f}, CPU {cpu:.3f})  {what}", flush=True)

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    lines = [
        "# Frame to tensor conversion time",
        "",
        f"A long frame of {N_SERIES * N_ROWS:,} rows x {N_COLUMNS} float32 value columns "
        f"({N_SERIES} series x {N_ROWS} rows at exponential gaps, tz-naive datetimes, 10% NaN, "
        "rows shuffled) converted to the padded arrays and tensors the model reads. "
        f"Seconds over {args.repeats} runs, one thread: wall-clock median and minimum, and the "
        "median CPU time of the process (wall time without the waits for a shared core).",
        "",
        "| step | wall median | wall min | CPU median |",
        "|---|---|---|---|",
        *[f"| {what} | {median:.3f} | {best:.3f} | {cpu:.3f} |" for what, median, best, cpu in rows],
        "",
        f"- command: `{command('benchmarks/frames.py', ['--repeats', str(args.repeats)])}`",
        f"- date: {today()}",
        f"- machine: {cpu_model()}, {cores} cores available, load average "
        f"{os.getloadavg()[0]:.1f} at the end of the run (other jobs share the cores), "
        f"torch threads = {torch.get_num_threads()}",
        f"- software: {software(f', pandas {pd.__version__}, numpy {np.__version__}')}",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
