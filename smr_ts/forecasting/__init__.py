"""Forecasting: from a long frame to a fitted state, and from that state to forecasts.

- :mod:`~smr_ts.forecasting.layout`: what a fit fixes about the inputs (``ForecastLayout``) and its rules.
- :mod:`~smr_ts.forecasting.features`: the causal statistics and each row's inputs.
- :mod:`~smr_ts.forecasting.covariates`: future-known and static columns as model inputs.
- :mod:`~smr_ts.forecasting.covariate_frames`: the pandas side of covariates.
- :mod:`~smr_ts.forecasting.queries`: forecast queries and what the head reads of each.
- :mod:`~smr_ts.forecasting.pairs`: (cut, query) training pairs in windows of rows.
- :mod:`~smr_ts.forecasting.fit`: what a forecasting fit trains on.
- :mod:`~smr_ts.forecasting.intervals`: conformal intervals.
- :mod:`~smr_ts.forecasting.predict`: forecasts in blocks of series.
- :mod:`~smr_ts.forecasting.streaming`: each series' state, advanced over new rows.
"""
