"""The pandas layer: long frames of timestamped observations to padded arrays, and back.

A long frame has one row per observation: a series id, a time and value columns. The id and
time may be columns or levels of a MultiIndex (sklearn transformers with
``set_output(transform="pandas")`` keep the index). Nothing here knows about models: the torch
layers never see a DataFrame, and the estimator glues the two. Times are read as raw times
(:mod:`smr_ts.data.times`).

Every check raises ``ValueError`` or ``TypeError`` naming the column or argument at fault, and
all work is vectorised: no Python loop runs over rows or series.
"""

from __future__ import annotations


from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from smr_ts.data.times import TimeInfo, check_time_kind, plain, read_times

__all__ = [
    "FrameSchema",
    "Rows",
    "known_rows",
    "split_frame",
    "as_target_frame",
    "align_columns",
    "features_and_targets",
    "numeric_values",
    "refuse_array",
    "refuse_forecast_array",
    "check_id_kind",
]


@dataclass(frozen=True)
class FrameSchema:
    """How a fitted model reads a frame: its id and time columns (``id_col=None``: one series), the kind
    of its time axis, its value columns in order, and the targets, future-known and static columns among
    them (the static columns come apart from the values: one row per series)."""

    id_col: str | None
    time_col: str
    time_info: TimeInfo
    value_columns: list
    target_names: list
    future_names: list = field(default_factory=list)
    static_names: list = field(default_factory=list)

    def name(self, value) -> str:
        """How a message names the series ``value``: ``unique_id='a'``, or "the series" with ``id_col=None``."""
        return "the series" if self.id_col is None else f"{self.id_col}={plain(value)!r}"


@dataclass(frozen=True)
class Rows:
    """Rows of a frame read for a fitted model: ids, raw times, values in the value columns' order (NaN:
    not observed), and the static columns they carry as one row per series (None when they carry none)."""

    ids: np.ndarray
    times: np.ndarray
    values: np.ndarray
    statics: pd.DataFrame | None = None


def known_rows(ids: np.ndarray, times: np.ndarray, info: TimeInfo, values: pd.DataFrame, schema: FrameSchema,
               what: str, dtype=np.float32, *, named: bool = True) -> Rows:
    """The rows of a frame split by :func:`split_frame` (``named``: columns to align by name; an array's
    are taken in order), checked against the fitted ``schema``: the time kind, the value columns, and
    the static columns split off (when the rows carry them: all of them, or a ValueError naming those
    missing)."""
    check_time_kind(info, schema.time_info, schema.time_col, what)
    static = [c for c in schema.static_names if c in values.columns]
    table = None
    if static:
        values, table = split_static_columns(values, ids, static if len(static) == len(schema.static_names)
                                             else schema.static_names, schema.id_col, what)
    if named:
        values = align_columns(values, schema.value_columns, what)
    return Rows(ids, times, numeric_values(values, what, dtype), table)


def static_table(frame: pd.DataFrame, ids: np.ndarray, columns: list, id_col, what: str) -> pd.DataFrame:
    """One row per series (indexed by ``ids``' unique values) of the static ``columns`` of rows ``frame``
    (aligned with ``ids``); a ValueError when a series has two different values of one."""
    table = frame[columns].set_axis(pd.Index(ids, name="__series__"), axis=0)
    varies = table.groupby(level=0, sort=False).nunique(dropna=False).gt(1)
    if varies.to_numpy().any():
        column = varies.columns[varies.any(axis=0)][0]
        series = varies.index[varies[column]][0]
        who = "the series" if id_col is None else f"{id_col}={series!r}"
        raise ValueError(f"{what}: static column {column!r} must hold one value per series, but {who} has several; "
                         "give it in future_cols (known ahead) or as a past-only value column instead")
    return table.groupby(level=0, sort=False).first()


def split_static_columns(values: pd.DataFrame, ids: np.ndarray, static_names: list, id_col, what: str):
    """(the value columns without the static ones, one row per series of the static ones or None)."""
    if not static_names:
        return values, None
    missing = [c for c in static_names if c not in values.columns]
    if missing:
        raise ValueError(f"{what}: the static columns {missing} are missing; give them as at fit (constant per "
                         "series)")
    return values.drop(columns=static_names), static_table(values, ids, static_names, id_col, what)


def split_frame(X, id_col: str, time_col: str, *, what: str = "X"):
    """Separate a long frame into ids, raw times, time info and the remaining value columns.

    Parameters
    ----------
    X : DataFrame
        Long frame; ``id_col`` and ``time_col`` are columns or index levels.
    id_col, time_col : str
        ``id_col=None``: the frame is a single series, whose id is 0.
    what : str
        Name of the argument, used in error messages.

    Returns
    -------
    ids : ndarray (n,)
    times : ndarray (n,)
        int64 nanoseconds for datetimes, int64 for integer times, float64 otherwise.
    info : TimeInfo
    values : DataFrame
        The other columns, with a RangeIndex.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(X).__name__}")
    if len(X) == 0:
        raise ValueError(f"{what} is empty: it needs at least one row")
    if not X.columns.is_unique:
        dupes = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
        raise ValueError(f"{what} has duplicate column names: {dupes}")
    # id_col=None: the frame is one series (id 0), with no id column to carry.
    ids = np.zeros(len(X), np.int64) if id_col is None else _column_or_level(X, id_col, what, "id_col")
    raw_time = _column_or_level(X, time_col, what, "time_col")
    values = X.drop(columns=[c for c in (id_col, time_col) if c is not None and c in X.columns]).reset_index(drop=True)

    if pd.isna(ids).any():
        raise ValueError(f"{what}: id column {id_col!r} has missing values")
    times, info = read_times(raw_time, time_col, what)
    return np.asarray(ids), times, info, values


def refuse_array(X, feature_names, what: str = "X") -> None:
    """A model fitted on a frame reads frames only: an array has no id or time, and its columns would be
    read as values at unit gaps, a confident answer to a different question."""
    shape = getattr(X, "shape", None)
    raise TypeError(f"{what} is a {type(X).__name__}{'' if shape is None else f' of shape {shape}'}, but the model was "
                    f"fitted on a DataFrame with columns {[str(c) for c in feature_names][:10]}: pass a DataFrame "
                    "with those columns (or index levels), e.g. pd.DataFrame(array, columns=...)")


def refuse_forecast_array(X, id_col, time_col: str) -> None:
    """Forecasting reads named columns: an array's columns would all become targets at unit gaps, the
    times among them."""
    shape = getattr(X, "shape", None)
    columns = (f"the series id ({id_col!r}), the time ({time_col!r})" if id_col is not None
               else f"the time ({time_col!r}; id_col=None: one series)")
    example = ", ".join(repr(c) for c in ([id_col] if id_col is not None else []) + [time_col, "y"])
    raise TypeError(f"fit(X) without y forecasts the columns of a long frame, but X is a {type(X).__name__}"
                    f"{'' if shape is None else f' of shape {shape}'} with no column names: every column, times "
                    f"included, would be forecast as a value observed at unit gaps. Pass a DataFrame with named "
                    f"columns for {columns} and the targets, e.g. pd.DataFrame(array, columns=[{example}]); for "
                    "sequence regression on arrays, give y: fit(X, y)")


def _column_or_level(X: pd.DataFrame, name: str, what: str, param: str) -> np.ndarray:
    if name in X.columns:
        return X[name].to_numpy()
    if name in (X.index.names or []):
        return X.index.get_level_values(name).to_numpy()
    single = ", or id_col=None for a single series" if param == "id_col" else ""
    raise ValueError(
        f"{what} has no column or index level {name!r} (set {param}=...{single}); columns are "
        f"{list(map(str, X.columns))[:10]}, index levels {list(X.index.names)}. In a Pipeline, put the id and time in "
        f"the index (df.set_index([...])): transformers with set_output(transform='pandas') keep it"
    )


def check_id_kind(ids: np.ndarray, fitted_ids: np.ndarray, id_col, what: str) -> None:
    """New ids must be of the fitted ids' kind (numbers or strings): a string id among integer ids is
    neither a fitted series nor one that can be ordered among them."""
    if id_col is None or not len(ids) or not len(fitted_ids):
        return
    fitted = _id_kind(fitted_ids)
    if _id_kind(ids) == fitted:
        return
    unique = pd.unique(np.asarray(ids, dtype=object))
    example = plain(next((v for v in unique if _id_kind(np.array([v], dtype=object)) != fitted), unique[0]))
    raise ValueError(f"{what}: id column {id_col!r} has the id {example!r} ({type(example).__name__}), but the model "
                     f"was fitted on {fitted} ids; give ids of the fitted type (e.g. {what}[{id_col!r}].astype(...)), "
                     "so that each row finds its series")


def _id_kind(ids: np.ndarray) -> str:
    inferred = pd.api.types.infer_dtype(np.asarray(ids), skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    return {"string": "string", "boolean": "bool"}.get(inferred, f"mixed ({inferred})")


def numeric_values(values: pd.DataFrame, what: str, dtype=np.float32) -> np.ndarray:
    """The value columns as a float (n, F) array of ``dtype``; NaN kept (it means "not observed").

    Forecasting reads float64, so that per-series statistics are taken and subtracted before
    anything is rounded to float32 (a unit signal on a 1e7 offset keeps its resolution).
    """
    bad = [str(c) for c, dtype in values.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]  # bool counts: 0/1
    if bad:
        raise TypeError(f"{what}: columns {bad[:10]} are not numeric; every value column must be numeric")
    array = values.to_numpy(dtype=dtype, na_value=np.nan)
    # NaN is allowed, inf is not. fmin/fmax skip NaN and reduce without a temporary the size of
    # the array (faster: docs/results/frames_design.md); column names only on failure.
    if array.size:
        low, high = np.fmin.reduce(array, axis=None), np.fmax.reduce(array, axis=None)
        if not (np.isfinite(low) and np.isfinite(high)):
            inf_cols = values.columns[np.isinf(array).any(0)]
            if len(inf_cols):
                raise ValueError(f"{what}: columns {list(map(str, inf_cols))[:10]} contain infinite values")
    return array


def as_target_frame(y, index: pd.Index, n_rows: int) -> tuple[np.ndarray, list[str]]:
    """Targets aligned to X's rows, as float32 (n, T), and their names.

    pandas targets are aligned by index (rows may come in another order, but the labels must
    match X's exactly); arrays by position.
    """
    if isinstance(y, pd.Series):
        y = y.to_frame(name=y.name if y.name is not None else "y")
    if isinstance(y, pd.DataFrame):
        if len(y) != n_rows:
            raise ValueError(f"y has {len(y)} rows but X has {n_rows}: y must have one row per row of X")
        if not y.index.equals(index):
            if not y.index.is_unique or not index.is_unique or not y.index.sort_values().equals(index.sort_values()):
                raise ValueError("y's index does not match X's index: y must be aligned with X (same row labels)")
            y = y.loc[index]
        names = [str(c) for c in y.columns]
        return numeric_values(y, "y"), names
    array = np.asarray(y)
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y must be numeric (Unknown label type for a regressor: dtype {array.dtype})") from exc
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D, got shape {array.shape}")
    if len(array) != n_rows:
        raise ValueError(f"y has {len(array)} rows but X has {n_rows}: y must have one row per row of X")
    if np.isinf(array).any():
        raise ValueError("Input y contains infinity or a value too large for dtype('float64').")
    names = [f"y{i}" for i in range(array.shape[1])] if array.shape[1] > 1 else ["y"]
    return array.astype(np.float32), names


def align_columns(values: pd.DataFrame, expected: list[str], what: str) -> pd.DataFrame:
    """The value columns in the order of ``expected``; missing or unknown columns are an error."""
    got = [str(c) for c in values.columns]
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    if missing or extra:
        raise ValueError(f"{what}: feature columns differ from fit: missing {missing[:10]}, unexpected {extra[:10]}")
    values.columns = got
    return values[list(expected)]


def features_and_targets(X, y, values: pd.DataFrame, target_cols, dtype=np.float32):
    """The training frame's features and targets.

    Regression (``y`` given): targets are ``y`` aligned to X. Forecasting (``y`` None): targets
    are ``target_cols`` of the value columns (all of them when None).

    Returns
    -------
    features : float32 (n, F)
    targets : float32 (n, T)
    value_columns, target_names : list of str
    y_ndim : int
        1 when y is 1-D (predictions come back as a Series), else 2.
    """
    value_columns = [str(c) for c in values.columns]
    features = numeric_values(values, "X", dtype)
    if y is not None:
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(features))
        targets, target_names = as_target_frame(y, index, len(features))
        one_d = isinstance(y, pd.Series) or (not isinstance(y, pd.DataFrame) and np.asarray(y).ndim == 1)
        if np.isnan(targets).all():
            raise ValueError("Input y contains NaN only: there is no observed target to fit")
        _check_observed(targets, target_names, "y", "drop it from y")
        return features, targets, value_columns, target_names, 1 if one_d else 2
    if not value_columns:
        raise ValueError("X has no value columns to forecast")
    names = list(target_cols) if target_cols is not None else value_columns
    missing = [c for c in names if c not in value_columns]
    if missing:
        raise ValueError(f"target_cols {missing} are not columns of X")
    targets = features[:, [value_columns.index(c) for c in names]]
    _check_observed(targets, names, "X", "drop it or leave it out of target_cols")
    return features, targets, value_columns, names, 2


def _check_observed(targets: np.ndarray, names: list, what: str, fix: str) -> None:
    """Every target column needs an observed value: an all-NaN one would train on nothing and look perfect."""
    empty = np.isnan(targets).all(0) if len(targets) else np.ones(targets.shape[1], bool)
    if empty.any():
        column = names[int(np.argmax(empty))]
        raise ValueError(f"{what}: target column {column!r} has no observed value (every row is NaN), so there "
                         f"is nothing to learn it from; {fix}, or give rows where it is observed")
