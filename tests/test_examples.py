"""The examples run end to end (with few epochs) and print what they promise."""

from pathlib import Path

import numpy as np
from _scripts import load_script

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")


def test_quickstart(capsys):
    result = _load("quickstart").main(["--epochs", "2", "--seed", "1"])
    out = capsys.readouterr().out
    for expected in ("Mean squared error", "SMRForecaster", "last value", "y_std", "forecast(h=3",
                     "['config.json', 'weights.pt']", "identical forecasts: True"):
        assert expected in out, expected
    assert np.isfinite([result["mse"], result["last_value_mse"], result["context_mse"]]).all()
    assert 0 <= result["coverage"] <= 1 and result["reload_identical"]


def test_sklearn_pipeline(capsys):
    result = _load("sklearn_pipeline").main(["--epochs", "2"])
    out = capsys.readouterr().out
    for expected in ("GridSearchCV", "best params", "aligned to X's index", "cross_val_score", "HistGradientBoosting"):
        assert expected in out, expected
    assert result["best_params"]["smrforecaster__smr"] in (False, True)
    assert np.isfinite(result["best_score"])
    assert all(len(s) == 4 and np.isfinite(s).all() for s in result["cv_scores"].values())


def test_machines_data_is_a_multiindexed_frame_with_aligned_targets():
    X, y = _load("sklearn_pipeline").make_machines(n_series=3, n_obs=5, random_state=0)
    assert list(X.index.names) == ["unique_id", "ds"] and list(X.columns) == ["reading", "power"]
    assert y.index.equals(X.index) and np.isfinite(y).all()
    assert X.index.is_monotonic_increasing
