"""Forecasting many series in bounded memory, from the saved states or from the history.

:meth:`SMRForecaster.forecast` lands here. The work runs block by block of series
(:func:`smr_ts.data.panel.panel_blocks`: about a million padded rows each), so memory stays
bounded by the panel itself plus one block's tensors, whatever the number of series: the rows'
inputs and statistics are prepared for one block, the backbone runs over it 64 series at a time,
and the head answers that block's queries. Without ``context`` the fitted history is read in
place and the backbone does not run at all when the state's stream holds each series' output at
its last row (kept current by :meth:`SMRForecaster.update`); with ``context`` the rows are put
together again and the backbone runs over them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from smr_ts._validation import check_params, positive_int
from smr_ts.data.frames import FrameSchema, Rows, check_id_kind
from smr_ts.data.panel import FIRST_GAP, panel_blocks, take_series, to_panel
from smr_ts.data.times import as_fitted_times, parse_time_unit, time_difference
from smr_ts.forecasting.covariate_frames import check_static_rows, future_query_values, static_codes
from smr_ts.forecasting.features import forecast_tensors, since_origin
from smr_ts.forecasting.floor import Floor, apply_floor
from smr_ts.forecasting.adaptive import effective_levels
from smr_ts.forecasting.intervals import adapted_bounds, interval_names, uncertainty_columns
from smr_ts.forecasting.queries import (
    history_rows, horizon_queries, never_observed, query_features, read_queries, warn_never_observed,
    warn_past_horizon,
)
from smr_ts.forecasting.state import ForecastState
from smr_ts.inference import CHUNK, on_device, over_chunks
from smr_ts.model import ForecastNetwork

__all__ = ["forecast_frame", "last_outputs", "predict_queries"]


def forecast_frame(state: ForecastState, network, schema: FrameSchema, names: list[str], *, h=None, times=None,
                   context: Rows | None = None, return_std: bool = False, what: str = "times", levels=None,
                   quantiles=None, horizon=None, device="cpu") -> pd.DataFrame:
    """The frame of ``forecast(h=..., times=..., context=...)`` (arguments checked by the caller): forecasts
    of ``network`` continuing the series of ``state``, read by ``schema``, each target's in its column of
    ``names`` (:func:`~smr_ts.forecasting.intervals.prediction_names`); ``context``: rows read for the
    model; ``quantiles``: the levels of a quantile fit; ``horizon``: the parameter, for warnings."""
    layout = state.layout
    if context is None:
        panel = state.panel
        stream = state.current_stream()
        h_last = None if stream is None else stream.h_last
    else:
        panel = to_panel(*_with_context(state, schema, context), what="context", id_col=schema.id_col,
                         time_col=schema.time_col, info=schema.time_info)
        h_last = None
    n_series = len(panel.ids)
    last_time = panel.last_times
    if h is not None:
        check_params({"h": [positive_int()]}, {"h": h}, "forecast")
        codes = np.repeat(np.arange(n_series), panel.lengths)  # rows are sorted by series, then time
        series, q_times = horizon_queries(codes, panel.time[panel.valid], h, layout.time_unit, schema.time_info)
        q_ids, q_future = panel.ids[series], None
    else:
        q_ids, q_times = read_queries(times, schema.time_info, panel.ids, last_time, schema.id_col, schema.time_col,
                                      what)
        series = pd.Index(panel.ids).get_indexer(q_ids)
        q_future = future_query_values(schema.future_names, times, what)
    ahead = time_difference(q_times, last_time[series])
    reach = None if horizon is None else parse_time_unit(horizon, schema.time_info, "horizon")
    past_now = None if reach is None else time_difference(q_times, np.full(len(q_times), last_time.max()))
    warn_past_horizon(ahead, layout.horizon, horizon, schema.time_info, past_now, reach)
    statics = None if context is None else context.statics
    outputs = {}
    queried = np.unique(series)  # only the queried series are prepared
    lacking = np.zeros((len(queried), len(schema.target_names)), bool)  # targets a queried series never observed
    for block in panel_blocks(panel, len(queried)):
        chosen = queried[block]
        at = np.flatnonzero((series >= chosen[0]) & (series <= chosen[-1]))
        local = np.searchsorted(chosen, series[at])
        future_rows = None if q_future is None else (local, q_times[at], q_future[at])
        data = forecast_tensors(take_series(panel, chosen), layout, FIRST_GAP, future_rows=future_rows,
                                static=static_codes(state.statics, layout.static_spec, panel.ids[chosen], statics))
        lacking[block] = never_observed(data)
        point, std, quantile_levels = predict_queries(
            network, data, layout, local, since_origin(q_times[at], data.origin), device,
            h_last=None if h_last is None else h_last[torch.from_numpy(chosen)], floor=state.floor)
        columns = {"": point, **({"_std": std} if return_std else {})}
        columns = {f"{name}{suffix}": values[:, j] for suffix, values in columns.items()
                   for j, name in enumerate(names)}
        columns.update(uncertainty_columns(layout, state.calibration, names, quantiles, point, quantile_levels, data,
                                           local, ahead[at], levels))
        if levels is not None and state.coverage is not None and len(state.coverage.ids):
            _adapt(columns, state, names, levels, point, data, local, ahead[at], q_ids[at])
        for name, values in columns.items():
            if name not in outputs:
                outputs[name] = np.empty(len(series), np.asarray(values).dtype)
            outputs[name][at] = values
    warn_never_observed(panel.ids[queried], lacking, schema.target_names, schema.id_col)
    out = pd.DataFrame({schema.time_col: schema.time_info.to_times(np.asarray(q_times))})
    if schema.id_col is not None:
        out.insert(0, schema.id_col, q_ids)
    return pd.concat([out, pd.DataFrame(outputs, index=out.index)], axis=1)  # one block: many levels stay fast


def _adapt(columns: dict, state: ForecastState, names: list[str], levels, point, data, local, ahead, q_ids) -> None:
    """Replace the interval columns (of prediction columns ``names``) of queries whose series ``update``
    logged rows for by their bounds at each series' adapted level (:mod:`smr_ts.forecasting.adaptive`)."""
    for j, name in enumerate(names):
        for level in levels:
            own = effective_levels(state.coverage, q_ids, level, j)
            moved = np.flatnonzero(own != level)
            if not len(moved):
                continue
            lo, hi = adapted_bounds(state.layout, state.calibration, name, j, point[moved], data, local[moved],
                                    ahead[moved], own[moved])
            for bound, values in zip(interval_names(name, [level]), (lo, hi)):
                columns[bound] = np.array(columns[bound], dtype=np.float64)
                columns[bound][moved] = values


def _with_context(state: ForecastState, schema: FrameSchema, context: Rows):
    """The fitted history's rows extended by the ``context`` rows (ids of the fitted kind, statics as the model
    holds them, times in the history's dtype), as (ids, raw times, values). A duplicate (id, time) between
    the two is an error of :func:`~smr_ts.data.panel.to_panel`."""
    ids, times, values = history_rows(state.panel, len(schema.value_columns))
    check_id_kind(context.ids, state.panel.ids, schema.id_col, "context")
    check_static_rows(state.statics, state.layout.static_spec, context.ids, context.statics, "context",
                      schema.id_col)  # as update() checks them
    return (np.concatenate([ids, context.ids]),
            np.concatenate([times, as_fitted_times(context.times, times.dtype, schema.time_col, "context")]),
            np.concatenate([values, context.values]))


def last_outputs(model: "ForecastNetwork", data, device, chunk: int = CHUNK) -> torch.Tensor:
    """(S, d_model) the backbone's output at each series' last row, ``chunk`` series at a time (on CPU)."""
    last = data.lengths - 1

    def step(net, sel):
        length = int(data.lengths[sel].max())
        h = net.encode(*(torch.from_numpy(a[sel, :length]).to(device) for a in (data.inputs, data.dt, data.mask)))
        return h[torch.arange(h.shape[0]), torch.from_numpy(last[sel]).to(device)].cpu()

    return torch.cat(over_chunks(model, device, len(data.lengths), step, chunk))


def predict_queries(model: "ForecastNetwork", data, layout, series: np.ndarray, t_query: np.ndarray, device,
                    chunk: int = CHUNK, h_last: torch.Tensor | None = None, floor: Floor = Floor()):
    """Forecasts in the targets' units, float64: ``(point, std, quantile_levels)``, the point forecasts
    (n_queries, T), with a Gaussian head their standard deviations (else None), and with quantiles every
    level (n_queries, T, Q) sorted so that they never cross (monotone rearrangement, Chernozhukov et al.
    2010; else None), the point being the 0.5 level. Every output of a target the query's series never
    observed (no anchor) is NaN.

    Each query of ``series`` (index into ``data``) at relative time ``t_query`` continues from its
    series' last row: the backbone runs over each history once (``chunk`` series at a time,
    :func:`last_outputs`) and the head answers every query from the output there. ``h_last``: those
    outputs, when they are known already (a streaming state, :mod:`smr_ts.forecasting.streaming`).
    ``floor``: what model selection kept per range ahead (:mod:`smr_ts.forecasting.floor`); the network
    runs only where a range kept it.
    """
    k = data.lengths[series] - 1
    if not floor.network_only:  # a point loss: no std, no levels
        return apply_floor(floor, data, layout, series, k, t_query,
                           lambda: predict_queries(model, data, layout, series, t_query, device, chunk, h_last)[0]
                           ), None, None
    if h_last is None:
        h_last = last_outputs(model, data, device, chunk)
    query = torch.from_numpy(query_features(data, layout, series, k, t_query))
    mean, second = on_device(model, device, lambda net: net.decode(h_last[torch.from_numpy(series)].to(device),
                                                                   query.to(device)))
    scale, anchor = data.scale[series, k], data.anchor[series, k]
    if getattr(model, "quantiles", None) is not None:  # the head's second output: every quantile level
        levels = anchor[..., None] + scale[..., None] * np.sort(second.cpu().double().numpy(), -1)
        return levels[..., model.quantiles.index(0.5)], None, levels
    point = anchor + scale * mean.cpu().double().numpy()  # NaN where the series never observed the target
    std = None if second is None else np.where(np.isfinite(anchor), scale * second.cpu().double().numpy(), np.nan)
    return point, std, None
