"""SMRForecaster.update: new observations advance the saved states, and forecasts continue from them.

The equivalence that makes it safe: update-then-forecast equals a forecast from the whole history
(``forecast(..., context=new_rows)`` before the update, which runs the backbone over every row)
with the same weights, to 1e-5, for every backbone.
"""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.data import panel as panels
from smr_ts.data.panel import FIRST_GAP, to_panel
from smr_ts.forecasting import streaming
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.queries import history_rows
from smr_ts.datasets import make_oscillators

BACKBONES = [("s5", {}), ("s5", {"smr": True}), ("s6", {}), ("s6", {"smr": True}), ("gru_dt", {}), ("ode_rnn", {})]


def frames(n_series=6, n_obs=40, horizon=10, seed=0):
    return make_oscillators(n_series=n_series, n_obs=n_obs, horizon=horizon, start="2024-01-01", freq_unit="1h",
                            random_state=seed)


def fitted(backbone="s5", n_series=6, **settings):
    history, future = frames(n_series)
    settings = {"validation_fraction": 0.0, **settings}
    model = SMRForecaster(backbone=backbone, d_model=8, state_size=8, n_layers=2, epochs=1, horizon="1D",
                          random_state=0, **settings).fit(history)
    # The head's last layer starts at zero (the last-value forecast): give it weights so that the
    # forecasts depend on the backbone's state, which is what is being tested.
    with torch.no_grad():
        last = model.model_.mean_head[-1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=torch.Generator().manual_seed(1)))
    return model, history, future


def new_rows(future, per_series=5):
    rows = future.groupby("unique_id").head(per_series).copy()
    rows.loc[rows.index[1::4], "y"] = np.nan  # some rows observe nothing
    return rows


@pytest.mark.parametrize("backbone, settings", BACKBONES)
def test_update_then_forecast_equals_a_forecast_from_the_full_history(backbone, settings):
    model, history, future = fitted(backbone, **settings)
    rows = new_rows(future)
    later = future.drop(index=rows.index)[["unique_id", "ds"]]
    full_h = model.forecast(h=4, context=rows)
    full_times = model.forecast(times=later, context=rows)
    before = model.forecast(h=4)
    # In three pieces, the rows of a piece in any order.
    for piece in (rows.iloc[:4], rows.iloc[4:17].sample(frac=1.0, random_state=0), rows.iloc[17:]):
        assert model.update(piece) is model
    after_h, after_times = model.forecast(h=4), model.forecast(times=later)
    pd.testing.assert_frame_equal(after_h[["unique_id", "ds"]], full_h[["unique_id", "ds"]])
    name = model.alias_  # the forecast column: the backbone's name
    np.testing.assert_allclose(after_h[name], full_h[name], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(after_times[name], full_times[name], rtol=1e-5, atol=1e-5)
    # The forecasts moved (the state matters), and the history holds the new rows.
    assert np.abs(after_h[name].to_numpy() - before[name].to_numpy()).max() > 1e-3
    assert model.history_panel_.lengths.sum() == len(history) + len(rows)


def test_rows_that_observe_one_of_several_columns_advance_the_state_as_the_whole_history_does():
    """Two value columns, and new rows that observe only one of them: such a row is an observation (its other
    column is missing), in update as in a forecast that reads the whole history. Catches a streaming row mask
    that asks for every column (all) where one is enough (any)."""
    history, future = frames()
    rng = np.random.default_rng(0)
    history, future = (f.assign(x=np.cumsum(rng.normal(size=len(f)))) for f in (history, future))
    model = SMRForecaster(d_model=8, state_size=8, n_layers=2, epochs=1, horizon="1D", random_state=0,
                          validation_fraction=0.0, target_cols=["y", "x"]).fit(history)
    with torch.no_grad():  # forecasts that depend on the backbone's state (see fitted)
        last = model.model_.mean_head[-1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=torch.Generator().manual_seed(1)))
    rows = future.groupby("unique_id").head(6).copy()
    rows.loc[rows.index[0::3], "x"] = np.nan
    rows.loc[rows.index[1::3], "y"] = np.nan  # every third row observes both
    expected = model.forecast(h=3, context=rows)
    partial = rows["x"].isna() | rows["y"].isna()
    both = ["S5:y", "S5:x"]  # several targets: a column per target, after the model
    assert not np.allclose(model.forecast(h=3, context=rows[~partial])[both], expected[both])
    model.update(rows)
    got = model.forecast(h=3)
    np.testing.assert_allclose(got[both], expected[both], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backbone, settings", [("s5", {"smr": True}), ("s6", {"smr": True}), ("gru_dt", {})])
def test_updated_state_equals_the_state_of_the_whole_history(backbone, settings):
    model, history, future = fitted(backbone, **settings)
    rows = new_rows(future)
    model.update(rows)
    ids, times, values = history_rows(model.history_panel_, 1)
    whole = to_panel(ids, times, values)
    expected = streaming.history_state(model.model_, model.layout_, whole, torch.device("cpu")).as_dict()
    assert sorted(expected) == sorted(model.stream_state_)
    for name, value in expected.items():
        torch.testing.assert_close(model.stream_state_[name], value, rtol=1e-5, atol=1e-5, msg=name)


def test_new_rows_get_the_inputs_of_the_whole_history_bit_for_bit():
    # The running statistics continue the float64 sums of the history's exactly: the inputs of the
    # new rows equal those forecast_tensors computes over the whole history.
    model, history, future = fitted("s5")
    rows = new_rows(future, per_series=7)
    panel = copy.deepcopy(model.history_panel_)
    stats = forecast_tensors(panel, model.layout_, FIRST_GAP).statistics
    ids, times, values = history_rows(panel, 1)
    whole = forecast_tensors(to_panel(np.concatenate([ids, rows["unique_id"].to_numpy()]),
                                      np.concatenate([times, rows["ds"].to_numpy().view(np.int64)]),
                                      np.concatenate([values, rows[["y"]].to_numpy()])), model.layout_, FIRST_GAP)
    n = 7
    x = rows["y"].to_numpy().reshape(-1, n, 1)
    observed = ~np.isnan(x)
    new_time = rows["ds"].to_numpy().view(np.int64).reshape(-1, n)
    prev_time = panel.time[np.arange(len(panel.ids)), panel.lengths - 1]
    inputs, dt, mask, _ = streaming.continued_inputs(stats, np.nan_to_num(x), observed, np.ones((len(x), n), bool),
                                                     new_time, prev_time, model.layout_)
    tail = panel.lengths[:, None] + np.arange(n)
    rows_index = np.arange(len(panel.ids))[:, None]
    np.testing.assert_array_equal(inputs, whole.inputs[rows_index, tail])
    np.testing.assert_array_equal(dt, whole.dt[rows_index, tail])
    np.testing.assert_array_equal(mask, whole.mask[rows_index, tail])


def test_update_runs_the_backbone_over_the_new_rows_only(monkeypatch):
    model, history, future = fitted("s5")
    seen = []
    advance = streaming.advance_network

    def spy(network, inputs, dt, mask, state):
        seen.append((inputs.shape[0], inputs.shape[1], state is None))
        return advance(network, inputs, dt, mask, state)

    monkeypatch.setattr(streaming, "advance_network", spy)
    rows = new_rows(future, per_series=3)
    model.update(rows)
    assert seen == [(6, 3, False)]  # 6 series x 3 new rows, continued from their saved states


def test_new_series_start_from_the_zero_state():
    model, history, future = fitted("s6", n_series=6)
    extra, extra_future = make_oscillators(n_series=3, n_obs=30, horizon=5, start="2024-01-01", freq_unit="1h",
                                           random_state=7)
    extra["unique_id"] = "new_" + extra["unique_id"]  # ids that sort among and after the fitted ones
    extra.loc[extra["unique_id"] == "new_s001", "unique_id"] = "s0005"
    both = pd.concat([new_rows(future), extra])
    expected = model.forecast(h=3, context=both)
    model.update(both)
    got = model.forecast(h=3)
    pd.testing.assert_frame_equal(got[["unique_id", "ds"]], expected[["unique_id", "ds"]])
    np.testing.assert_allclose(got["S6"], expected["S6"], rtol=1e-5, atol=1e-5)
    assert list(model.history_panel_.ids) == sorted(model.history_panel_.ids)


def test_update_refuses_rows_that_do_not_come_after_the_history():
    model, history, future = fitted("s5")
    last = history.groupby("unique_id").tail(1)
    with pytest.raises(ValueError, match="unique_id='s000' has a row at or before the last row"):
        model.update(last.iloc[:1])
    rows = future.iloc[:2].copy()
    rows["ds"] = rows["ds"].iloc[0]
    with pytest.raises(ValueError, match="duplicate"):
        model.update(rows)
    with pytest.raises(ValueError, match="feature columns differ"):
        model.update(future.iloc[:2].assign(other=1.0))
    regression = SMRForecaster(d_model=8, state_size=8, epochs=1, random_state=0).fit(
        history[["unique_id", "ds"]].assign(x=1.0), history["y"])
    with pytest.raises(ValueError, match="forecasting mode"):
        regression.update(history[["unique_id", "ds"]].assign(x=1.0))
    # Nothing was appended by the refused calls.
    assert model.history_panel_.lengths.sum() == len(history)


def test_save_and_load_keep_the_streaming_state(tmp_path):
    model, history, future = fitted("s5", smr=True)
    rows = new_rows(future)
    model.update(rows.iloc[:10])
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    for name, value in model.stream_state_.items():
        assert torch.equal(loaded.stream_state_[name], value), name
    pd.testing.assert_frame_equal(loaded.forecast(h=3), model.forecast(h=3))
    loaded.update(rows.iloc[10:])
    model.update(rows.iloc[10:])
    pd.testing.assert_frame_equal(loaded.forecast(h=3), model.forecast(h=3))


def test_a_model_without_a_state_gets_one_at_its_first_update():
    model, history, future = fitted("gru_dt")
    rows = new_rows(future)
    expected = model.forecast(h=3, context=rows)
    del model.stream_state_  # as a model saved before streaming
    model.update(rows)
    np.testing.assert_allclose(model.forecast(h=3)["GRU-dt"], expected["GRU-dt"], rtol=1e-5, atol=1e-5)


def test_forecasts_in_blocks_equal_one_block(monkeypatch):
    model, history, future = fitted("s5", n_series=150, validation_fraction=0.2)
    one = model.forecast(h=2, level=[80])
    without_state = copy.deepcopy(model)
    del without_state.stream_state_  # the backbone runs over the history
    monkeypatch.setattr(panels, "BLOCK_ROWS", 64 * 40)  # blocks of 64 series
    assert len(panels.panel_blocks(model.history_panel_)) == 3
    pd.testing.assert_frame_equal(model.forecast(h=2, level=[80]), one)
    pd.testing.assert_frame_equal(without_state.forecast(h=2, level=[80]), one)


def test_a_large_update_runs_in_blocks_and_equals_one_block(monkeypatch):
    model, history, future = fitted("s6", n_series=150)
    rows = new_rows(future, per_series=4)
    one_block = copy.deepcopy(model).update(rows)
    monkeypatch.setattr(panels, "BLOCK_ROWS", 64 * 4)  # blocks of 64 series
    model.update(rows)
    for name, value in one_block.stream_state_.items():
        torch.testing.assert_close(model.stream_state_[name], value, rtol=1e-6, atol=1e-6, msg=name)
    pd.testing.assert_frame_equal(model.forecast(h=2), one_block.forecast(h=2), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- all or nothing
def refused_update_changes_nothing(model, rows, match, later):
    """``update(rows)`` raises a ValueError matching ``match`` and leaves ``model`` as it was: the same
    forecasts, and the same history and states (a valid update, ``later``, then lands where it lands on
    a copy that never saw the refused one)."""
    untouched = copy.deepcopy(model)
    before = model.forecast(h=3)
    with pytest.raises(ValueError, match=match):
        model.update(rows)
    pd.testing.assert_frame_equal(model.forecast(h=3), before)
    pd.testing.assert_frame_equal(copy.deepcopy(model).update(later).forecast(h=3),
                                  untouched.update(later).forecast(h=3))


def test_a_new_series_with_no_observed_target_is_refused_and_changes_nothing():
    """Fails if update accepts a new series whose rows are all NaN: it used to, and then every
    forecast(h=...) of every series raised until a refit."""
    model, history, future = fitted("s5")
    rows = new_rows(future, per_series=2)
    blank = pd.DataFrame({"unique_id": "blank", "ds": rows["ds"].iloc[:3].to_numpy(), "y": np.nan})
    refused_update_changes_nothing(model, pd.concat([rows, blank]), r"new series unique_id=\['blank'\] have no "
                                   r"observed value of any target \['y'\].*at least one observed target", rows)
    assert len(model.forecast(h=2)) == 2 * history["unique_id"].nunique()


def test_an_id_of_another_type_is_refused_before_any_row_is_appended():
    """Fails if the fitted series' rows are appended before a string id among integer ids is found
    (it used to raise a raw "'<' not supported" TypeError after appending them)."""
    history, future = frames()
    codes = {name: i for i, name in enumerate(sorted(history["unique_id"].unique()))}
    history, future = (f.assign(unique_id=f["unique_id"].map(codes)) for f in (history, future))
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, horizon="1D", validation_fraction=0.0,
                          random_state=0).fit(history)
    rows = new_rows(future, per_series=2)
    stranger = pd.concat([rows, rows.iloc[:1].astype({"unique_id": object}).assign(unique_id="x")])
    match = r"id column 'unique_id' has the id 'x' \(str\), but the model was fitted on numeric ids"
    refused_update_changes_nothing(model, stranger, "new_rows: " + match, rows)
    with pytest.raises(ValueError, match="context: " + match):
        model.forecast(h=2, context=stranger)


def with_statics(frame):
    """Two static columns per series: a number and a category."""
    number = frame["unique_id"].str[1:].astype(float)
    return frame.assign(size=number, group=np.where(number % 2 == 0, "even", "odd"))


def fitted_with_statics():
    history, future = (with_statics(f) for f in frames())
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, horizon="1D", validation_fraction=0.0,
                          static_cols=["size", "group"], random_state=0).fit(history)
    with torch.no_grad():  # a head that reads the statics (it starts at zero)
        last = model.model_.mean_head[-1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=torch.Generator().manual_seed(1)))
    return model, history, future


def test_update_and_context_agree_on_the_statics_of_known_series():
    """update(rows) then forecast() equals forecast(context=rows) before it, statics in the rows or not;
    a changed static of a known series is refused by both. Fails if update ignores a changed static
    while the context forecast uses it (the documented equality broken)."""
    model, history, future = fitted_with_statics()
    rows = new_rows(future, per_series=3)
    changed = rows.assign(size=np.where(rows["unique_id"] == "s002", 99.0, rows["size"]))
    match = r"static column 'size' of unique_id=\['s002'\] differs from the value the model holds"
    with pytest.raises(ValueError, match="context: " + match):
        model.forecast(h=2, context=changed)
    refused_update_changes_nothing(model, changed, "new_rows: " + match, rows)
    for given in (rows, rows.drop(columns=["size", "group"])):
        expected = model.forecast(h=2, context=given)
        updated = copy.deepcopy(model).update(given)
        got = updated.forecast(h=2)
        pd.testing.assert_frame_equal(got[["unique_id", "ds"]], expected[["unique_id", "ds"]])
        np.testing.assert_allclose(got["S5"], expected["S5"], rtol=1e-5, atol=1e-5)
    # the statics matter here: a new series' forecasts move with its size
    newcomer = rows[rows["unique_id"] == "s001"].assign(unique_id="new")
    small, large = (model.forecast(h=2, context=newcomer.assign(size=size)).query("unique_id == 'new'")["S5"].to_numpy()
                    for size in (1.0, 99.0))
    assert np.abs(small - large).max() > 1e-3


def test_statics_missing_or_given_as_text_are_refused_by_update_and_context():
    """Fails if a new series without its static columns gets zeros (the training mean), or a number
    given as text becomes NaN, without a word."""
    model, history, future = fitted_with_statics()
    rows = new_rows(future, per_series=3)
    newcomer = rows[rows["unique_id"] == "s001"].assign(unique_id="new")
    bare = pd.concat([rows.drop(columns=["size", "group"]), newcomer.drop(columns=["size", "group"])])
    match = r"the new series unique_id=\['new'\] have no static columns, but this model reads \['size', 'group'\]"
    with pytest.raises(ValueError, match="context: " + match):
        model.forecast(h=2, context=bare)
    refused_update_changes_nothing(model, bare, "new_rows: " + match, rows)
    for text in ("3", "large"):
        worded = pd.concat([rows, newcomer.astype({"size": object}).assign(size=text)])
        match = rf"static column 'size' is numeric \(as at fit\), but the rows of unique_id=\['new'\] hold the text '{text}'"
        with pytest.raises(ValueError, match="context: " + match):
            model.forecast(h=2, context=worded)
        refused_update_changes_nothing(model, worded, "new_rows: " + match, rows)
    # a new series with its statics is accepted by both, and they agree
    given = pd.concat([rows, newcomer.assign(size=1.5)])
    expected = model.forecast(h=2, context=given)
    got = copy.deepcopy(model).update(given).forecast(h=2)
    np.testing.assert_allclose(got["S5"], expected["S5"], rtol=1e-5, atol=1e-5)


def test_update_gives_the_state_of_a_refit_on_history_plus_rows_for_every_input_feature(monkeypatch):
    """After update(rows), the state equals the one rebuilt from history plus rows with the same network:
    the running statistics bit for bit, and the input the backbone read at every new row, feature by feature
    (each value column's level, change and observed flag, the daily phase, the log gap), bit for bit; the
    backbone's states and the forecasts to float rounding. Fails if update computes an input feature its own
    way (a plain mean where the fit's scale has its prior, a calendar phase of the wrong time)."""
    history, future = frames(n_obs=120)  # five days of hours: the daily phase is an input
    rng = np.random.default_rng(0)
    history, future = (f.assign(x=rng.normal(size=len(f))) for f in (history, future))  # a past-only column
    model = SMRForecaster(d_model=8, state_size=8, n_layers=2, epochs=1, horizon="1D", random_state=0,
                          validation_fraction=0.0, target_cols=["y"]).fit(history)
    assert model.layout_.periods  # the calendar features are in play
    rows = new_rows(future, per_series=6)
    rows.loc[rows.index[2::5], "x"] = np.nan
    seen = []
    advance = streaming.advance_network

    def spy(network, inputs, dt, mask, state):
        seen.append(inputs.numpy().copy())
        return advance(network, inputs, dt, mask, state)

    monkeypatch.setattr(streaming, "advance_network", spy)
    before_lengths = model.history_panel_.lengths.copy()
    model.update(rows)
    monkeypatch.setattr(streaming, "advance_network", advance)
    ids, times, values = history_rows(model.history_panel_, 2)
    whole = to_panel(ids, times, values)
    refit = streaming.history_state(model.model_, model.layout_, whole, torch.device("cpu")).as_dict()
    assert sorted(refit) == sorted(model.stream_state_)
    for name, value in refit.items():
        if name.startswith("stats."):
            assert torch.equal(model.stream_state_[name], value), name
        else:
            torch.testing.assert_close(model.stream_state_[name], value, rtol=1e-5, atol=1e-5, msg=name)
    data = forecast_tensors(whole, model.layout_, FIRST_GAP)
    n_features = data.inputs.shape[-1]
    assert n_features == 3 * 2 + 2 * len(model.layout_.periods) + 1
    (updated,) = seen  # one chunk of series, every one of them with new rows
    tail = before_lengths[:, None] + np.arange(6)
    expected = data.inputs[np.arange(len(whole.ids))[:, None], tail]
    for feature in range(n_features):
        np.testing.assert_array_equal(updated[..., feature], expected[..., feature], err_msg=f"input feature {feature}")
