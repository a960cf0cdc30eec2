"""The pandas side of covariates: which columns are static or future-known, read from the frames.

The estimator's ``future_cols`` and ``static_cols`` (and ``fit(static=...)``) are checked and read
here; :mod:`smr_ts.forecasting.covariates` turns what this returns into model inputs.
"""

from __future__ import annotations

from numbers import Number

import numpy as np
import pandas as pd

from smr_ts.data.frames import numeric_values
from smr_ts.forecasting.covariates import encode_static, fit_static_spec, static_width
from smr_ts.forecasting.state import Statics

__all__ = ["check_covariate_columns", "check_static_rows", "fit_statics", "future_query_values", "merge_static_frame",
           "static_codes"]


def merge_static_frame(values: pd.DataFrame, ids: np.ndarray, static, id_col, what: str = "static") -> pd.DataFrame:
    """``values`` with the columns of a per-series ``static`` frame (a column or index ``id_col``, one row
    per series) joined on each row's series; every series of the rows needs a row of ``static``."""
    if not isinstance(static, pd.DataFrame):
        raise TypeError(f"{what} must be a DataFrame with one row per series, got {type(static).__name__}")
    if id_col is None:
        if len(static) != 1:
            raise ValueError(f"{what}: with id_col=None the data are one series, so {what} needs exactly one row")
        table = static.reset_index(drop=True)
        return values.assign(**{c: table[c].iloc[0] for c in table.columns})
    table = static.set_index(id_col) if id_col in static.columns else static
    if table.index.name != id_col:
        raise ValueError(f"{what} needs the id column {id_col!r} (a column or the index) and one row per series")
    if not table.index.is_unique:
        raise ValueError(f"{what}: {id_col} values repeat; give one row per series")
    clash = [c for c in table.columns if c in values.columns]
    if clash:
        raise ValueError(f"{what}: columns {clash} are also columns of the rows; give each column in one place")
    at = table.index.get_indexer(pd.Index(ids))
    if (at < 0).any():
        raise ValueError(f"{what}: no row for {id_col}={ids[np.argmax(at < 0)]!r}; give every series a row")
    return pd.concat([values, table.iloc[at].reset_index(drop=True)], axis=1)


def check_covariate_columns(columns: list, future_cols, static_cols, target_cols) -> tuple[list, list]:
    """(future_cols, static_cols), the parameters, checked against the rows' columns (statics merged)."""
    future, static = list(future_cols or ()), list(static_cols or ())
    for name, given in (("future_cols", future), ("static_cols", static)):
        missing = [c for c in given if c not in columns]
        if missing:
            raise ValueError(f"{name}: {missing} are not columns of X (nor of fit's static frame)")
    both = sorted(set(future) & set(static))
    if both:
        raise ValueError(f"columns {both} are in both future_cols and static_cols; a column is one or the other")
    targets = set(target_cols or ())
    clash = sorted(targets & (set(future) | set(static)))
    if clash:
        raise ValueError(f"target_cols {clash} are also covariates (future_cols or static_cols); a forecast target is "
                         "not an input known ahead")
    return future, static


def static_codes(statics: Statics | None, spec: list, ids: np.ndarray,
                 table: pd.DataFrame | None = None) -> np.ndarray | None:
    """(S, W) encoded statics of series ``ids``: from ``table`` (rows given now) where it has the series,
    else as the model holds them (``statics``); a series known to neither encodes as zeros. None for a
    model without statics (an empty encoding ``spec``)."""
    if not spec:
        return None
    codes = np.zeros((len(ids), static_width(spec)), np.float32)
    fitted = pd.Index(statics.ids).get_indexer(pd.Index(ids))
    codes[fitted >= 0] = statics.codes[fitted[fitted >= 0]]
    if table is not None and len(table):
        given = table.index.get_indexer(pd.Index(ids))
        codes[given >= 0] = encode_static(table.iloc[given[given >= 0]], spec)
    return codes


def check_static_rows(statics: Statics | None, spec: list, ids: np.ndarray, table: pd.DataFrame | None, what: str,
                      id_col) -> None:
    """The statics that rows given after fit (``context``, ``update``) carry, ``table`` (one row per series, or
    None when the rows have no static columns), checked against the model's: a series without statics known
    needs them (a silent zero would be the training mean), a column numeric at fit needs numbers, and a series
    whose statics are known keeps them (a static holds one value per series, as at fit)."""
    if not spec:
        return
    names = [name for name, *_ in spec]
    known = pd.Index(statics.ids)
    if table is None:
        unique = pd.unique(np.asarray(ids))
        new = unique[~pd.Index(unique).isin(known)]
        if len(new):
            raise ValueError(f"{what}: the new series {_ids(id_col, new)} have no static columns, but this model reads "
                             f"{names} for every series; add them to their rows (one value per series)")
        return
    for name, kind, *rest in spec:
        if kind != "numeric":
            continue
        column = table[name]
        if pd.api.types.is_numeric_dtype(column.dtype):
            continue
        text = column.notna() & ~column.map(lambda v: isinstance(v, Number)).astype(bool)  # text is not read as 0
        if text.any():
            raise ValueError(f"{what}: static column {name!r} is numeric (as at fit), but the rows of "
                             f"{_ids(id_col, table.index[text])} hold the text {column[text].iloc[0]!r}; give numbers "
                             f"(e.g. pd.to_numeric({what}[{name!r}]))")
    fitted = known.get_indexer(table.index)
    rows = np.flatnonzero(fitted >= 0)
    width = 0
    for entry in spec:
        given = encode_static(table.iloc[rows], [entry])
        before = statics.codes[fitted[rows], width:width + given.shape[1]]
        width += given.shape[1]
        changed = (given != before).any(1)
        if changed.any():
            who = _ids(id_col, table.index[rows[changed]])
            raise ValueError(f"{what}: static column {entry[0]!r} of {who} differs "
                             "from the value the model holds for the series; a static column holds one value per "
                             "series: give that value, or leave the static columns out of the rows of known series "
                             "(refit to change it)")


def _ids(id_col, ids) -> str:
    shown = [v.item() if isinstance(v, np.generic) else v for v in list(ids)[:5]]
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return f"{id_col or 'id'}={shown}{more}"


def fit_statics(table: pd.DataFrame | None) -> tuple[list, Statics | None]:
    """The fitted series' statics (one row per series, or None): their encoding spec and encodings."""
    if table is None:
        return [], None
    spec = fit_static_spec(table)
    return spec, Statics(np.asarray(table.index.to_numpy(), dtype=object), encode_static(table, spec))


def future_query_values(future_names: list, frame: pd.DataFrame, what: str) -> np.ndarray | None:
    """(n, F) the future-known columns of query rows ``frame`` (NaN: not known), or None without any.
    The columns are required: a query frame without them would silently forecast without the inputs the
    model was trained to read."""
    future = list(future_names or ())
    if not future:
        return None
    missing = [c for c in future if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: this model reads the future-known columns {future} in its query rows, and "
                         f"{missing} are missing; give them (NaN where not known)")
    return numeric_values(frame[future].reset_index(drop=True), what, np.float64)
