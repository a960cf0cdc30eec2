"""Streaming: each series' state after its last row, advanced over new rows only.

A forecast continues a series from its last row (:mod:`smr_ts.forecasting.features`)::

    forecast(t) = anchor + scale * head(h_cut, features(t))

and needs three things from the history: ``h_cut``, the backbone's output at the last row; the
causal statistics at the last row (running mean and scale, which also give each row's inputs);
and the rows themselves (the anchor, the seasonal lags). :meth:`SMRForecaster.update` keeps all
three current without re-running the history:

- the rows are appended to ``history_panel_`` (:func:`append_rows`, in place, with spare room);
- the statistics are running sums per series and value column (count, total, last value, sum and
  number of absolute changes), continued over the new rows by
  :func:`smr_ts.forecasting.features.row_inputs`, the one function that computes them for a fit and
  a forecast too (a cumulative sum seeded with the carried total is the whole history's cumulative
  sum, bit for bit);
- the backbone's state is advanced over the new rows (``advance`` of :mod:`smr_ts.ssm` and
  :mod:`smr_ts.baselines`: S5, S6, GRU-dt and ODE-RNN all carry one; SMR's gate carries its last
  tau inputs), and ``h_cut`` is its output at the new last row.

So the statistics are refreshed at each update, as a forecast from the whole history would
compute them, and update-then-forecast equals a forecast from the full history with the same
weights (tests/test_streaming.py, to 1e-5). ``stream_state_`` holds it all as tensors whose first
dimension runs over ``history_panel_.ids``, so save/load keep it: ``backbone.<name>`` (the
backbone's state), ``h_last`` and ``stats.<name>``.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import torch

from smr_ts._runtime import resolve_device
from smr_ts.data.frames import check_id_kind
from smr_ts.data.panel import (
    FIRST_GAP, SeriesPanel, append_rows, block_size, pad_to_length, panel_blocks, row_gaps, take_series, to_panel,
)
from smr_ts.data.times import as_fitted_times
from smr_ts.forecasting.covariate_frames import check_static_rows, static_codes
from smr_ts.forecasting.features import RunningStatistics, forecast_tensors, row_inputs
from smr_ts.inference import CHUNK, over_chunks

__all__ = ["advance_network", "continued_inputs", "history_state", "update"]

_STATS = tuple(f.name for f in dataclasses.fields(RunningStatistics))


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
    h = network.encoder(inputs) * mask.unsqueeze(-1).to(inputs.dtype)
    return network.backbone.advance(h, dt, mask, state)


def _advance_rows(network, inputs, dt, mask, lengths, state: dict | None, device):
    """Advance ``len(lengths)`` series over their rows, CHUNK series at a time: (h at each one's
    last row, backbone state after it), on the CPU."""
    def step(net, sel):
        length = max(int(lengths[sel].max()), 1)
        own = None if state is None else {k: v[sel].to(device) for k, v in state.items()}
        h, after = advance_network(net, *(torch.from_numpy(a[sel, :length]).to(device) for a in (inputs, dt, mask)), own)
        last = torch.from_numpy(np.maximum(lengths[sel] - 1, 0)).to(device)
        return h[torch.arange(h.shape[0], device=device), last].cpu(), {k: v.cpu() for k, v in after.items()}

    parts = over_chunks(network, device, len(lengths), step)
    return torch.cat([h for h, _ in parts]), {k: torch.cat([s[k] for _, s in parts]) for k in parts[0][1]}


def history_state(network, layout, panel: SeriesPanel, device) -> dict:
    """``stream_state_`` of a panel: every series run from its start, in blocks of series (the
    forecasts' chunks of CHUNK series, so their outputs are the forecasts' own, bit for bit)."""
    parts = []
    for block in panel_blocks(panel):
        sub = take_series(panel, block)
        data = forecast_tensors(sub, layout, FIRST_GAP)
        h_last, backbone = _advance_rows(network, data.inputs, data.dt, data.mask, sub.lengths, None, device)
        parts.append({**{f"backbone.{k}": v for k, v in backbone.items()}, "h_last": h_last,
                      **{f"stats.{k}": torch.from_numpy(v) for k, v in vars(data.statistics).items()}})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


# ---------------------------------------------------------------------------------------- update
def update(est, new_rows):
    """:meth:`SMRForecaster.update`: append ``new_rows`` to the fitted history and advance the
    states of the series they touch over them only.

    All or nothing: every row and id is checked, and the new states computed, before anything of
    ``est`` changes; a refused update leaves its history, states and statics as they were."""
    if est.mode_ != "forecast":
        raise ValueError("update() needs a model fitted without y (forecasting mode)")
    device = resolve_device(est.device, strict=False)
    tables = []  # the static columns of the rows, one row per series, when the rows carry them
    ids, times, values = est._read_known(new_rows, "new_rows", np.float64, static_out=tables)
    panel = est.history_panel_
    check_id_kind(ids, panel.ids, est.id_col, "new_rows")
    times = as_fitted_times(times, panel.time.dtype, est.time_col, "new_rows")
    check_static_rows(est, ids, tables[0] if tables else None, "new_rows")
    codes, uniques = pd.factorize(ids)
    order = np.lexsort((times, codes))
    ids, times, values, codes = ids[order], times[order], values[order], codes[order]
    same = (codes[1:] == codes[:-1]) & (times[1:] == times[:-1])
    if same.any():
        raise ValueError(f"new_rows has duplicate ({est.id_col}, {est.time_col}) rows, for example "
                         f"{_name(est, ids[1:][same][0])}")
    series = pd.Index(panel.ids).get_indexer(ids)
    known = series >= 0
    if known.any():
        last = panel.time[series[known], panel.lengths[series[known]] - 1]
        early = times[known] <= last
        if early.any():
            raise ValueError(f"new_rows: {_name(est, ids[known][early][0])} has a row at or before the last row of its "
                             "history; update appends later observations (to revise the history, refit, or forecast "
                             "with context=)")
    if not known.all():
        _check_starts(est, ids[~known], values[~known])

    # Computed aside, then committed: an error or interrupt before the commit changes nothing.
    state = est.stream_state_ if _has_state(est) else history_state(est.model_, est.layout_, panel, device)
    if known.any():
        rows = np.flatnonzero(known)
        rows = rows[np.lexsort((times[rows], series[rows]))]  # by series (the panel's order), then time
        k_series, k_times, k_values = series[rows], times[rows], values[rows]
        advanced = _advance_known(est, panel, state, k_series, k_times, k_values, device)
    if not known.all():
        new = to_panel(ids[~known], times[~known], values[~known], what="new_rows", id_col=est.id_col,
                       time_col=est.time_col, info=est.time_info_)
        new_state = history_state(est.model_, est.layout_, new, device)
        statics = _new_statics(est, new.ids, tables)
    # The commit.
    if known.any():
        append_rows(panel, k_series, k_times.astype(panel.time.dtype), k_values)
        for name, (index, value) in advanced.items():
            state[name][index] = value
    if not known.all():
        panel, state = _merged(panel, state, new, new_state)
        if statics is not None:
            est.static_ids_, est.static_codes_ = statics
    est.history_panel_, est.stream_state_ = panel, state
    return est


def _name(est, value) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return "the series" if est.id_col is None else f"{est.id_col}={value!r}"


def _has_state(est) -> bool:
    state = getattr(est, "stream_state_", None)
    return state is not None and len(state["h_last"]) == len(est.history_panel_.ids)


def _check_starts(est, ids: np.ndarray, values: np.ndarray) -> None:
    """A new series needs an observed target to start from: without one, its forecasts have no anchor."""
    targets = [est.value_columns_.index(c) for c in est.target_names_]
    observed = pd.Series(~np.isnan(values[:, targets]).all(1)).groupby(ids).any()
    if not observed.all():
        blank = observed.index[~observed.to_numpy()]
        shown = [v.item() if isinstance(v, np.generic) else v for v in blank[:5]]
        who = "the series" if est.id_col is None else f"{est.id_col}={shown}{' and more' if len(blank) > 5 else ''}"
        raise ValueError(f"new_rows: the new series {who} have no observed value of any target {est.target_names_} "
                         "(every row is NaN there); a new series needs at least one observed target value to start "
                         "from: add one, or leave its rows out until it has one")


def _new_statics(est, new_ids: np.ndarray, tables: list):
    """(static_ids_, static_codes_) with the new series' statics added (None for a model without statics)."""
    if not est.layout_.static_spec or not tables:
        return None
    unseen = new_ids[pd.Index(est.static_ids_).get_indexer(new_ids) < 0]
    return (np.concatenate([est.static_ids_, np.asarray(unseen, dtype=object)]),
            np.concatenate([est.static_codes_, static_codes(est, unseen, tables[0])]))


def _advance_known(est, panel: SeriesPanel, state: dict, series, times, values, device) -> dict:
    """The states of fitted series advanced over their new rows, in blocks of series of about
    :data:`BLOCK_ROWS` padded new rows (so a large update takes bounded memory, as forecasts do), as
    ``{name: (series index, new value)}`` for the caller to write."""
    touched, local, counts = np.unique(series, return_inverse=True, return_counts=True)
    prev_time = panel.time[touched, panel.lengths[touched] - 1]
    rank = np.arange(len(series)) - (np.cumsum(counts) - counts)[local]  # row within the series' new rows
    size = block_size(int(counts.max()))
    parts = []
    for start in range(0, len(touched), size):
        block = slice(start, start + size)
        rows = np.flatnonzero((local >= start) & (local < start + size))
        parts.append(_advance_block(est, state, touched[block], prev_time[block], counts[block],
                                    local[rows] - start, rank[rows], times[rows], values[rows], est.model_, device))
    index = torch.from_numpy(touched)
    return {name: (index, torch.cat([part[name] for part in parts])) for name in parts[0]}


def _advance_block(est, state, touched, prev_time, counts, local, rank, times, values, network, device) -> dict:
    n = int(counts.max())
    x = np.zeros((len(touched), n, values.shape[1]))
    observed = np.zeros(x.shape, bool)
    valid = np.zeros((len(touched), n), bool)
    new_time = np.zeros((len(touched), n), times.dtype)
    x[local, rank], observed[local, rank], valid[local, rank] = np.nan_to_num(values), ~np.isnan(values), True
    new_time[local, rank] = times
    last = new_time[np.arange(len(touched)), counts - 1]
    new_time = np.where(valid, new_time, last[:, None])  # padding repeats the last time, as in the panel
    stats = RunningStatistics(**{k: state[f"stats.{k}"][touched].numpy() for k in _STATS})
    inputs, dt, mask, after = continued_inputs(stats, x, observed, valid, new_time, prev_time, est.layout_)
    backbone = {k[len("backbone."):]: v[touched] for k, v in state.items() if k.startswith("backbone.")}
    h_last, backbone = _advance_rows(network, inputs, dt, mask, counts, backbone, device)
    return {"h_last": h_last, **{f"backbone.{k}": v for k, v in backbone.items()},
            **{f"stats.{k}": torch.from_numpy(np.asarray(v, dtype=state[f"stats.{k}"].numpy().dtype))
               for k, v in vars(after).items()}}


def _merged(old: SeriesPanel, state: dict, new: SeriesPanel, new_state: dict):
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
    index = torch.from_numpy(order)
    return (SeriesPanel(ids=all_ids[order], **merged),
            {k: torch.cat([v, new_state[k].to(v.dtype)])[index] for k, v in state.items()})
