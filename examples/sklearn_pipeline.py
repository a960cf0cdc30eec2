"""SMRForecaster inside scikit-learn: Pipeline, ColumnTransformer, GridSearchCV, GroupKFold.

Sequence regression on a synthetic long frame: machines whose temperature follows their power
setting with a lag (first-order response, time constant of a few hours), logged at irregular
times by a noisy sensor that sometimes drops out (NaN). The target of every row is the true
temperature at that time, which the row alone does not tell: it depends on the power settings
before it and on how much time passed between them. The (machine, time) pair lives in a
MultiIndex, which the ColumnTransformer keeps with ``set_output(transform="pandas")``.

    python examples/sklearn_pipeline.py [--seed 0] [--epochs 15]

About 10-15 s on a laptop CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smr_ts import SMRForecaster


def make_machines(n_series: int = 36, n_obs: int = 40, noise: float = 8.0, random_state: int = 0):
    """Noisy, gappy temperature readings of machines driven by a piecewise-constant power.

    Between rows the power holds its last setting and the temperature relaxes towards
    ``20 + 0.5 * power`` with a per-machine time constant, solved exactly over each gap.

    Returns
    -------
    X : DataFrame
        Index (``unique_id``, ``ds``), columns ``reading`` (temperature + noise, NaN at dropouts)
        and ``power`` (the setting from this row on).
    y : Series
        The true temperature at each row, indexed like X.
    """
    rng = np.random.default_rng(random_state)
    gaps = rng.exponential(1.0, (n_series, n_obs))  # hours
    changes = rng.random((n_series, n_obs)) < 0.3
    changes[:, 0] = True
    last_change = np.maximum.accumulate(np.where(changes, np.arange(n_obs), 0), axis=1)
    power = np.take_along_axis(rng.uniform(0, 100, (n_series, n_obs)), last_change, axis=1)
    time_constant = rng.uniform(1.5, 4.0, n_series)
    temperature = np.empty((n_series, n_obs))
    temperature[:, 0] = 20 + 0.5 * power[:, 0] * rng.uniform(0, 1, n_series)
    for k in range(1, n_obs):
        target = 20 + 0.5 * power[:, k - 1]
        temperature[:, k] = target + (temperature[:, k - 1] - target) * np.exp(-gaps[:, k] / time_constant)
    reading = temperature + noise * rng.standard_normal(temperature.shape)
    reading[rng.random(reading.shape) < 0.15] = np.nan
    X = pd.DataFrame({
        "unique_id": np.repeat([f"m{i:02d}" for i in range(n_series)], n_obs),
        "ds": np.cumsum(gaps, axis=1).ravel(),
        "reading": reading.ravel(),
        "power": power.ravel(),
    }).set_index(["unique_id", "ds"])
    return X, pd.Series(temperature.ravel(), index=X.index, name="temperature")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args(argv)

    X, y = make_machines(random_state=args.seed)
    groups = X.index.get_level_values("unique_id")  # folds split machines, never a machine's rows
    print(f"X: {len(X)} rows, {groups.nunique()} machines, index {list(X.index.names)}, "
          f"{X['reading'].isna().mean():.0%} of readings missing")
    print(pd.concat([X, y], axis=1).head(4).to_string(float_format="{:.2f}".format), end="\n\n")

    scale = ColumnTransformer([("scale", StandardScaler(), ["reading", "power"])]).set_output(transform="pandas")
    model = SMRForecaster(d_model=16, state_size=8, n_layers=1, epochs=args.epochs, batch_size=8, lr=2e-2,
                          random_state=args.seed)
    pipe = make_pipeline(scale, model)

    start = time.perf_counter()
    search = GridSearchCV(pipe, {"smrforecaster__smr": [False, True]}, cv=GroupKFold(n_splits=3))
    search.fit(X, y, groups=groups)
    results = pd.DataFrame(search.cv_results_)[["param_smrforecaster__smr", "mean_test_score", "std_test_score"]]
    print(f"GridSearchCV with GroupKFold(3) by machine, R^2 ({time.perf_counter() - start:.1f} s):")
    print(results.to_string(index=False, float_format="{:.3f}".format))
    print(f"best params: {search.best_params_}, best R^2 {search.best_score_:.3f}\n")

    # Predictions come back as a frame aligned to X's index (here the MultiIndex).
    pred = search.predict(X)
    print("predict(X), aligned to X's index (rows 10-13 of the first machine):")
    # pred is a Series named like y: rename it (add_suffix on a Series would rename its rows).
    print(pd.concat([X["reading"], y, pred.rename(f"{y.name}_pred")], axis=1).iloc[10:14]
          .to_string(float_format="{:.2f}".format), end="\n\n")

    # Reference: a per-row model sees each row alone (it handles NaN itself), not the history.
    # The sequence model's score is a little optimistic: its smr setting was picked on these series.
    cv = GroupKFold(n_splits=4)
    scores = {
        "SMRForecaster pipeline (best params)": cross_val_score(search.best_estimator_, X, y, groups=groups, cv=cv),
        "per-row HistGradientBoosting": cross_val_score(HistGradientBoostingRegressor(), X, y, groups=groups, cv=cv),
    }
    observed = X["reading"].notna()
    raw = r2_score(y[observed], X["reading"][observed])
    print("cross_val_score, GroupKFold(4) by machine, R^2:")
    for name, s in scores.items():
        print(f"  {name:38s} {s.mean():.3f} +- {s.std():.3f}")
    print(f"  {'raw reading (rows where observed)':38s} {raw:.3f}")
    return {"best_params": search.best_params_, "best_score": float(search.best_score_),
            "cv_results": results, "predictions": pred, "cv_scores": {k: v.tolist() for k, v in scores.items()},
            "raw_reading_r2": float(raw)}


if __name__ == "__main__":
    main()
