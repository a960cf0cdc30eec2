"""Time the full pendulum benchmark generation on ONE CPU core and write a table to docs/.

Usage (from the repository root)::

    python benchmarks/pendulum_data.py [--repeats 3] [--out docs/benchmarks/pendulum_data.md]

The script pins itself to one core and one thread before numpy and torch start their pools.
"""

import os

# Thread pools size themselves at import time, so this must come before numpy / torch.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from smr_ts.datasets import make_pendulum  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
from _machine import command, cpu_model, software, today  # noqa: E402


def _seconds(**kwargs) -> float:
    start = time.perf_counter()
    make_pendulum(**kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/pendulum_data.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    # The first call also pre-renders the frame table (cached for the rest of the process).
    rows = [("full benchmark, first call in the process (builds the render table)", _seconds())]
    for rate in (0.5, 1.0):
        times = [_seconds(sample_rate=rate) for _ in range(args.repeats)]
        rows.append((f"full benchmark, sample_rate={rate}, median of {args.repeats}",
                     float(np.median(times))))
    rows.append(("--small (64/32/32)", _seconds(n_train=64, n_valid=32, n_test=32)))

    lines = [
        "# Pendulum data generation time",
        "",
        "Generation of the pendulum occlusion benchmark (`smr_ts.datasets.make_pendulum`, "
        "2000/1000/1000 trajectories x 100 frames, 24x24 frames) on one CPU core and one thread.",
        "",
        "| what | seconds |",
        "|---|---|",
        *[f"| {what} | {seconds:.2f} |" for what, seconds in rows],
        "",
        f"- command: `{command('benchmarks/pendulum_data.py', ['--repeats', str(args.repeats)])}`",
        f"- machine: {cpu_model()}, 1 core (pinned with `sched_setaffinity`), "
        f"torch threads = {torch.get_num_threads()}",
        f"- software: {software(f', numpy {np.__version__}')}",
        f"- date: {today()}",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
