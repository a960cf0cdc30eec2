"""Plots of irregular series, their forecasts and backtests, at the real observation times.

Needs matplotlib (the optional ``plot`` extra: ``pip install "smr_ts[plot]"``), imported only when
a plot is drawn. One panel per series:

- the history as its observations (points) joined by a thin line: gaps show as they are;
- a forecast (``forecast()``'s frame) as a line over its query times, with a shaded band per
  interval level (``<model>-lo-80`` / ``<model>-hi-80``, the model's column ``<model>``: ``S5``), lighter
  for wider levels;
- a backtest (``backtest()``'s frame): one forecast line and its bands per cut-off, and each
  cut-off as a dashed vertical line.

Tz-aware times are drawn as wall-clock times in their zone.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from smr_ts.data.frames import split_frame
from smr_ts.forecasting.intervals import check_levels

__all__ = ["plot_forecast"]

_HISTORY, _FORECAST, _CUTOFF = "0.25", "C0", "0.45"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # the optional extra is not installed
        raise ImportError("smr_ts.plotting needs matplotlib: pip install 'smr_ts[plot]' (or pip install matplotlib)") from exc
    return plt


def _rows(frame: pd.DataFrame, id_col, time_col: str, what: str):
    """(ids, plottable times, value columns): floats, or naive datetime64 (wall-clock for tz-aware)."""
    ids, raw, info, values = split_frame(frame, id_col, time_col, what=what)
    times = info.to_times(raw)
    if info.kind == "datetime_tz":
        times = times.tz_localize(None)
    return ids, np.asarray(times), values


def _show(time) -> str:
    if isinstance(time, (int, np.integer)):  # integers in full: 1e+17 would hide the cut-off's last digits
        return str(int(time))
    return f"{time:g}" if isinstance(time, (float, np.number)) else str(pd.Timestamp(time))


def _levels(columns, name: str) -> list:
    """Interval levels present for prediction column ``name``, narrowest first."""
    found = {m.group(1) for c in columns if (m := re.fullmatch(re.escape(name) + r"-lo-([\d.]+)", str(c)))}
    return sorted(found, key=float)


def _prediction_column(columns, model, target: str, history_columns) -> str:
    """The forecast frame's prediction column: ``model``, or the one candidate (see ``plot_forecast``)."""
    columns = [str(c) for c in columns]
    if model is not None:
        if model not in columns:
            raise ValueError(f"forecast has no column {model!r} (model=...); its columns are {columns}")
        return model
    suffix = re.compile(r"(.+)(-lo-[\d.]+|-hi-[\d.]+|_ql[\d.]+|_std)")
    derived = {c for c in columns if (m := suffix.fullmatch(c)) and m.group(1) in columns}
    found = [c for c in columns if c not in derived and c != "cutoff" and c not in set(map(str, history_columns))]
    if len(found) > 1:
        found = [c for c in found if c.endswith(f":{target}")] or found
    if len(found) != 1:
        raise ValueError(f"forecast has {'no' if not found else 'several'} prediction columns {found} for {target!r}: "
                         "pass the frame of forecast() or backtest(), and name its column with model=... (e.g. "
                         "model='S5')")
    return found[0]


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame | None = None, *, target: str | None = None,
                  model: str | None = None, level=None, cutoffs=None, ids=None, max_series: int = 4,
                  id_col="unique_id", time_col: str = "ds", axes=None):
    """Draw series, their forecasts with interval bands, and backtest cut-offs.

    Parameters
    ----------
    history : DataFrame
        Long frame of observations (``id_col``, ``time_col``, the target column).
    forecast : DataFrame, optional
        ``SMRForecaster.forecast(...)``'s frame, or :func:`smr_ts.model_selection.backtest`'s (one
        forecast per ``cutoff``); the forecast is the model's column (``S5``, its ``alias``).
    target : str, optional
        The column to draw; default: the first value column of ``history``.
    model : str, optional
        The forecast's prediction column; default: the one column of ``forecast`` that is neither
        an id, time, cut-off or ``history`` column nor an interval, quantile or ``_std`` column of
        another (of several, the one named ``<alias>:<target>``).
    level : float or list of float, optional
        Interval levels to shade, in percent as ``forecast(level=...)``'s (e.g. ``[80, 95]``); default:
        every level the forecast frame has.
    cutoffs : list, optional
        Times to mark with dashed vertical lines; default: a backtest frame's cut-offs.
    ids : list, optional
        Series to draw; default: the first ``max_series`` (in sorted order) of the forecast, or of
        the history without one.
    max_series : int, default 4
    id_col, time_col : str
        As the estimator's (``id_col=None``: one series).
    axes : sequence of matplotlib Axes, optional
        One per series to draw into; default: a new figure, one panel per series.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    h_ids, h_times, h_values = _rows(history, id_col, time_col, "history")
    target = str(h_values.columns[0]) if target is None else target
    if target not in h_values.columns:
        raise ValueError(f"history has no column {target!r} to draw (target=...); columns are {list(h_values.columns)}")
    f_ids = f_times = f_values = None
    pred = None
    if forecast is not None:
        f_ids, f_times, f_values = _rows(forecast, id_col, time_col, "forecast")
        pred = _prediction_column(f_values.columns, model, target, h_values.columns)
    levels = _levels(f_values.columns, pred) if forecast is not None else []
    if level is not None:
        levels = [lv for lv in levels if float(lv) in {float(v) for v in check_levels(level)}]
    backtest_cuts = f_values["cutoff"] if forecast is not None and "cutoff" in f_values.columns else None
    all_cuts = list(pd.unique(backtest_cuts.to_numpy())) if backtest_cuts is not None else []
    if cutoffs is None:
        cutoffs = all_cuts
    if ids is None:
        if not isinstance(max_series, (int, np.integer)) or isinstance(max_series, bool) or max_series < 1:
            raise ValueError(f"max_series must be a positive int (how many series to draw), got {max_series!r}")
        ids = list(pd.unique(np.sort(f_ids if f_ids is not None else h_ids)))[:max_series]
    else:
        ids = list(np.atleast_1d(np.asarray(ids, dtype=object)))
        if not ids:
            raise ValueError("ids is empty: give the series to draw, or ids=None for the first max_series of them")
        present = pd.Index(pd.unique(h_ids)).append(pd.Index(pd.unique(f_ids) if f_ids is not None else []))
        unknown = [i for i, found in zip(ids, pd.Index(ids).isin(present)) if not found]
        if unknown:
            raise ValueError(f"ids {unknown[:5]} are in neither history nor forecast ({id_col} values); give ids of "
                             "series they hold")
    if axes is None:
        fig, axes = plt.subplots(len(ids), 1, figsize=(8, 2.4 * len(ids)), squeeze=False)
        axes = axes[:, 0]
    else:
        axes = list(np.ravel(np.asarray(axes, dtype=object)))  # a single Axes, a list, or plt.subplots' grid
        if len(axes) < len(ids):
            raise ValueError(f"axes holds {len(axes)} Axes but {len(ids)} series are drawn (ids={ids}): give one "
                             "Axes per series, or fewer ids (or max_series)")
    fig = axes[0].figure
    for ax, sid in zip(axes, ids):
        rows = (h_ids == sid) & h_values[target].notna().to_numpy()
        order = np.argsort(h_times[rows], kind="stable")
        ax.plot(h_times[rows][order], h_values[target].to_numpy()[rows][order], marker="o", markersize=3,
                linewidth=0.6, color=_HISTORY, label="observed")
        if forecast is not None:
            at = f_ids == sid
            # one forecast per cut-off of a backtest, each in its own colour
            runs = [(None, at)] if backtest_cuts is None else [
                (c, at & (backtest_cuts.to_numpy() == c)) for c in all_cuts if (at & (backtest_cuts.to_numpy() == c)).any()]
            for cut, rows_of_run in runs:
                color = _FORECAST if cut is None else f"C{all_cuts.index(cut) % 10}"
                sel = np.flatnonzero(rows_of_run)
                sel = sel[np.argsort(f_times[sel], kind="stable")]
                for i, lv in enumerate(reversed(levels)):  # widest first, lightest
                    ax.fill_between(f_times[sel], f_values[f"{pred}-lo-{lv}"].to_numpy()[sel],
                                    f_values[f"{pred}-hi-{lv}"].to_numpy()[sel], color=color, linewidth=0,
                                    alpha=0.15 + 0.15 * i, label=f"{lv}% interval")
                ax.plot(f_times[sel], f_values[pred].to_numpy()[sel], color=color, linewidth=1.4,
                        label="forecast" if cut is None else f"forecast from {_show(cut)}")
        for i, cut in enumerate(cutoffs):
            cut = cut if isinstance(cut, (int, float, np.number)) else pd.Timestamp(cut).tz_localize(None).to_datetime64()
            ax.axvline(cut, color=_CUTOFF, linestyle="--", linewidth=0.8, label="cut-off" if i == 0 else None)
        ax.set_title(f"{id_col} = {sid}" if id_col is not None else target, fontsize=9, loc="left")
        ax.set_ylabel(target)
    if h_times.dtype.kind == "M":  # dates without repeating the year on every tick
        import matplotlib.dates as mdates

        for ax in axes[: len(ids)]:
            locator = mdates.AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    handles = {}  # one legend entry per label, over every panel
    for ax in axes[: len(ids)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    axes[0].legend(handles.values(), handles.keys(), fontsize=7, loc="upper left")
    axes[len(ids) - 1].set_xlabel(time_col)
    fig.tight_layout()
    return fig
