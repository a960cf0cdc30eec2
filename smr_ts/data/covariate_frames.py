"""The pandas side of covariates: which columns are static or future-known, read from the frames.

The estimator's ``future_cols`` and ``static_cols`` (and ``fit(static=...)``) are checked and read
here; :mod:`smr_ts.data.covariates` turns what this returns into model inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smr_ts.data.covariates import encode_static, fit_static_spec, static_values, static_width
from smr_ts.data.frames import numeric_values

__all__ = ["check_covariate_columns", "fit_statics", "future_query_values", "merge_static_frame", "split_static",
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


def check_covariate_columns(est, columns: list) -> tuple[list, list]:
    """(future_cols, static_cols) of the estimator, checked against the rows' columns (statics merged)."""
    future, static = list(est.future_cols or ()), list(est.static_cols or ())
    for name, given in (("future_cols", future), ("static_cols", static)):
        missing = [c for c in given if c not in columns]
        if missing:
            raise ValueError(f"{name}: {missing} are not columns of X (nor of fit's static frame)")
    both = sorted(set(future) & set(static))
    if both:
        raise ValueError(f"columns {both} are in both future_cols and static_cols; a column is one or the other")
    targets = set(est.target_cols or ())
    clash = sorted(targets & (set(future) | set(static)))
    if clash:
        raise ValueError(f"target_cols {clash} are also covariates (future_cols or static_cols); a forecast target is "
                         "not an input known ahead")
    return future, static


def split_static(values: pd.DataFrame, ids: np.ndarray, static_names: list, id_col, what: str):
    """(the value columns without the static ones, one row per series of the static ones or None)."""
    if not static_names:
        return values, None
    missing = [c for c in static_names if c not in values.columns]
    if missing:
        raise ValueError(f"{what}: the static columns {missing} are missing; give them as at fit (constant per "
                         "series)")
    table = static_values(values, ids, static_names, id_col, what)
    return values.drop(columns=static_names), table


def static_codes(est, ids: np.ndarray, table: pd.DataFrame | None = None) -> np.ndarray | None:
    """(S, W) encoded statics of series ``ids``: from ``table`` (rows given now) where it has the series,
    else as fitted; a series known to neither encodes as zeros. None for a model without statics."""
    spec = est.layout_.static_spec
    if not spec:
        return None
    codes = np.zeros((len(ids), static_width(spec)), np.float32)
    fitted = pd.Index(est.static_ids_).get_indexer(pd.Index(ids))
    codes[fitted >= 0] = est.static_codes_[fitted[fitted >= 0]]
    if table is not None and len(table):
        given = table.index.get_indexer(pd.Index(ids))
        codes[given >= 0] = encode_static(table.iloc[given[given >= 0]], spec)
    return codes


def fit_statics(est, table: pd.DataFrame | None) -> list:
    """Record the fitted series' statics (``static_ids_``, ``static_codes_``) and return their encoding spec."""
    if table is None:
        return []
    spec = fit_static_spec(table)
    est.static_ids_ = np.asarray(table.index.to_numpy(), dtype=object)
    est.static_codes_ = encode_static(table, spec)
    return spec


def future_query_values(est, frame: pd.DataFrame, what: str) -> np.ndarray | None:
    """(n, F) the future-known columns of query rows ``frame`` (NaN: not known), or None without any.
    The columns are required: a query frame without them would silently forecast without the inputs the
    model was trained to read."""
    future = list(getattr(est, "future_names_", ()) or ())
    if not future:
        return None
    missing = [c for c in future if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: this model reads the future-known columns {future} in its query rows, and "
                         f"{missing} are missing; give them (NaN where not known)")
    return numeric_values(frame[future].reset_index(drop=True), what, np.float64)
