"""Damped oscillators observed at Poisson times: a small irregular multi-series data set.

Each series is ``x(t) = amplitude * exp(-damping * t) * cos(2 pi frequency t + phase)`` plus
Gaussian observation noise, observed at the arrival times of a Poisson process (exponential
gaps), so no two series share a grid. The dynamics are known, which makes it a test of whether a
model learns to use the gaps: a last-value forecast ignores them.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd

from smr_ts._validation import Interval, check_params, non_negative_int, positive_int, positive_real

__all__ = ["make_oscillators"]


_PARAMETER_CONSTRAINTS = {
    "n_series": [positive_int()],
    "n_obs": [positive_int()],
    "horizon": [non_negative_int()],
    "rate": [positive_real()],
    "noise": [Interval(Real, 0, None, closed="left")],
    "random_state": [None, non_negative_int(), np.random.Generator],
}


def make_oscillators(
    n_series: int = 32,
    n_obs: int = 60,
    rate: float = 2.0,
    frequency: tuple[float, float] = (0.2, 0.5),
    damping: tuple[float, float] = (0.0, 0.05),
    noise: float = 0.02,
    horizon: int = 0,
    start: str | None = None,
    freq_unit: str = "1h",
    random_state: int | None = 0,
):
    """Generate the data set as a long frame.

    Parameters
    ----------
    n_series : int
        Number of series (ids ``s000``, ``s001``, ...).
    n_obs : int
        Observations per series (the history).
    rate : float
        Mean observations per time unit (gaps are exponential with mean ``1 / rate``).
    frequency, damping : (float, float)
        Per-series frequency (cycles per unit) and damping rate, drawn uniformly in the ranges.
    noise : float
        Standard deviation of the observation noise.
    horizon : int
        Also return this many later observations per series (the truth to forecast).
    start : str, optional
        With a timestamp such as "2024-01-01", times are datetimes with one unit = ``freq_unit``;
        otherwise times are floats.
    random_state : int, optional

    Returns
    -------
    history : DataFrame
        Columns ``unique_id``, ``ds``, ``y``, sorted by series and time.
    future : DataFrame, only when ``horizon > 0``
        The next ``horizon`` observations of every series, same columns.

    Examples
    --------
    >>> history = make_oscillators(n_series=3, n_obs=5)
    >>> history.shape, list(history.columns)
    ((15, 3), ['unique_id', 'ds', 'y'])
    """
    check_params(_PARAMETER_CONSTRAINTS, dict(n_series=n_series, n_obs=n_obs, horizon=horizon, rate=rate,
                                              noise=noise, random_state=random_state), "make_oscillators")
    rng = np.random.default_rng(random_state)
    total = n_obs + horizon
    t = np.cumsum(rng.exponential(1.0 / rate, size=(n_series, total)), axis=1)
    f = rng.uniform(*frequency, size=(n_series, 1))
    d = rng.uniform(*damping, size=(n_series, 1))
    amplitude = rng.uniform(0.5, 1.5, size=(n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    y = amplitude * np.exp(-d * t) * np.cos(2 * np.pi * f * t + phase) + noise * rng.standard_normal(t.shape)
    ids = np.repeat([f"s{i:03d}" for i in range(n_series)], total)
    ds = t.ravel()
    if start is not None:
        ds = pd.Timestamp(start) + pd.to_timedelta(ds * pd.Timedelta(freq_unit).value, unit="ns")
    frame = pd.DataFrame({"unique_id": ids, "ds": ds, "y": y.ravel()})
    is_history = np.tile(np.arange(total) < n_obs, n_series)
    history = frame[is_history].reset_index(drop=True)
    if horizon == 0:
        return history
    return history, frame[~is_history].reset_index(drop=True)
