"""Streaming: each series' state after its last row, advanced over new rows only.

A forecast continues a series from its last row (:mod:`smr_ts.forecasting.features`)::

    forecast(t) = anchor + scale * head(h_cut, features(t))

and needs three things from the history: ``h_cut``, the backbone's output at the last row; the
causal statistics at the last row (running mean and scale, which also give each row's inputs);
and the rows themselves (the anchor, the seasonal lags). :meth:`SMRForecaster.update` keeps all
three current without re-running the history:

- the rows are appended to the state's panel (:func:`~smr_ts.data.panel.append_rows`, in place, with
  spare room);
- the statistics are running sums per series and value column (count, total, last value, sum and
  number of absolute changes, and the recent scale's exponentially weighted sums with the last
  observation's time), continued over the new rows by
  :func:`smr_ts.forecasting.features.row_inputs`, the one function that computes them for a fit and
  a forecast too (a cumulative sum seeded with the carried total is the whole history's cumulative
  sum, bit for bit);
- the backbone's state is advanced over the new rows (``advance`` of :mod:`smr_ts.ssm` and
  :mod:`smr_ts.baselines`: S5, S6, GRU-dt and ODE-RNN all carry one; SMR's gate carries its last
  tau inputs), and ``h_cut`` is its output at the new last row.

So the statistics are refreshed at each update, as a forecast from the whole history would
compute them, and update-then-forecast equals a forecast from the full history with the same
weights (tests/forecasting/test_streaming.py, to 1e-5). The state's stream
(:class:`~smr_ts.forecasting.state.StreamState`) holds it all, its first dimension over the
panel's ids, so save/load keep it.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import torch

from smr_ts.data.frames import FrameSchema, Rows, check_id_kind
from smr_ts.data.panel import (
    FIRST_GAP, SeriesPanel, append_rows, block_size, pad_to_length, panel_blocks, row_gaps, take_series, to_panel,
)
from smr_ts.data.times import as_fitted_times
from smr_ts.forecasting.covariate_frames import check_static_rows, static_codes
from smr_ts.forecasting.features import RunningStatistics, forecast_tensors, row_inputs
from smr_ts.forecasting.state import ForecastState, StreamState
from smr_ts.inference import over_chunks

__all__ = ["advance_network", "continued_inputs", "history_state", "update"]



# ---------------------------------------------------------------------------------------- statistics
def continued_inputs(stats: RunningStatistics, x: np.ndarray, observed: np.ndarray, valid: np.ndarray,
                     time: np.ndarray, prev_time: np.ndarray, layout):
    """The backbone inputs of new rows (S, n, F values; padding where not ``valid``) of series whose
    statistics so far are ``stats`` and whose last row was at ``prev_time``: (inputs, dt, mask, the
    statistics after them), from :func:`~smr_ts.forecasting.features.row_inputs`: the same numbers as a
    forecast from the whole history gives those rows."""
    x = np.where(observed, x.astype(np.float64), 0.0)
    dt = row_gaps(time, valid, layout.time_unit, previous=prev_time)
    inputs, row_stats = row_inputs(x, observed, valid, time, dt, layout, carry=stats)
    return inputs, dt.astype(np.float32), observed.any(-1), row_stats.after


# ---------------------------------------------------------------------------------------- the network
def advance_network(network, inputs: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor, state: dict | None):
    """:meth:`ForecastNetwork.encode` continued from the backbone's ``state`` (None: the series
    start here): ``(outputs at every row, state after them)``."""
    return network.advance(inputs, dt, mask, state)


def _advance_rows(network, inputs, dt, mask, lengths, state: dict | None, device):
    """Advance ``len(lengths)`` series over their rows, CHUNK series at a time: (h at each one's
    last row, backbone state after it), on the CPU."""
    def step(net, sel):
        length = max(int(lengths[sel].max()), 1)
        own = None if state is None else {k: v[sel].to(device) for k, v in state.items()}
        rows = (torch.from_numpy(a[sel, :length]).to(device) for a in (inputs, dt, mask))
        h, after = advance_network(net, *rows, own)
        last = torch.from_numpy(np.maximum(lengths[sel] - 1, 0)).to(device)
        return h[torch.arange(h.shape[0], device=device), last].cpu(), {k: v.cpu() for k, v in after.items()}

    parts = over_chunks(network, device, len(lengths), step)
    return torch.cat([h for h, _ in parts]), {k: torch.cat([s[k] for _, s in parts]) for k in parts[0][1]}


def history_state(network, layout, panel: SeriesPanel, device) -> StreamState:
    """The stream state of a panel: every series run from its start, in blocks of series (the
    forecasts' chunks of CHUNK series, so their outputs are the forecasts' own, bit for bit)."""
    parts = []
    for block in panel_blocks(panel):
        sub = take_series(panel, block)
        data = forecast_tensors(sub, layout, FIRST_GAP)
        h_last, backbone = _advance_rows(network, data.inputs, data.dt, data.mask, sub.lengths, None, device)
        parts.append(StreamState(backbone, h_last, data.statistics))
    return StreamState.concat(parts)


# ---------------------------------------------------------------------------------------- update
def update(state: ForecastState, network, rows: Rows, schema: FrameSchema, device) -> ForecastState:
    """:meth:`SMRForecaster.update`: ``state`` with ``rows`` (``new_rows`` read for the model) appended to
    its history and the stream states of the series they touch advanced over them only.

    All or nothing: every row and id is checked, and the new states computed, before anything changes;
    a refused update leaves ``state`` as it was. Then the history's arrays and the states grow in place
    (appending costs the new rows only), so the returned state replaces ``state``."""
    ids, values = rows.ids, rows.values
    panel = state.panel
    check_id_kind(ids, panel.ids, schema.id_col, "new_rows")
    times = as_fitted_times(rows.times, panel.time.dtype, schema.time_col, "new_rows")
    check_static_rows(state.statics, state.layout.static_spec, ids, rows.statics, "new_rows", schema.id_col)
    codes, uniques = pd.factorize(ids)
    order = np.lexsort((times, codes))
    ids, times, values, codes = ids[order], times[order], values[order], codes[order]
    same = (codes[1:] == codes[:-1]) & (times[1:] == times[:-1])
    if same.any():
        raise ValueError(f"new_rows has duplicate ({schema.id_col}, {schema.time_col}) rows, for example "
                         f"{schema.name(ids[1:][same][0])}")
    series = pd.Index(panel.ids).get_indexer(ids)
    known = series >= 0
    if known.any():
        last = panel.time[series[known], panel.lengths[series[known]] - 1]
        early = times[known] <= last
        if early.any():
            raise ValueError(f"new_rows: {schema.name(ids[known][early][0])} has a row at or before the last row of "
                             "its history; update appends later observations (to revise the history, refit, or "
                             "forecast with context=)")
    if not known.all():
        _check_starts(schema, ids[~known], values[~known])

    # Computed aside, then committed: an error or interrupt before the commit changes nothing.
    stream = state.current_stream()
    stream = history_state(network, state.layout, panel, device) if stream is None else stream
    if known.any():
        at = np.flatnonzero(known)
        at = at[np.lexsort((times[at], series[at]))]  # by series (the panel's order), then time
        k_series, k_times, k_values = series[at], times[at], values[at]
        touched, advanced = _advance_known(state.layout, panel, stream, k_series, k_times, k_values, network, device)
    statics = state.statics
    if not known.all():
        new = to_panel(ids[~known], times[~known], values[~known], what="new_rows", id_col=schema.id_col,
                       time_col=schema.time_col, info=schema.time_info)
        new_stream = history_state(network, state.layout, new, device)
        if state.layout.static_spec and rows.statics is not None:
            unseen = new.ids[pd.Index(statics.ids).get_indexer(new.ids) < 0]
            statics = statics.with_series(unseen, static_codes(statics, state.layout.static_spec, unseen, rows.statics))
    # The commit.
    if known.any():
        append_rows(panel, k_series, k_times.astype(panel.time.dtype), k_values)
        stream.write(touched, advanced)
    if not known.all():
        panel, stream = _merged(panel, stream, new, new_stream)
    return dataclasses.replace(state, panel=panel, statics=statics, stream=stream)


def _check_starts(schema: FrameSchema, ids: np.ndarray, values: np.ndarray) -> None:
    """A new series needs an observed target to start from: without one, its forecasts have no anchor."""
    targets = [schema.value_columns.index(c) for c in schema.target_names]
    observed = pd.Series(~np.isnan(values[:, targets]).all(1)).groupby(ids).any()
    if not observed.all():
        blank = observed.index[~observed.to_numpy()]
        shown = [v.item() if isinstance(v, np.generic) else v for v in blank[:5]]
        more = " and more" if len(blank) > 5 else ""
        who = "the series" if schema.id_col is None else f"{schema.id_col}={shown}{more}"
        raise ValueError(f"new_rows: the new series {who} have no observed value of any target {schema.target_names} "
                         "(every row is NaN there); a new series needs at least one observed target value to start "
                         "from: add one, or leave its rows out until it has one")


def _advance_known(layout, panel: SeriesPanel, stream: StreamState, series, times, values, network, device):
    """The states of fitted series advanced over their new rows, in blocks of series of about
    :data:`~smr_ts.data.panel.BLOCK_ROWS` padded new rows (so a large update takes bounded memory, as
    forecasts do): (the series touched, their new states) for the caller to write."""
    touched, local, counts = np.unique(series, return_inverse=True, return_counts=True)
    prev_time = panel.time[touched, panel.lengths[touched] - 1]
    rank = np.arange(len(series)) - (np.cumsum(counts) - counts)[local]  # row within the series' new rows
    size = block_size(int(counts.max()))
    parts = []
    for start in range(0, len(touched), size):
        block = slice(start, start + size)
        at = np.flatnonzero((local >= start) & (local < start + size))
        parts.append(_advance_block(layout, stream.take(touched[block]), prev_time[block], counts[block],
                                    local[at] - start, rank[at], times[at], values[at], network, device))
    return touched, StreamState.concat(parts)


def _advance_block(layout, stream: StreamState, prev_time, counts, local, rank, times, values, network,
                   device) -> StreamState:
    n = int(counts.max())
    x = np.zeros((len(counts), n, values.shape[1]))
    observed = np.zeros(x.shape, bool)
    valid = np.zeros((len(counts), n), bool)
    new_time = np.zeros((len(counts), n), times.dtype)
    x[local, rank], observed[local, rank], valid[local, rank] = np.nan_to_num(values), ~np.isnan(values), True
    new_time[local, rank] = times
    last = new_time[np.arange(len(counts)), counts - 1]
    new_time = np.where(valid, new_time, last[:, None])  # padding repeats the last time, as in the panel
    inputs, dt, mask, after = continued_inputs(stream.statistics, x, observed, valid, new_time, prev_time, layout)
    h_last, backbone = _advance_rows(network, inputs, dt, mask, counts, stream.backbone, device)
    return StreamState(backbone, h_last, after)


def _merged(old: SeriesPanel, stream: StreamState, new: SeriesPanel, new_stream: StreamState):
    """The panel and states of the fitted series and of new ones, merged in id order (new arrays)."""
    length = max(old.time.shape[1], new.time.shape[1])
    old, new = copy.copy(old), copy.copy(new)  # pad_to_length replaces arrays: the panels given stay as they are
    for p in (old, new):
        if p.time.shape[1] < length:
            pad_to_length(p, length)
    rows = np.where(new.valid, new.rows + int(old.lengths.sum()), -1)
    all_ids = np.concatenate([old.ids, new.ids])
    order = np.argsort(all_ids, kind="stable")
    merged = {name: np.concatenate([getattr(old, name), rows if name == "rows" else getattr(new, name)])[order]
              for name in ("rows", "time", "values", "value_observed", "valid", "lengths")}
    return SeriesPanel(ids=all_ids[order], **merged), StreamState.concat([stream, new_stream]).take(order)
