"""Model selection in time: cut-offs, backtests, a splitter for scikit-learn, and the forecast score.

Peers backtest on a grid, counting steps (neuralforecast ``cross_validation``, darts ``backtest``,
sktime ``evaluate``). Here a **cut-off** is a time and the **horizon** a duration: a backtest
fits on every row at or before the cut-off and scores every observation in
``(cutoff, cutoff + horizon]``, wherever it falls, for every series that has a row at or before
the cut-off.

- :class:`TimeCutoffSplit` yields those (train, test) rows for scikit-learn (``GridSearchCV``,
  ``cross_val_score``), which then scores with ``SMRForecaster.score`` (:func:`forecast_score`
  in forecast mode).
- :func:`backtest` refits at each cut-off and returns one long frame of truths, forecasts, and
  conformal intervals (``level=``) or quantiles, in Nixtla's column conventions (``unique_id``,
  ``ds``, ``cutoff``, ``<model>-lo-80``), so that ``utilsforecast.evaluation.evaluate`` reads it.

Durations are numbers in the time column's unit for numeric times, and for datetimes a pandas
duration (``"7D"``, ``pd.Timedelta(hours=12)``; a number is seconds, as for the estimator's
``horizon``) or a calendar offset (``"MS"``, month starts).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd
from pandas.tseries.offsets import BaseOffset
from sklearn.base import clone

from smr_ts._validation import check_params, positive_int, positive_real
from smr_ts.data.frames import numeric_values, split_frame
from smr_ts.data.times import TimeInfo, duration
from smr_ts.forecasting.intervals import check_levels, interval_names, quantile_names
from smr_ts.forecasting.queries import history_rows

__all__ = ["TimeCutoffSplit", "backtest", "forecast_score", "history_scales", "naive_scales", "score_forecasts"]

_DURATION = [positive_real(), str, pd.Timedelta, BaseOffset]


def _duration(value, info: TimeInfo, name: str):
    """A positive duration the time axis can add (:func:`smr_ts.data.times.duration`): a number for numeric
    times, a Timedelta or a calendar offset for datetimes."""
    raw = duration(value, info, name, calendar=True)
    return raw if info.kind == "numeric" or isinstance(raw, BaseOffset) else pd.Timedelta(raw, unit="ns")


def _raw(stamp) -> int:
    """A Timestamp as the raw int64 nanoseconds of :func:`smr_ts.data.frames.split_frame` (UTC if aware)."""
    return int(pd.Timestamp(stamp).as_unit("ns").value)


def _cutoff_stamp(value, info: TimeInfo, time_col: str):
    """A user's cut-off as a value of the time axis (float, or a Timestamp in the data's zone)."""
    if info.kind == "numeric":
        if not isinstance(value, Real) or isinstance(value, bool):
            raise TypeError(f"cutoffs: {value!r} is not a number, but the time column {time_col!r} is numeric")
        return int(value) if isinstance(value, Integral) else float(value)
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cutoffs: {value!r} is not a timestamp, but the time column {time_col!r} holds "
                        "datetimes: give e.g. '2024-03-01' or pd.Timestamp(...)") from exc
    if (stamp.tz is None) != (info.kind == "datetime"):
        raise ValueError(f"cutoffs: {stamp} is {'tz-naive' if stamp.tz is None else 'tz-aware'} but the time column "
                         f"{time_col!r} is {info.describe()}: give cut-offs of the same kind")
    return stamp.tz_convert(info.tz) if info.kind == "datetime_tz" else stamp


class TimeCutoffSplit:
    """Train / test rows of a long frame at cut-offs in time, for scikit-learn's model selection.

    For each cut-off, train on every row at or before it; test on every row in
    ``(cutoff, cutoff + horizon]`` of the series that have a training row. Rows need not lie on
    any grid. Use it as ``cv=`` of ``GridSearchCV`` or ``cross_val_score`` with an
    ``SMRForecaster`` fitted in forecast mode (``fit(df)``): its ``score(X)`` then forecasts the
    test rows from the training rows (:func:`forecast_score`).

    Parameters
    ----------
    horizon : float, str, Timedelta or pandas offset
        How far after a cut-off rows are tested: a number in the time column's unit (seconds for
        datetimes), or for datetimes a duration ("7D") or calendar offset ("MS").
    cutoffs : list, optional
        The cut-offs themselves: timestamps (or strings pandas reads) for datetimes, numbers for
        numeric times. Give either ``cutoffs`` or ``n_cutoffs``.
    n_cutoffs : int, optional
        That many cut-offs, ``step`` apart, the last one ``horizon`` before the frame's last time.
    step : same kinds as ``horizon``, optional
        Time between consecutive cut-offs with ``n_cutoffs``; default ``horizon`` (test windows
        that touch without overlapping).
    id_col, time_col : str, default "unique_id", "ds"
        The frame's series id and time (columns or index levels); ``id_col=None``: one series.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"unique_id": ["a"] * 6 + ["b"] * 3, "ds": [0, 1, 2.5, 3, 4.2, 6, 0.5, 3.1, 5.0],
    ...                    "y": range(9)})
    >>> cv = TimeCutoffSplit(horizon=2.0, n_cutoffs=2)
    >>> cv.cutoffs_for(df)
    [2.0, 4.0]
    >>> [(train.tolist(), test.tolist()) for train, test in cv.split(df)]
    [([0, 1, 6], [2, 3, 7]), ([0, 1, 2, 3, 6, 7], [4, 5, 8])]
    """

    _parameter_constraints = {
        "horizon": _DURATION,
        "cutoffs": ["array-like", None],
        "n_cutoffs": [positive_int(), None],
        "step": _DURATION + [None],
        "id_col": [str, None],
        "time_col": [str],
    }

    def __init__(self, horizon, *, cutoffs=None, n_cutoffs=None, step=None, id_col="unique_id", time_col="ds"):
        self.horizon, self.cutoffs, self.n_cutoffs, self.step = horizon, cutoffs, n_cutoffs, step
        self.id_col, self.time_col = id_col, time_col

    def __repr__(self) -> str:
        shown = {k: getattr(self, k) for k in self._parameter_constraints if getattr(self, k) is not None}
        return f"TimeCutoffSplit({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def _check(self) -> None:
        params = {k: getattr(self, k) for k in self._parameter_constraints}
        check_params(self._parameter_constraints, params, "TimeCutoffSplit")
        if (self.cutoffs is None) == (self.n_cutoffs is None):
            raise ValueError("TimeCutoffSplit: give exactly one of cutoffs (the times themselves) and n_cutoffs "
                             "(a count, with step)")
        if self.cutoffs is not None and (self.step is not None or len(self.cutoffs) == 0):
            raise ValueError("TimeCutoffSplit: cutoffs must hold at least one time, and step goes with n_cutoffs only")

    def windows(self, times: np.ndarray, info: TimeInfo) -> list[tuple]:
        """Per cut-off, ``(cutoff, cutoff_raw, end_raw)``: the cut-off as a time of the frame's kind, and
        the test window ``(cutoff_raw, end_raw]`` in raw units (see :func:`~smr_ts.data.frames.split_frame`)."""
        self._check()
        horizon = _duration(self.horizon, info, "horizon")
        if self.cutoffs is not None:
            stamps = sorted(_cutoff_stamp(c, info, self.time_col) for c in np.atleast_1d(np.asarray(self.cutoffs, object)))
        else:
            step = horizon if self.step is None else _duration(self.step, info, "step")
            last = times.max().item() if info.kind == "numeric" else info.to_times(np.array([times.max()]))[0]
            stamps = [last - horizon]
            for _ in range(self.n_cutoffs - 1):
                stamps.insert(0, stamps[0] - step)
        if info.kind == "numeric" and times.dtype.kind in "iu":  # t <= c is t <= floor(c): compared in int64, exactly
            return [(c, math.floor(c), math.floor(c + horizon)) for c in stamps]
        if info.kind == "numeric":
            return [(c, c, c + horizon) for c in stamps]
        return [(c, _raw(c), _raw(c + horizon)) for c in stamps]

    def cutoffs_for(self, X) -> list:
        """The cut-offs for frame ``X``: floats, or Timestamps in the frame's time zone."""
        _, times, info, _ = split_frame(X, self.id_col, self.time_col, what="X")
        return [c for c, _, _ in self.windows(times, info)]

    def split(self, X, y=None, groups=None):
        """Yield ``(train, test)`` row positions of ``X`` per cut-off; ``y`` and ``groups`` are ignored.

        Raises ``ValueError`` for a cut-off with no row at or before it, or no test row after it.
        """
        ids, times, info, _ = split_frame(X, self.id_col, self.time_col, what="X")
        yield from split_rows(ids, times, info, self.windows(times, info), self.time_col)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        self._check()
        return len(np.atleast_1d(np.asarray(self.cutoffs, object))) if self.cutoffs is not None else self.n_cutoffs


def split_rows(ids: np.ndarray, times: np.ndarray, info: TimeInfo, windows: list, time_col: str = "ds"):
    """``(train, test)`` row positions per window of :meth:`TimeCutoffSplit.windows`."""
    for cutoff, cut, end in windows:
        train = np.flatnonzero(times <= cut)
        test = np.flatnonzero((times > cut) & (times <= end) & np.isin(ids, pd.unique(ids[train])))
        if not len(train) or not len(test):
            where = "at or before it" if not len(train) else "in (cutoff, cutoff + horizon] of a series with a row before it"
            raise ValueError(f"cut-off {cutoff} ({time_col} from {info.to_times(np.array([times.min()]))[0]} to "
                             f"{info.to_times(np.array([times.max()]))[0]}) has no row {where}: choose cut-offs "
                             "inside the data, or fewer of them, or a longer horizon")
        yield train, test


def _query_frame(ids, times, info: TimeInfo, id_col, time_col: str, future_names=(), values=None) -> pd.DataFrame:
    """Query rows (id, time), with the future-known columns (``future_names``) of ``values`` when given."""
    frame = pd.DataFrame({time_col: info.to_times(times)})
    if id_col is not None:
        frame.insert(0, id_col, ids)
    future = [c for c in future_names if values is not None and c in values.columns]
    return frame.assign(**{c: values[c].to_numpy() for c in future})


def backtest(estimator, X, *, horizon, cutoffs=None, n_cutoffs=None, step=None, level=None,
             refit: bool = True, n_jobs: int | None = None) -> pd.DataFrame:
    """Forecast every observation after each cut-off from the rows before it, and compare with the truth.

    Parameters
    ----------
    estimator : SMRForecaster
        Unfitted (or fitted: it is cloned); its ``id_col``, ``time_col`` and ``target_cols`` apply.
        Give it ``horizon`` at least as long as this one, or forecasts past its trained horizon warn.
    X : DataFrame
        The long frame, with the target columns.
    horizon, cutoffs, n_cutoffs, step
        The cut-offs and test windows, as in :class:`TimeCutoffSplit`.
    level : float or list of float, optional
        Coverage levels in percent (e.g. ``[80, 95]``): add conformal interval columns (see
        ``SMRForecaster.forecast``).
    refit : bool, default True
        Fit a clone at every cut-off on the rows at or before it. ``False``: fit once, at the first
        cut-off, and give later cut-offs the rows since as ``context`` (no retraining).
    n_jobs : int, optional
        With ``refit``, fit and forecast the cut-offs in this many processes at once (joblib; -1: one
        per CPU; None or 1: one after another). Each fit sets its own thread count as it does alone, so
        a fixed ``random_state`` gives the serial result (within float rounding). Without ``refit``
        the cut-offs share one fit and run one after another.

    Returns
    -------
    DataFrame
        One row per observed test row and cut-off, sorted by cut-off, series and time: ``id_col``
        (absent when None), ``time_col``, ``cutoff``, then per target ``<target>`` (the truth) and the
        forecast's columns as ``forecast`` names them after the model (``alias``: ``S5``; with
        ``loss="quantile"`` ``S5_ql<q>``, with ``level`` ``S5-lo-<level>`` / ``S5-hi-<level>``;
        ``S5:<target>`` ... per target of several): the frame ``utilsforecast.evaluation.evaluate``
        reads. Rows whose targets are all unobserved are left out.

    Examples
    --------
    >>> from smr_ts import SMRForecaster
    >>> from smr_ts.datasets import make_oscillators
    >>> df = make_oscillators(n_series=6, n_obs=30, random_state=0)
    >>> model = SMRForecaster(d_model=8, state_size=8, epochs=1, horizon=3.0, random_state=0)
    >>> result = backtest(model, df, horizon=2.0, n_cutoffs=2, level=[80])
    >>> list(result.columns)
    ['unique_id', 'ds', 'cutoff', 'y', 'S5', 'S5-lo-80', 'S5-hi-80']
    >>> result["cutoff"].nunique()
    2
    """
    if not hasattr(estimator, "forecast"):
        raise TypeError(f"backtest needs an estimator with forecast(), such as SMRForecaster; got "
                        f"{type(estimator).__name__}. For a Pipeline, score it with "
                        "cross_val_score(pipeline, df, cv=TimeCutoffSplit(...)) instead")
    levels = check_levels(level) if level is not None else None
    id_col, time_col = estimator.id_col, estimator.time_col
    splitter = TimeCutoffSplit(horizon, cutoffs=cutoffs, n_cutoffs=n_cutoffs, step=step, id_col=id_col, time_col=time_col)
    ids, times, info, values = split_frame(X, id_col, time_col, what="X")
    windows = splitter.windows(times, info)
    splits = list(zip(windows, split_rows(ids, times, info, windows, time_col)))
    check_params({"n_jobs": [Integral, None]}, {"n_jobs": n_jobs}, "backtest")
    if refit and n_jobs not in (None, 1) and len(splits) > 1:
        from joblib import Parallel, delayed  # scikit-learn's own dependency

        frames = Parallel(n_jobs=n_jobs)(
            delayed(_cutoff_rows)(None, estimator, X, cutoff, train, test, values, ids, times, info, levels)
            for (cutoff, _, _), (train, test) in splits)
        frames = [f for f in frames if f is not None]
    else:
        frames, fitted, first_train = [], None, None
        for (cutoff, _, _), (train, test) in splits:
            context = None
            if refit or fitted is None:
                fitted, first_train = clone(estimator).fit(X.iloc[train]), train
            elif len(later := np.setdiff1d(train, first_train)):
                context = X.iloc[later]
            out = _cutoff_rows(fitted, estimator, X, cutoff, train, test, values, ids, times, info, levels, context)
            if out is not None:
                frames.append(out)
    if not frames:
        raise ValueError("backtest: no test row observes a target; choose other cut-offs or a longer horizon")
    return pd.concat(frames, ignore_index=True)


def _cutoff_rows(fitted, estimator, X, cutoff, train, test, values, ids, times, info, levels, context=None):
    """One cut-off's rows of :func:`backtest` (None when no test row observes a target); ``fitted`` None:
    fit a clone of ``estimator`` on the rows ``train`` first (a worker of a parallel backtest)."""
    if fitted is None:
        fitted = clone(estimator).fit(X.iloc[train])
    id_col, time_col = estimator.id_col, estimator.time_col
    targets = list(fitted.target_names_)
    truth = values.iloc[test][targets].reset_index(drop=True)
    observed = truth.notna().any(axis=1).to_numpy()
    if not observed.any():
        return None
    # Every test row is a query, so that rows holding only future-known values (a planned dose) are read.
    queries = _query_frame(ids[test], times[test], info, id_col, time_col, getattr(fitted, "future_names_", ()),
                           values.iloc[test])
    forecast = fitted.forecast(times=queries, context=context, level=levels)
    forecast, truth = forecast[observed].reset_index(drop=True), truth[observed].reset_index(drop=True)
    out = forecast[[c for c in (id_col, time_col) if c is not None]].copy()
    fractional = info.kind == "numeric" and not float(cutoff).is_integer()  # a cut-off between integer times
    out["cutoff"] = pd.Series([cutoff] * len(out), dtype=np.float64 if fractional else out[time_col].dtype)
    for target, name in zip(targets, fitted._prediction_names()):  # the truth, then the model's columns
        out[target] = truth[target].to_numpy()
        columns = [name, *quantile_names(name, getattr(fitted, "quantiles_", None) or ()),
                   *(interval_names(name, levels) if levels else ())]
        for column in columns:
            out[column] = forecast[column].to_numpy()
    return out


def naive_scales(estimator) -> pd.DataFrame:
    """Per fitted series (rows) and target (columns) of a fitted forecaster: the mean absolute change
    between consecutive observations in the fitted history, the in-sample error of carrying the last
    value forward (:func:`history_scales` of its ``history_panel_``)."""
    return history_scales(estimator.history_panel_, estimator.value_columns_, estimator.target_names_)


def history_scales(panel, value_columns: list, target_names: list) -> pd.DataFrame:
    """Per series of a history ``panel`` (rows) and target (columns): the mean absolute change between
    consecutive observations, the in-sample error of carrying the last value forward.

    A series without a positive one (a single observation, or constant) takes the median over the
    series that have one (1.0 if none has)."""
    ids, _, values = history_rows(panel, len(value_columns))
    targets = list(target_names)
    frame = pd.DataFrame(values[:, [value_columns.index(t) for t in targets]], columns=targets)
    scales = {}
    for target in targets:
        observed = frame[target].notna().to_numpy()
        series = pd.Series(frame[target].to_numpy()[observed])
        groups = ids[observed]
        scales[target] = series.groupby(groups).diff().abs().groupby(groups).mean()
    scales = pd.DataFrame(scales).reindex(pd.Index(panel.ids))
    usable = scales > 0
    return scales.where(usable, scales.where(usable).median(), axis=1).fillna(1.0)


def forecast_score(estimator, X, y=None, sample_weight=None) -> float:
    """The forecast-mode score of a fitted forecaster: minus the mean scaled MAE of forecasts at ``X``'s rows.

    ``X`` holds later rows of fitted series with their observed targets (the test rows of a
    :class:`TimeCutoffSplit`); each is forecast from the fitted history (its target values are not
    shown to the model). Each absolute error is divided by its series' :func:`naive_scales` (the
    in-sample MAE of carrying the last value forward, so 1.0 is about the error of a last-value
    forecast one observation ahead), averaged over each series' observed rows, then over series
    and targets (each series and target counts once), and negated: greater is better, 0 is perfect.
    """
    return score_forecasts(estimator.forecast, X, y, sample_weight, history=estimator.history_panel_,
                           value_columns=estimator.value_columns_, target_names=estimator.target_names_,
                           future_names=getattr(estimator, "future_names_", ()), id_col=estimator.id_col,
                           time_col=estimator.time_col, prediction_names=estimator._prediction_names())


def score_forecasts(forecast, X, y, sample_weight, *, history, value_columns: list, target_names: list,
                    future_names, id_col, time_col: str, prediction_names: list) -> float:
    """:func:`forecast_score` from plain values: ``forecast`` answers ``forecast(times=frame)`` from the fitted
    ``history`` panel, whose value columns, targets and future-known columns are given, each target's
    forecast in its column of ``prediction_names``."""
    if y is not None:
        raise ValueError("score(X, y): this model was fitted for forecasting (fit(df) without y), so the truth is "
                         "X's target columns; call score(X) without y")
    if sample_weight is not None:
        raise ValueError("score(X): sample_weight is not supported in forecast mode (every series counts once)")
    targets = list(target_names)
    ids, times, info, values = split_frame(X, id_col, time_col, what="X")
    missing = [t for t in targets if t not in values.columns]
    if missing:
        raise ValueError(f"score(X) in forecast mode compares forecasts with X's target columns {targets}; X lacks "
                         f"{missing}: give the later rows of the series with their observed values")
    truth = numeric_values(values[targets], "X", np.float64)
    try:
        pred = forecast(times=_query_frame(ids, times, info, id_col, time_col, future_names, values))
    except ValueError as exc:
        raise ValueError(f"score(X) in forecast mode forecasts X's rows from the fitted history, so X holds later "
                         f"rows of fitted series (the test rows of a TimeCutoffSplit): {exc}") from exc
    scale = history_scales(history, value_columns, targets).reindex(pd.Index(ids)).to_numpy()
    error = pd.DataFrame(np.abs(pred[list(prediction_names)].to_numpy() - truth) / scale)
    per_series = error.groupby(ids).mean()
    if not np.isfinite(per_series.to_numpy()).any():
        raise ValueError("score(X): X observes none of the targets, so there is nothing to score")
    return -float(np.nanmean(per_series.to_numpy()))
