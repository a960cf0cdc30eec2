"""Padded per-series arrays: the panel every model reads, and its operations.

A :class:`SeriesPanel` holds the series of one frame padded to a common length: times, values
with their observed masks, and each step's row in the frame. :func:`to_panel` builds it from rows;
the other functions take series out of it (:func:`take_series`, :func:`panel_blocks`) or append
rows to it (:func:`append_rows`). Every operation is vectorised: no Python loop runs over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smr_ts.data.times import TimeInfo, plain
from smr_ts.inference import CHUNK

__all__ = ["BLOCK_ROWS", "FIRST_GAP", "SeriesPanel", "append_rows", "block_size", "median_gap", "pad_to_length",
           "panel_blocks", "row_gaps", "take_series", "to_panel"]

FIRST_GAP = 1.0  # gap given to each series' first step, in time units (the S5 convention)
BLOCK_ROWS = 1 << 20  # padded rows per block of series prepared at once: bounds the memory of large panels


@dataclass
class SeriesPanel:
    """Series of one frame, padded to a common length ``L``; ``S`` series, ``F`` value columns.

    Attributes
    ----------
    ids : ndarray (S,)
        Series ids, sorted.
    rows : ndarray of int64 (S, L)
        Position of each step's row in the input frame; -1 at padding.
    time : ndarray (S, L)
        Raw times: int64 nanoseconds for datetimes, float64 otherwise; padding repeats the
        series' last time.
    values : ndarray of float32 (S, L, F)
        Values with NaN (unobserved) and padding replaced by 0.
    value_observed : ndarray of bool (S, L, F)
        False where a value was NaN or is padding.
    valid : ndarray of bool (S, L)
        True where a row exists (False at padding).
    lengths : ndarray of int64 (S,)
        Rows per series.
    """

    ids: np.ndarray
    rows: np.ndarray
    time: np.ndarray
    values: np.ndarray
    value_observed: np.ndarray
    valid: np.ndarray
    lengths: np.ndarray

    @property
    def last_times(self) -> np.ndarray:
        """(S,) each series' last row's raw time."""
        return self.time[np.arange(len(self.ids)), self.lengths - 1]

    def gaps(self, unit: float, first_gap: float = FIRST_GAP) -> np.ndarray:
        """(S, L) float64 time since the previous row in ``unit`` s; ``first_gap`` at each first row, 0 at padding."""
        return row_gaps(self.time, self.valid, unit, first_gap=first_gap)


def row_gaps(time: np.ndarray, valid: np.ndarray, unit: float, previous: np.ndarray | None = None,
             first_gap: float = FIRST_GAP) -> np.ndarray:
    """(S, L) float64 time since each row's previous one in ``unit`` s, 0 at padding (not ``valid``). The
    first row's previous one is at ``previous`` (S,) raw times (rows that continue a history), or, without
    it, the first row's gap is ``first_gap``. Raw times subtract in their own dtype: integers exactly."""
    before = time[:, :1] if previous is None else np.asarray(previous, time.dtype)[:, None]
    dt = np.diff(np.concatenate([before, time], axis=1), axis=1).astype(np.float64) / unit
    if previous is None:
        dt[:, 0] = first_gap
    return np.where(valid, dt, 0.0)


_BLOCK_VALUES = 1 << 20  # values per block when to_panel scatters rows: a few MB, cache-sized


def to_panel(ids: np.ndarray, times: np.ndarray, values: np.ndarray, *, what: str = "X", id_col="id", time_col="time",
             info: TimeInfo | None = None):
    """Group rows by series, sort each series by time and pad: rows -> :class:`SeriesPanel`.

    Parameters
    ----------
    ids : ndarray (n,)
    times : ndarray (n,)
        Raw times (see :func:`split_frame`).
    values : ndarray (n, F)
        float32 or float64 values (the panel keeps the dtype); NaN means not observed.
    what, id_col, time_col : str
        Names used in error messages.
    info : TimeInfo, optional
        The kind of ``times``, so that error messages show datetimes as datetimes.

    Raises
    ------
    ValueError
        If two rows share a (series id, time) pair.

    Examples
    --------
    >>> panel = to_panel(np.array(["b", "a", "a"]), np.array([5.0, 2.0, 1.0]),
    ...                  np.array([[1.0], [2.0], [3.0]], dtype=np.float32))
    >>> panel.ids.tolist(), panel.rows.tolist()
    (['a', 'b'], [[2, 1], [0, -1]])
    """
    codes, uniques = pd.factorize(ids, sort=True)
    order = np.lexsort((times, codes))
    codes_sorted, times_sorted = codes[order], times[order]
    same = (codes_sorted[1:] == codes_sorted[:-1]) & (times_sorted[1:] == times_sorted[:-1])
    if same.any():
        first = order[1:][same][0]
        when = times[first] if info is None else info.to_times(times[first : first + 1])[0]
        shown = str(when) if isinstance(when, pd.Timestamp) else repr(plain(when))
        raise ValueError(
            f"{what} has {int(same.sum())} duplicate ({id_col}, {time_col}) rows, for example "
            f"{id_col}={plain(ids[first])!r}, {time_col}={shown}"
        )
    n_series = len(uniques)
    lengths = np.bincount(codes_sorted, minlength=n_series).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(len(order)) - starts[codes_sorted]
    length = int(lengths.max())

    rows = np.full((n_series, length), -1, dtype=np.int64)
    rows[codes_sorted, position] = order
    valid = rows >= 0
    # Padding repeats the last time, so gaps over padding are 0.
    # int64 nanoseconds stay integers: float64 would round present-day datetimes to 256 ns.
    time = np.empty((n_series, length), dtype=np.int64 if times.dtype.kind in "iu" else np.float64)
    time[codes_sorted, position] = times_sorted
    last = time[np.arange(n_series), lengths - 1]
    time = np.where(valid, time, last[:, None])
    # Rows are scattered to their padded slots in blocks of the input's order. pandas hands out
    # column-major arrays: a block is transposed in cache on its way, cheaper than a row-major copy
    # of the whole input first (docs/results/frames_design.md). Padding stays uninitialised until
    # the NaNs are zeroed below.
    n_features = values.shape[1]
    destination = np.empty(len(order), dtype=np.int64)
    destination[order] = codes_sorted * length + position
    packed = np.empty((n_series, length, n_features), dtype=values.dtype)
    flat = packed.reshape(n_series * length, n_features)
    block = max(1024, _BLOCK_VALUES // max(n_features, 1))
    for start in range(0, len(order), block):
        flat[destination[start : start + block]] = values[start : start + block]
    observed = np.isnan(packed)
    np.logical_not(observed, out=observed)
    observed &= valid[:, :, None]
    # Zero NaN and padding by multiplying the float bits by 0 or 1: exact, and faster than np.putmask
    # or np.nan_to_num (docs/results/frames_design.md).
    bits = packed.view(np.uint64 if packed.dtype == np.float64 else np.uint32)
    np.multiply(bits, observed, out=bits)
    return SeriesPanel(
        ids=np.asarray(uniques), rows=rows, time=time, values=packed,
        value_observed=observed, valid=valid, lengths=lengths,
    )


def median_gap(panel: SeriesPanel) -> float:
    """Median positive gap between consecutive rows of a series, in raw units (1.0 if none)."""
    gaps = np.diff(panel.time, axis=1)[panel.valid[:, 1:]]
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if gaps.size else 1.0


# ---------------------------------------------------------------------------------------- panels
def take_series(panel: SeriesPanel, sel) -> SeriesPanel:
    """The series ``sel`` (a slice or indices) of a panel, cut to their longest length."""
    lengths = panel.lengths[sel]
    length = max(int(lengths.max()), 1) if len(lengths) else 1
    return SeriesPanel(ids=panel.ids[sel], rows=panel.rows[sel, :length], time=panel.time[sel, :length],
                       values=panel.values[sel, :length], value_observed=panel.value_observed[sel, :length],
                       valid=panel.valid[sel, :length], lengths=lengths)


def block_size(longest: int, chunk: int = CHUNK, rows: int | None = None) -> int:
    """Series per block when the longest of them has ``longest`` padded rows: a multiple of ``chunk``
    series holding about ``rows`` (default :data:`BLOCK_ROWS`) padded rows at most (one chunk at least)."""
    rows = BLOCK_ROWS if rows is None else rows
    return max(chunk, (rows // max(longest, 1)) // chunk * chunk)


def panel_blocks(panel: SeriesPanel, n: int | None = None, chunk: int = CHUNK, rows: int | None = None):
    """Slices of ``n`` series (default: all the panel's), each of :func:`block_size` series, so that
    preparing a block takes bounded memory."""
    n = len(panel.lengths) if n is None else n
    longest = max(int(panel.lengths.max()), 1) if len(panel.lengths) else 1
    size = block_size(longest, chunk, rows)
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def append_rows(panel: SeriesPanel, series: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Append rows (sorted by series, then time; every time after its series' last) to ``panel`` in
    place, growing its padded length by an eighth when it must. Returns each row's position."""
    counts = np.bincount(series, minlength=len(panel.lengths))
    first = np.r_[0, np.cumsum(counts)[:-1]]
    position = panel.lengths[series] + np.arange(len(series)) - first[series]
    needed = int((panel.lengths + counts).max())
    if needed > panel.time.shape[1]:
        pad_to_length(panel, max(needed, panel.time.shape[1] + panel.time.shape[1] // 8 + 8))
    start = int(panel.lengths.sum())  # rows number the fitted frame's rows, then every update's
    observed = ~np.isnan(values)
    panel.rows[series, position] = start + np.arange(len(series))
    panel.time[series, position] = times
    panel.values[series, position] = np.where(observed, values, 0.0)
    panel.value_observed[series, position] = observed
    panel.valid[series, position] = True
    panel.lengths += counts
    touched = np.flatnonzero(counts)
    last = panel.time[touched, panel.lengths[touched] - 1]
    after = np.arange(panel.time.shape[1]) >= panel.lengths[touched, None]
    panel.time[touched] = np.where(after, last[:, None], panel.time[touched])  # padding repeats the last time
    return position


def pad_to_length(panel: SeriesPanel, length: int) -> None:
    """Pad ``panel``'s arrays (in place: new arrays) to ``length`` rows; padding repeats each series' last time."""
    extra = length - panel.time.shape[1]
    pad = lambda a, value: np.concatenate(  # noqa: E731
        [a, np.full((a.shape[0], extra) + a.shape[2:], value, a.dtype)], 1)
    panel.time = np.concatenate([panel.time, np.repeat(panel.time[:, -1:], extra, 1)], 1)
    panel.rows, panel.values = pad(panel.rows, -1), pad(panel.values, 0)
    panel.value_observed, panel.valid = pad(panel.value_observed, False), pad(panel.valid, False)
