"""save/load: a round trip gives the same forecasts, a save is atomic and stays inside its folder,
and load says which file and which versions when it cannot read a save.

Everything here goes through the public API (fit, forecast, update, save, load, the documented
fitted attributes) and the two files' documented roles, never the estimator's private storage.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster, __version__
from smr_ts.callbacks import Callback

SMALL = dict(d_model=8, state_size=8, n_layers=1, epochs=2, batch_size=8, random_state=0)


def panel(n_series=8, n_obs=24, int_ids=False, seed=0):
    """Irregular series in two groups whose level drifts apart: the group is a static input."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    group = np.arange(n_series) % 2
    y = np.sin(t) + np.where(group[:, None] == 1, 0.05, -0.05) * t + 0.1 * rng.normal(size=t.shape)
    ids = np.arange(100, 100 + n_series) if int_ids else np.array([f"s{i}" for i in range(n_series)])
    frame = pd.DataFrame({"unique_id": np.repeat(ids, n_obs), "ds": t.ravel(), "y": y.ravel()})
    static = pd.DataFrame({"unique_id": ids, "size": 1.0 + rng.random(n_series),
                           "group": np.where(group == 1, "up", "down")})
    return frame, static


def fitted_with_statics(kind: str, int_ids: bool):
    frame, static = panel(int_ids=int_ids)
    if kind == "numeric static frame":
        return SMRForecaster(**SMALL).fit(frame, static=static[["unique_id", "size"]]), frame
    if kind == "categorical static column":
        with_group = frame.merge(static[["unique_id", "group"]], on="unique_id")
        return SMRForecaster(**SMALL, static_cols=["group"]).fit(with_group), with_group
    with_both = frame.merge(static, on="unique_id")
    return SMRForecaster(**SMALL, static_cols=["size", "group"]).fit(with_both), with_both


def assert_same_forecasts(a, b):
    for kwargs in (dict(h=3), dict(h=3, level=[80])):
        pd.testing.assert_frame_equal(a.forecast(**kwargs), b.forecast(**kwargs))


# ---------------------------------------------------------------- round trip
@pytest.mark.parametrize("int_ids", [False, True], ids=["string ids", "int ids"])
@pytest.mark.parametrize("kind", ["numeric static frame", "categorical static column", "numeric and categorical"])
def test_a_model_with_statics_saves_and_loads_to_the_same_forecasts(tmp_path, kind, int_ids):
    """Failed when the fitted series' ids of the statics were written as a JSON field: save raised
    'Object of type ndarray is not JSON serializable' and left a truncated config.json."""
    model, frame = fitted_with_statics(kind, int_ids)
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    assert_same_forecasts(model, loaded)
    assert list(loaded.static_ids_) == list(model.static_ids_)
    # a new series with its statics, given to both by update: the loaded model still knows the fitted ones
    source = frame["unique_id"].iloc[0]
    last = frame[frame["unique_id"] == source].tail(6)
    new = last.assign(unique_id=999 if int_ids else "new", ds=last["ds"] + 1.0)
    statics = panel(int_ids=int_ids)[1].set_index("unique_id")
    new = new.assign(**{c: statics.loc[source, c] for c in model.static_names_ if c not in new})  # a new series brings its statics
    pd.testing.assert_frame_equal(model.update(new).forecast(h=2), loaded.update(new).forecast(h=2))


# ---------------------------------------------------------------- atomic and contained
def test_save_never_writes_through_links_planted_in_the_folder(tmp_path):
    """Failed when save opened config.json and weights.pt for writing: it followed the links and
    overwrote the files outside the folder."""
    model, _ = fitted_with_statics("numeric static frame", False)
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("config.json", "weights.pt"):
        (outside / name).write_text(f"precious {name}")
        (folder / name).symlink_to(outside / name)
    model.save(folder)
    for name in ("config.json", "weights.pt"):
        assert (outside / name).read_text() == f"precious {name}"
        assert (folder / name).is_file() and not (folder / name).is_symlink()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.pt"]  # no temporary left
    assert_same_forecasts(model, SMRForecaster.load(folder))


class _Records(Callback):
    """Puts ``value`` into every epoch's record, as a user's callback might."""

    def __init__(self, value):
        self.value = value

    def on_epoch_end(self, state, record):
        record["extra"] = self.value


def _previous_save(tmp_path):
    """A good save in a folder, and the bytes of its files."""
    model, _ = fitted_with_statics("numeric static frame", False)
    folder = tmp_path / "m"
    model.save(folder)
    return model, folder, {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_save_that_fails_leaves_the_previous_save_intact_and_names_what_failed(tmp_path):
    """Failed when save wrote config.json first: a history_ entry JSON cannot hold raised a
    TypeError naming neither history_ nor the key, after the previous config.json was truncated."""
    model, folder, before = _previous_save(tmp_path)
    frame, static = panel()
    odd = SMRForecaster(**SMALL, callbacks=[_Records(object())]).fit(frame, static=static[["unique_id", "size"]])
    with pytest.raises(TypeError, match=r"history_\[0\]\['extra'\].*object.*config\.json"):
        odd.save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert_same_forecasts(model, SMRForecaster.load(folder))


def test_a_weights_path_that_is_a_folder_is_an_error_naming_it_and_the_config_survives(tmp_path):
    """Failed with a raw torch error naming no path, after config.json had been overwritten."""
    model, folder, before = _previous_save(tmp_path)
    (folder / "weights.pt").unlink()
    (folder / "weights.pt").mkdir()
    other, _ = fitted_with_statics("categorical static column", False)
    with pytest.raises(ValueError, match=r"m/weights\.pt is a folder"):
        other.save(folder)
    assert (folder / "config.json").read_bytes() == before["config.json"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.pt"]


def test_numpy_values_in_the_history_are_saved_as_lists(tmp_path):
    """Failed with 'Object of type ndarray is not JSON serializable' (and a truncated config.json)."""
    frame, _ = panel()
    model = SMRForecaster(**SMALL, callbacks=[_Records(np.array([1.5, 2.5]))]).fit(frame)
    model.history_[0]["scalar"] = np.float32(0.5)
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    assert [h["extra"] for h in loaded.history_] == [[1.5, 2.5]] * len(model.history_)
    assert loaded.history_[0]["scalar"] == 0.5
    assert_same_forecasts(model, loaded)


def test_load_refuses_a_config_and_weights_from_two_saves_of_the_same_shape(tmp_path):
    """Failed (loaded silently, serving the other model's weights) when only the tensors' shapes were
    compared: two fits with the same parameters and different seeds have weights of the same shapes.
    A save interrupted between replacing its two files leaves exactly such a pair."""
    frame, _ = panel()
    a = SMRForecaster(**SMALL).fit(frame)
    b = SMRForecaster(**{**SMALL, "random_state": 1}).fit(frame)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    (tmp_path / "a" / "weights.pt").write_bytes((tmp_path / "b" / "weights.pt").read_bytes())
    with pytest.raises(ValueError, match=r"a/weights\.pt does not match .*a/config\.json.*different saves"):
        SMRForecaster.load(tmp_path / "a")
    b.save(tmp_path / "a")  # saving again mends the folder
    assert_same_forecasts(b, SMRForecaster.load(tmp_path / "a"))


# ---------------------------------------------------------------- versions
def _edit_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_config_from_an_older_version_without_the_layout_names_the_file_and_version(tmp_path):
    """Failed with a raw AttributeError naming neither the file nor the version."""
    _, folder, _ = _previous_save(tmp_path)

    def older(config):
        config["version"] = "0.0.1"
        config.pop("format", None)
        del config["fitted"]["forecast_state_"]["layout"]

    _edit_config(folder, older)
    with pytest.raises(ValueError, match=rf"m/config\.json was written by smr_ts 0\.0\.1.*{__version__}.*fit .* again"):
        SMRForecaster.load(folder)


def test_a_config_from_a_newer_version_names_both_versions_not_two_saves(tmp_path):
    """Failed by blaming 'two different saves' for a field a newer version added."""
    _, folder, _ = _previous_save(tmp_path)

    def newer(config):
        config["version"] = "99.0.0"
        config["fitted"]["something_new_"] = [1, 2]

    _edit_config(folder, newer)
    with pytest.raises(ValueError, match=rf"m/config\.json .*smr_ts 99\.0\.0.*smr_ts {__version__}") as info:
        SMRForecaster.load(folder)
    assert "something_new_" in str(info.value) and "different saves" not in str(info.value)


def test_a_config_in_a_newer_save_format_is_refused_with_both_versions(tmp_path):
    _, folder, _ = _previous_save(tmp_path)
    _edit_config(folder, lambda config: config.update(version="99.0.0", format=99))
    with pytest.raises(ValueError, match=rf"m/config\.json was written by smr_ts 99\.0\.0.*smr_ts {__version__}"):
        SMRForecaster.load(folder)


def test_a_config_of_this_version_lacking_a_fitted_attribute_names_the_file(tmp_path):
    """Failed with a raw AttributeError."""
    _, folder, _ = _previous_save(tmp_path)
    _edit_config(folder, lambda config: config["fitted"]["forecast_state_"].pop("layout"))
    with pytest.raises(ValueError, match=r"m/config\.json .*lacks .*forecast_state_\['layout'\]"):
        SMRForecaster.load(folder)


def test_save_leaves_no_temporary_files_and_the_same_save_twice_gives_the_same_forecasts(tmp_path):
    model, folder, _ = _previous_save(tmp_path)
    model.save(folder)
    assert sorted(os.listdir(folder)) == ["config.json", "weights.pt"]
    assert_same_forecasts(model, SMRForecaster.load(folder))


def test_a_save_of_the_first_format_still_loads(tmp_path):
    """Saves written before the config recorded its format and the weights' SHA-256 (format 1: the kept
    format-2 save without those two fields) load as before."""
    from make_saved_model import FOLDER

    folder = tmp_path / "m"
    shutil.copytree(FOLDER, folder)

    def first_format(config):
        del config["format"], config["weights_sha256"]

    _edit_config(folder, first_format)
    assert_same_forecasts(SMRForecaster.load(FOLDER), SMRForecaster.load(folder))


def test_a_save_of_this_version_loads_to_the_same_state_and_forecasts(tmp_path):
    """A model saved and loaded again has the same forecasting state, part for part."""
    model, folder, _ = _previous_save(tmp_path)
    loaded = SMRForecaster.load(folder)
    assert_same_forecasts(model, loaded)
    for name in ("history_panel_", "layout_", "horizon_", "static_ids_", "static_codes_", "calibration_ahead_",
                 "calibration_scores_", "calibration_changes_"):
        a, b = getattr(model, name), getattr(loaded, name)
        a, b = (vars(a), vars(b)) if hasattr(a, "__dataclass_fields__") else ({"": a}, {"": b})
        assert a.keys() == b.keys(), name
        for part in a:
            assert np.array_equal(np.asarray(a[part], dtype=object), np.asarray(b[part], dtype=object)), (name, part)
    for name, value in model.stream_state_.items():
        assert torch.equal(loaded.stream_state_[name], value), name


# ---------------------------------------------------------------- saves of earlier versions
def test_a_save_in_format_2_still_loads_and_forecasts_as_when_it_was_written():
    """tests/data/saved_model_format2 (tests/make_saved_model.py) holds a trained model with a future-known
    column and a static one, and the forecasts it gave when saved: a change to how the fitted state is
    stored must keep reading it. Compared with a tolerance that float noise across BLAS paths cannot break."""
    from make_saved_model import FOLDER, frame, queries

    model = SMRForecaster.load(FOLDER)
    assert model.best_epoch_ >= 0  # a trained network, not the last-value one, is pinned
    # saved before alias: its forecasts were named after the target, and are named after the backbone now
    assert model.alias_ == "S5" and model.alias is None
    expected = pd.read_csv(FOLDER / "forecasts.csv")
    expected.columns = ["S5" + c[1:] if c.startswith("y") else c for c in expected.columns]  # y-lo-80 -> S5-lo-80
    got = model.forecast(times=queries(frame()), level=[80])
    assert list(got.columns) == list(expected.columns)
    assert (got["unique_id"].to_numpy() == expected["unique_id"].to_numpy()).all()
    for column in expected.columns[1:]:
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-5, atol=1e-6)
    # and it goes on streaming: a new row of a fitted series moves that series' forecast only
    history = frame()
    row = history[history["unique_id"] == "s0"].tail(1).assign(ds=lambda d: d["ds"] + 0.25, y=lambda d: d["y"] + 1.0)
    after = model.update(row).forecast(h=1)
    before = SMRForecaster.load(FOLDER).forecast(h=1)
    moved = after["S5"].to_numpy() != before["S5"].to_numpy()
    assert moved[after["unique_id"].to_numpy() == "s0"].all() and not moved[after["unique_id"].to_numpy() != "s0"].any()
