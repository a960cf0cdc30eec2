"""Forecasting many series in bounded memory, from the saved states or from the history.

:meth:`SMRForecaster.forecast` lands here. The work runs block by block of series
(:func:`smr_ts.data.panel.panel_blocks`: about a million padded rows each), so memory stays
bounded by the panel itself plus one block's tensors, whatever the number of series: the rows'
inputs and statistics are prepared for one block, the backbone runs over it 64 series at a time,
and the head answers that block's queries. Without ``context`` the fitted history is read in
place and the backbone does not run at all when ``stream_state_`` holds each series' output at
its last row (kept current by :meth:`SMRForecaster.update`); with ``context`` the rows are put
together again and the backbone runs over them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from smr_ts._runtime import resolve_device
from smr_ts._validation import check_params, positive_int
from smr_ts.data.panel import FIRST_GAP, panel_blocks, take_series, to_panel
from smr_ts.data.times import time_difference
from smr_ts.forecasting.covariate_frames import future_query_values, static_codes
from smr_ts.forecasting.features import forecast_tensors, since_origin
from smr_ts.forecasting.intervals import uncertainty_columns
from smr_ts.forecasting.queries import (
    horizon_queries, never_observed, query_features, read_queries, warn_never_observed, warn_past_horizon,
)
from smr_ts.inference import CHUNK, on_device, over_chunks

__all__ = ["forecast_frame"]


def forecast_frame(est, h, times, context, return_std: bool, what: str, levels) -> pd.DataFrame:
    """The frame of ``est.forecast(h=..., times=..., context=...)`` (arguments checked by the caller)."""
    tables = []  # the statics of context's rows, when they carry them
    if context is None:
        panel = est.history_panel_
        state = getattr(est, "stream_state_", None)
        h_last = state["h_last"] if state is not None and len(state["h_last"]) == len(panel.ids) else None
    else:
        ids, hist_times, values = est._history(context, static_out=tables)
        panel = to_panel(ids, hist_times, values, what="context", id_col=est.id_col, time_col=est.time_col,
                         info=est.time_info_)
        h_last = None
    n_series = len(panel.ids)
    last_time = panel.time[np.arange(n_series), panel.lengths - 1]
    if h is not None:
        check_params({"h": [positive_int()]}, {"h": h}, "forecast")
        codes = np.repeat(np.arange(n_series), panel.lengths)  # rows are sorted by series, then time
        series, q_times = horizon_queries(codes, panel.time[panel.valid], h, est.time_unit_, est.time_info_)
        q_ids, q_future = panel.ids[series], None
    else:
        q_ids, q_times = read_queries(times, est.time_info_, panel.ids, last_time, est.id_col, est.time_col, what)
        series = pd.Index(panel.ids).get_indexer(q_ids)
        q_future = future_query_values(est, times, what)
    ahead = time_difference(q_times, last_time[series])
    warn_past_horizon(ahead, est.horizon_, est.horizon, est.time_info_)
    device = resolve_device(est.device, strict=False)
    outputs = {}
    queried = np.unique(series)  # only the queried series are prepared
    lacking = np.zeros((len(queried), len(est.target_names_)), bool)  # targets a queried series never observed
    for block in panel_blocks(panel, len(queried)):
        chosen = queried[block]
        at = np.flatnonzero((series >= chosen[0]) & (series <= chosen[-1]))
        local = np.searchsorted(chosen, series[at])
        future_rows = None if q_future is None else (local, q_times[at], q_future[at])
        data = forecast_tensors(take_series(panel, chosen), est.layout_, FIRST_GAP, future_rows=future_rows,
                                static=static_codes(est, panel.ids[chosen], *tables))
        lacking[block] = never_observed(data)
        mean, extra = predict_queries(est.model_, data, est.layout_, local, since_origin(q_times[at], data.origin),
                                      device, h_last=None if h_last is None else h_last[torch.from_numpy(chosen)])
        columns = {"": mean, **({"_std": extra} if return_std else {})}
        columns = {f"{name}{suffix}": values[:, j] for suffix, values in columns.items()
                   for j, name in enumerate(est.target_names_)}
        columns.update(uncertainty_columns(est, mean, extra, data, local, ahead[at], levels))
        for name, values in columns.items():
            if name not in outputs:
                outputs[name] = np.empty(len(series), np.asarray(values).dtype)
            outputs[name][at] = values
    warn_never_observed(panel.ids[queried], lacking, est.target_names_, est.id_col)
    out = pd.DataFrame({est.time_col: est.time_info_.to_times(np.asarray(q_times))})
    if est.id_col is not None:
        out.insert(0, est.id_col, q_ids)
    return out.assign(**outputs)


def last_outputs(model: "ForecastNetwork", data, device, chunk: int = CHUNK) -> torch.Tensor:
    """(S, d_model) the backbone's output at each series' last row, ``chunk`` series at a time (on CPU)."""
    last = data.lengths - 1

    def step(net, sel):
        length = int(data.lengths[sel].max())
        h = net.encode(*(torch.from_numpy(a[sel, :length]).to(device) for a in (data.inputs, data.dt, data.mask)))
        return h[torch.arange(h.shape[0]), torch.from_numpy(last[sel]).to(device)].cpu()

    return torch.cat(over_chunks(model, device, len(data.lengths), step, chunk))


def predict_queries(model: "ForecastNetwork", data, layout, series: np.ndarray, t_query: np.ndarray, device,
                    chunk: int = CHUNK, h_last: torch.Tensor | None = None):
    """Forecasts (mean, std or None) in the targets' units, (n_queries, T), float64. A network with
    quantiles gives (its 0.5 level, every level (n_queries, T, Q)) instead, the levels sorted so that
    they never cross (monotone rearrangement, Chernozhukov et al. 2010). Every output of a target the
    query's series never observed (no anchor) is NaN.

    Each query of ``series`` (index into ``data``) at relative time ``t_query`` continues from its
    series' last row: the backbone runs over each history once (``chunk`` series at a time,
    :func:`last_outputs`) and the head answers every query from the output there. ``h_last``: those
    outputs, when they are known already (a streaming state, :mod:`smr_ts.forecasting.streaming`).
    """
    if h_last is None:
        h_last = last_outputs(model, data, device, chunk)
    k = data.lengths[series] - 1
    query = torch.from_numpy(query_features(data, layout, series, k, t_query))
    mean, std = on_device(model, device, lambda net: net.decode(h_last[torch.from_numpy(series)].to(device),
                                                                query.to(device)))
    scale = data.scale[series, k]
    if getattr(model, "quantiles", None) is not None:
        levels = data.anchor[series, k][..., None] + scale[..., None] * np.sort(std.cpu().double().numpy(), -1)
        return levels[..., model.quantiles.index(0.5)], levels
    anchor = data.anchor[series, k]
    mean = anchor + scale * mean.cpu().double().numpy()  # NaN where the series never observed the target
    return mean, (np.where(np.isfinite(anchor), scale * std.cpu().double().numpy(), np.nan) if std is not None else None)
