"""The real-data suite's rows: last value, seasonal naive, resample and fill, SMRForecaster.

Every row is an object with ``fit(train, query)`` and ``predict(query) -> ndarray`` (one
forecast per query row, in the query's order). ``fit`` sees the query's series and times but
never its values: peers that need a horizon up front (neuralforecast) read it there. After
``fit``, ``info`` holds what the page should say about the fit (series given last value, the
horizon used, epochs run).

The resample-and-fill rows put each series on a regular grid in ``step`` units, fill it by
linear interpolation in time, forecast on the grid and read the forecast back at the real
query times by linear interpolation between grid points (the last grid point, which is the last
observation, anchors the first gap). statsforecast's intervals are read back the same way, from
a band of zero width at the last observation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = (80, 95)  # interval levels whose empirical coverage, width and score the suite reports


# ---------------------------------------------------------------- last value, seasonal naive
def last_values(train: pd.DataFrame) -> pd.Series:
    """Each series' last observed value (at its latest training time)."""
    return train.sort_values(["unique_id", "ds"], kind="stable").groupby("unique_id")["y"].last()


def seasonal_naive_series(train_steps, train_y, query_steps, season: float, step: float,
                          found: np.ndarray | None = None) -> np.ndarray:
    """Seasonal naive for one thinned series, in ``step`` units.

    For a query at q, after the last training position T: look back whole seasons,
    t' = q - k * season with the smallest k >= 1 that puts t' at or before T (the classical
    seasonal naive beyond one season); the forecast is the most recent kept observation within
    half a step of t', and the last value where there is none.
    """
    order = np.argsort(train_steps, kind="stable")
    steps, y = np.asarray(train_steps, float)[order], np.asarray(train_y, float)[order]
    q = np.asarray(query_steps, float)
    end = steps[-1]
    k = np.maximum(1.0, np.ceil((q - end) / season))
    target = q - k * season
    latest = np.searchsorted(steps, target + step / 2, side="right") - 1
    hit = (latest >= 0) & (steps[np.maximum(latest, 0)] >= target - step / 2)
    if found is not None:  # which queries had a seasonal observation (the others got last value)
        found[:] = hit
    return np.where(hit, y[np.maximum(latest, 0)], y[-1])


class LastValue:
    """Each series' last observed value, carried forward."""

    def __init__(self, data, seed: int = 0, budget: dict | None = None):
        self.info = {}

    def fit(self, train, query):
        self.last_ = last_values(train)
        return self

    def predict(self, query) -> np.ndarray:
        return query["unique_id"].map(self.last_).to_numpy(float)


class SeasonalNaive:
    """Seasonal naive on thinned data (the spec's rule; see :func:`seasonal_naive_series`)."""

    def __init__(self, data, seed: int = 0, budget: dict | None = None):
        if data.season is None:
            raise NotApplicable(f"{data.name} has no season")
        self.season, self.step = data.season, data.grid_step or 1.0
        self.info = {}

    def fit(self, train, query):
        self.train_ = {uid: rows for uid, rows in train.groupby("unique_id")}
        return self

    def predict(self, query) -> np.ndarray:
        out, fallback = np.empty(len(query)), 0
        for uid, rows in query.groupby("unique_id"):
            hist = self.train_[uid]
            found = np.empty(len(rows), bool)
            out[query.index.get_indexer(rows.index)] = seasonal_naive_series(
                hist["step"].to_numpy(), hist["y"].to_numpy(), rows["step"].to_numpy(), self.season, self.step,
                found=found)
            fallback += int((~found).sum())
        self.info = {"last_value_fallbacks": fallback, "queries": len(query)}
        return out


class NotApplicable(Exception):
    """The row does not apply to this data set (seasonal naive without a season)."""


# ---------------------------------------------------------------- resample and fill
def regular_grid(steps, y, step: float) -> tuple[np.ndarray, np.ndarray]:
    """A series on a regular grid ending at its last observation, filled by linear interpolation.

    Anchoring the grid at the last observation keeps the value a forecast starts from exact.
    """
    order = np.argsort(steps, kind="stable")
    steps, y = np.asarray(steps, float)[order], np.asarray(y, float)[order]
    n = int(np.floor((steps[-1] - steps[0]) / step + 1e-9)) + 1
    grid = steps[-1] - step * np.arange(n)[::-1]
    return grid, np.interp(grid, steps, y)


def steps_needed(end: float, query_steps, step: float) -> int:
    """Grid steps after ``end`` needed to reach the latest query position."""
    return max(1, int(np.ceil((np.max(query_steps) - end) / step - 1e-9)))


def read_back(end: float, last: float, step: float, forecast, query_steps) -> np.ndarray:
    """A grid forecast (at end + step, end + 2 step, ...) read at real positions by linear
    interpolation, starting from the last grid value at ``end``."""
    forecast = np.asarray(forecast, float)
    positions = end + step * np.arange(len(forecast) + 1)
    return np.interp(np.asarray(query_steps, float), positions, np.r_[last, forecast])


def median_gap(steps) -> float:
    gaps = np.diff(np.sort(np.asarray(steps, float)))
    return float(np.median(gaps)) if len(gaps) else 1.0


class Grids:
    """Every training series on its resample-and-fill grid; ``frame`` has integer ``ds``."""

    def __init__(self, train: pd.DataFrame, grid_step: float | None):
        parts, rows = [], []
        for uid, hist in train.groupby("unique_id", sort=True):
            step = grid_step if grid_step is not None else median_gap(hist["step"])
            grid, values = regular_grid(hist["step"].to_numpy(), hist["y"].to_numpy(), step)
            parts.append(pd.DataFrame({"unique_id": uid, "ds": np.arange(len(grid)), "y": values}))
            rows.append((uid, grid[-1], values[-1], step, len(grid)))
        self.frame = pd.concat(parts, ignore_index=True)
        self.series = pd.DataFrame(rows, columns=["unique_id", "end", "last", "step", "length"]).set_index("unique_id")

    def needed(self, query: pd.DataFrame) -> pd.Series:
        """Grid steps each query series needs."""
        s = self.series
        return query.groupby("unique_id")["step"].max().pipe(
            lambda q: np.ceil((q - s["end"].reindex(q.index)) / s["step"].reindex(q.index) - 1e-9).clip(lower=1)
        ).astype(int)

    def read(self, forecasts: dict, query: pd.DataFrame) -> np.ndarray:
        """Read each series' grid forecast back at its query times; series missing from
        ``forecasts`` get their last value."""
        out = np.empty(len(query))
        for uid, rows in query.groupby("unique_id"):
            end, last, step, _ = self.series.loc[uid]
            at = query.index.get_indexer(rows.index)
            if uid in forecasts:
                out[at] = read_back(end, last, step, forecasts[uid], rows["step"].to_numpy())
            else:
                out[at] = last
        return out


def grid_season(data) -> int | None:
    """The season a grid model fits: the data set's season in grid steps, rounded to a whole number
    (gasoline's 52.18 weeks: 52); None without a season."""
    return None if data.season is None else int(round(data.season / (data.grid_step or 1.0)))


class StatsForecastRow:
    """statsforecast on the resample-and-fill grid: AutoETS (or AutoARIMA), MSTL for long seasons.

    Its prediction intervals at ``LEVELS``, read back at the query times, are kept in ``intervals``.
    """

    def __init__(self, data, seed: int = 0, budget: dict | None = None, model: str = "AutoETS"):
        self.data, self.model = data, model
        self.info = {}

    def _models(self):
        from statsforecast.models import MSTL, AutoARIMA, AutoETS

        season = grid_season(self.data)
        if self.model == "AutoETS":
            if season is None:
                return [AutoETS()], "AutoETS"
            if season <= 24:  # AutoETS silently drops seasons above 24
                return [AutoETS(season_length=season)], f"AutoETS(season_length={season})"
            return ([MSTL(season_length=season, trend_forecaster=AutoETS(model="ZZN"))],
                    f"MSTL(season_length={season}, trend_forecaster=AutoETS(model='ZZN'))")
        if season is None:
            return [AutoARIMA()], "AutoARIMA"
        if season <= 24:
            return [AutoARIMA(season_length=season)], f"AutoARIMA(season_length={season})"
        return ([MSTL(season_length=season, trend_forecaster=AutoARIMA())],
                f"MSTL(season_length={season}, trend_forecaster=AutoARIMA())")

    def fit(self, train, query):
        from statsforecast import StatsForecast
        from statsforecast.models import Naive

        self.grids_ = Grids(train, self.data.grid_step)
        models, described = self._models()
        self.sf_ = StatsForecast(models=models, freq=1, fallback_model=Naive(), n_jobs=1)
        self.sf_.fit(self.grids_.frame)
        self.info = {"model": described + ", fallback Naive()"}
        return self

    def predict(self, query) -> np.ndarray:
        h = int(self.grids_.needed(query).max())
        fc = self.sf_.predict(h=h, level=list(LEVELS))
        if "unique_id" not in fc.columns:
            fc = fc.reset_index()
        fc = fc.sort_values(["unique_id", "ds"])
        [column] = [c for c in fc.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c]

        def read(name):
            return self.grids_.read({uid: rows[name].to_numpy() for uid, rows in fc.groupby("unique_id")}, query)

        self.intervals = {lv: (read(f"{column}-lo-{lv}"), read(f"{column}-hi-{lv}")) for lv in LEVELS}
        return read(column)


class NHITSRow:
    """neuralforecast NHITS, fitted globally on the resample-and-fill grids.

    One horizon H for all series: the most grid steps any query needs; input size 2 H (the
    maintainers' usual choice); series shorter than input size + H on their grid are left out
    of the fit and given their last value.
    """

    # NHITS's defaults but for these two: its 1000 steps of 1024 windows take 1-2 s a step on
    # 2 shared CPU cores, far past the suite's budget.
    MAX_STEPS = 200
    WINDOWS_BATCH_SIZE = 256

    def __init__(self, data, seed: int = 0, budget: dict | None = None):
        self.data, self.seed = data, seed
        self.max_steps = (budget or {}).get("max_steps", self.MAX_STEPS)
        self.info = {}

    def fit(self, train, query):
        import logging

        from neuralforecast import NeuralForecast
        from neuralforecast.models import NHITS

        for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.grids_ = Grids(train, self.data.grid_step)
        h = int(self.grids_.needed(query).max())
        input_size = 2 * h
        long = self.grids_.series.index[self.grids_.series["length"] >= input_size + h]
        n_query = query["unique_id"].nunique()
        n_short = int((~query["unique_id"].drop_duplicates().isin(long)).sum())
        self.info = {"h": h, "input_size": input_size, "max_steps": self.max_steps,
                     "short_series": n_short, "query_series": n_query}
        self.nf_ = None
        if len(long):
            model = NHITS(h=h, input_size=input_size, max_steps=self.max_steps, scaler_type="robust",
                          windows_batch_size=self.WINDOWS_BATCH_SIZE,
                          random_seed=self.seed, accelerator="cpu", enable_progress_bar=False, logger=False,
                          enable_model_summary=False)
            self.nf_ = NeuralForecast(models=[model], freq=1)
            self.nf_.fit(self.grids_.frame[self.grids_.frame["unique_id"].isin(long)])
        return self

    def predict(self, query) -> np.ndarray:
        forecasts = {}
        if self.nf_ is not None:
            fc = self.nf_.predict()
            if "unique_id" not in fc.columns:
                fc = fc.reset_index()
            forecasts = {uid: rows.sort_values("ds")["NHITS"].to_numpy() for uid, rows in fc.groupby("unique_id")}
        return self.grids_.read(forecasts, query)


# ---------------------------------------------------------------- smr_ts

def covariate_settings(data) -> dict:
    """SMRForecaster keywords that read a data set's covariates (``real_data.with_covariates``)."""
    roles = data.covariate_roles
    if not roles:
        raise NotApplicable(f"{data.name} has no covariates")
    return {"target_cols": ["y"], **({"future_cols": roles["future"]} if roles.get("future") else {}),
            **({"static_cols": roles["static"]} if roles.get("static") else {})}


class SMRRow:
    """SMRForecaster through the public API: ``fit(train)``, then ``forecast(times=query)``.

    ``covariates=True``: the data set's covariates join the rows (``real_data.with_covariates``), as
    future-known or static columns; the query rows then carry their known values. ``"control"``: the
    same data sets (NotApplicable elsewhere) without them."""

    def __init__(self, data, seed: int = 0, budget: dict | None = None, kwargs: dict | None = None):
        kwargs = dict(kwargs or {})
        self.covariates = kwargs.pop("covariates", False)
        self.data = data
        reading = covariate_settings(data) if self.covariates else {}  # NotApplicable without covariates
        self.covariates = self.covariates is True
        self.kwargs = {**(reading if self.covariates else {}), **kwargs, **(budget or {})}
        self.seed = seed
        self.info = {}

    def fit(self, train, query):
        from smr_ts import SMRForecaster
        from real_data import with_covariates

        # The user tells fit the longest horizon they will ask for (the query times, never values), counted
        # as SMRForecaster counts it, from the training frame's last time, when every query lies after it
        # (one cut-off for the panel). Where each series has its own cut-off (a patient's last
        # concentration, a chick's last weights) some queries lie before that time, and the user counts
        # from each series' last row.
        now = train["ds"].max()
        if (query["ds"] > now).all():
            ahead = query["ds"].max() - now
        else:
            last = train.groupby("unique_id")["ds"].max()
            ahead = (query["ds"] - query["unique_id"].map(last)).max()
        self.model_ = SMRForecaster(random_state=self.seed, verbose=0, **{"horizon": ahead, **self.kwargs})
        if self.covariates:
            train, self.query_rows = with_covariates(self.data, train, query)
        else:
            train, self.query_rows = train[["unique_id", "ds", "y"]], query[["unique_id", "ds"]]
        self.model_.fit(train)
        history = getattr(self.model_, "history_", None) or []
        self.info = {"epochs_run": len(history), "best_epoch": getattr(self.model_, "best_epoch_", None),
                     "kept": getattr(self.model_, "selected_forecaster_", None)}
        return self

    def predict(self, query) -> np.ndarray:
        """Point forecasts; the conformal intervals at ``LEVELS`` are kept in ``self.intervals``."""
        keys = query[["unique_id", "ds"]]
        out = self.model_.forecast(times=self.query_rows.reset_index(drop=True), level=list(LEVELS))
        merged = keys.merge(out, on=["unique_id", "ds"], how="left", validate="one_to_one")
        name = self.model_.alias_  # the forecast column, named after the model
        self.intervals = {lv: (merged[f"{name}-lo-{lv}"].to_numpy(float), merged[f"{name}-hi-{lv}"].to_numpy(float))
                          for lv in LEVELS}
        return merged[name].to_numpy(float)
