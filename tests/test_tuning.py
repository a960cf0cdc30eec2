"""Tuning with Optuna: OptunaSearchCV over time cut-offs, and the pruning callback (the optuna extra; skipped
without it)."""

import numpy as np
import pytest

from smr_ts import SMRForecaster
from smr_ts.datasets import make_oscillators
from smr_ts.model_selection import TimeCutoffSplit

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL = dict(d_model=4, state_size=4, n_layers=1, epochs=2, random_state=0)


def _frame():
    return make_oscillators(n_series=6, n_obs=30, random_state=0, start="2024-01-01", freq_unit="1h")


def test_optuna_search_cv_tunes_two_parameters_on_time_cut_offs():
    integration = pytest.importorskip("optuna_integration")
    from optuna.distributions import FloatDistribution, IntDistribution

    df = _frame()
    cv = TimeCutoffSplit(horizon="3h", n_cutoffs=2, step="2h")
    search = integration.OptunaSearchCV(
        SMRForecaster(**SMALL, horizon="3h"), {"lr": FloatDistribution(3e-3, 3e-2, log=True),
                                               "d_model": IntDistribution(4, 8)},
        cv=cv, n_trials=3, random_state=0).fit(df)
    assert len(search.trials_) == 3
    assert 3e-3 <= search.best_params_["lr"] <= 3e-2 and 4 <= search.best_params_["d_model"] <= 8
    scores = [t.value for t in search.trials_]
    assert all(np.isfinite(scores)) and all(s < 0 for s in scores)  # minus a scaled MAE
    assert search.best_estimator_.d_model == search.best_params_["d_model"]
    assert np.isfinite(search.best_estimator_.forecast(h=2)["S5"]).all()


def test_the_pruning_callback_reports_every_epoch_and_prunes():
    from smr_ts.callbacks import OptunaPruning

    df = _frame()
    reported = {}

    def objective(trial):
        model = SMRForecaster(**{**SMALL, "epochs": 3}, callbacks=[OptunaPruning(trial)])
        try:
            model.fit(df)
        finally:
            reported[trial.number] = (dict(trial.storage.get_trial(trial._trial_id).intermediate_values), model)
        return -model.history_[-1]["valid_scaled_mae"]

    keep = optuna.create_study(pruner=optuna.pruners.NopPruner())
    keep.optimize(objective, n_trials=1)
    values, model = reported[0]
    assert sorted(values) == [0, 1, 2]  # every epoch reported
    np.testing.assert_allclose([values[e] for e in range(3)], [r["valid_scaled_mae"] for r in model.history_])

    prune = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=-1.0))  # every score is above -1
    prune.optimize(objective, n_trials=1)
    values, model = reported[0]
    assert prune.trials[0].state == optuna.trial.TrialState.PRUNED and sorted(values) == [0]
    assert not hasattr(model, "model_")  # the fit raised: the estimator is as it was
