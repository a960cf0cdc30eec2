"""The "smr_ts" logger (smr_ts/_logging.py): what a fit read and decided at INFO, each epoch at DEBUG, shown on
stderr by verbose=1, silent otherwise."""

import logging

import numpy as np
import pandas as pd

from smr_ts import SMRForecaster

SMALL = dict(d_model=8, state_size=8, n_layers=1, epochs=3, batch_size=8, random_state=0)


def _frame(n_series=6, n_obs=40):
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], n_obs), "ds": t.ravel(),
                         "y": np.sin(t).ravel(), "price": rng.normal(size=t.size), "temp": rng.normal(size=t.size)})


def test_a_fit_logs_what_it_read_and_kept_at_info_and_each_epoch_at_debug(caplog):
    with caplog.at_level(logging.DEBUG, logger="smr_ts"):
        model = SMRForecaster(**SMALL, target_cols=["y"], future_cols=["temp"]).fit(_frame())
    records = [r for r in caplog.records if r.name == "smr_ts"]
    start = next(r.getMessage() for r in records if r.getMessage().startswith("fit: forecasting"))
    assert "targets ['y']" in start and "known ahead ['temp']" in start and "past only ['price']" in start
    end = [r.getMessage() for r in records if r.getMessage().startswith("fit done")]
    assert len(end) == 1 and f"{len(model.history_)} epochs" in end[0]
    epochs = [r for r in records if r.levelno == logging.DEBUG and r.getMessage().startswith("epoch ")]
    assert len(epochs) == len(model.history_) and "valid_scaled_mae" in epochs[0].getMessage()
    assert any("model selection kept" in r.getMessage() for r in records if r.levelno == logging.INFO)


def test_regression_fits_log_their_start_too(caplog):
    frame = _frame()
    with caplog.at_level(logging.INFO, logger="smr_ts"):
        SMRForecaster(**SMALL).fit(frame[["unique_id", "ds", "price"]], frame["y"])
    assert any(r.getMessage().startswith("fit: regression on 6 series (240 rows)") for r in caplog.records)


def test_verbose_shows_the_info_lines_on_stderr_and_quiet_fits_show_nothing(capfd):
    frame = _frame()
    SMRForecaster(**SMALL).fit(frame)
    assert "smr_ts: fit" not in capfd.readouterr().err
    SMRForecaster(**SMALL, verbose=1).fit(frame)
    err = capfd.readouterr().err
    assert "smr_ts: fit: forecasting 6 series" in err and "smr_ts: fit done" in err
    assert "smr_ts: epoch" not in err  # DEBUG needs verbose=3
    assert logging.getLogger("smr_ts").level == logging.NOTSET  # the fit put the logger back
    SMRForecaster(**SMALL, verbose=3).fit(frame)
    assert "smr_ts: epoch 0:" in capfd.readouterr().err


def test_a_reset_to_last_value_is_logged(caplog):
    """A learning rate too small to move the weights: no epoch beats last value by two standard errors,
    selection keeps the last-value network, and the fit says so."""
    with caplog.at_level(logging.INFO, logger="smr_ts"):
        model = SMRForecaster(**{**SMALL, "epochs": 1}, lr=1e-12, ssm_lr=1e-12, floor=False).fit(_frame())
    assert model.best_epoch_ == -1
    assert any("kept the last-value network" in r.getMessage() for r in caplog.records
               if r.getMessage().startswith("fit done"))


def test_require_gain_logs_the_reset_with_the_gain_it_saw(caplog):
    from types import SimpleNamespace

    import torch

    from smr_ts.callbacks import EarlyStopping, RequireGain

    net = torch.nn.Linear(1, 1)
    stopper = EarlyStopping()
    stopper.best_epoch = 0
    gate = RequireGain(stopper)
    state = SimpleNamespace(model=net, history=[{"epoch": 0, "valid_gain_z": 1.25}])
    gate.on_train_begin(state)
    with caplog.at_level(logging.INFO, logger="smr_ts"):
        gate.on_train_end(state)
    assert stopper.best_epoch == -1
    assert [r.getMessage() for r in caplog.records] == [
        "model selection: epoch 0's gain over last value on validation was 1.25 standard errors, short of 2: "
        "kept the last-value network"]


# ---------------------------------------------------------------- TensorBoard and MLflow callbacks
def test_the_tensorboard_callback_writes_every_epochs_metrics(tmp_path):
    import pytest

    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from smr_ts.callbacks import TensorBoard

    model = SMRForecaster(**SMALL, callbacks=[TensorBoard(log_dir=tmp_path / "tb", prefix="run/")]).fit(_frame())
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    loss = events.Scalars("run/train_loss")
    assert [e.step for e in loss] == [r["epoch"] for r in model.history_]
    np.testing.assert_allclose([e.value for e in loss], [r["train_loss"] for r in model.history_], rtol=1e-6)
    assert "run/valid_scaled_mae" in events.Tags()["scalars"]


def test_the_mlflow_callback_logs_every_epochs_metrics_to_a_local_file_store(tmp_path, monkeypatch):
    import pytest

    mlflow = pytest.importorskip("mlflow")
    from smr_ts.callbacks import MLflowLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    with mlflow.start_run() as run:
        model = SMRForecaster(**SMALL, callbacks=[MLflowLogger()]).fit(_frame())
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == [r["epoch"] for r in model.history_]
    np.testing.assert_allclose([m.value for m in history], [r["train_loss"] for r in model.history_], rtol=1e-6)
