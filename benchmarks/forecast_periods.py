"""The periods each fit of the real-data suite reads (calendar and detected), per data set and cut-off.

Fits SMRForecaster for one epoch on each task's training rows through the suite's SMR row
(``real_models.SMRRow``: told the horizon as the suite tells it, which sets the validating last part
the detected period does not read; the layout is fixed before training, so one epoch shows the
periods a full fit reads), and prints
``layout_.period_names`` and ``layout_.periods`` (in years for datetimes, raw units otherwise).

    python benchmarks/forecast_periods.py --datasets sunspot.month gold
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_data  # noqa: E402

_YEAR_NS = 365.2425 * 86_400e9


def main(argv=None) -> None:
    import real_models

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(real_data.LOADERS), choices=list(real_data.LOADERS))
    args = p.parse_args(argv)
    for name in args.datasets:
        data = real_data.LOADERS[name]()
        for task in data.tasks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = real_models.SMRRow(data, 0, None, {"epochs": 1}).fit(task.train, task.query).model_
            layout = model.layout_
            numeric = model.time_info_.kind == "numeric"
            shown = [round(p if numeric else p / _YEAR_NS, 4) for p in layout.periods]
            print(f"{name} | {task.label} | {layout.period_names} | {shown} {'(raw units)' if numeric else '(years)'}",
                  flush=True)


if __name__ == "__main__":
    main()
