"""Panels with gaps in their targets: a series that never observed a target still forecasts the others.

A lab-like panel: 7 targets named with ``target_cols``, a few hundred rows over 40 patients at uneven
visits, each lab missing at some visits, and a few patients who never had one or two of the labs
measured. Their forecasts of those labs are NaN (point, std, quantiles, interval bounds), every other
cell is finite, one warning per call says how many series lack which targets, and the forecasts of
the other series do not depend on whether the lacking ones are in the same call.
"""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.data.panel import FIRST_GAP
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.pairs import PairSampler
from smr_ts.model_selection import backtest
from smr_ts.training import forecast_loss

LABS = ["hb", "wbc", "plt", "na", "k", "ldl", "crp"]
LACKING = {"p03": ["ldl"], "p07": ["ldl", "crp"], "p11": ["crp"]}  # labs never measured in those patients
SMALL = dict(d_model=8, state_size=8, n_layers=1, epochs=3, target_cols=LABS, horizon=4.0, random_state=0)


def lab_panel(n_series=40, seed=0) -> pd.DataFrame:
    """Labs that drift upwards at uneven visits (a trend a few epochs learn, so the network is not last
    value), a quarter of the cells unmeasured, and the ``LACKING`` labs never measured."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_series):
        n = int(rng.integers(6, 11))
        t = np.sort(rng.uniform(0.0, 10.0, n))
        level = 10.0 * np.arange(1, 8) * rng.uniform(0.5, 1.5, 7)
        values = level * (1 + 0.1 * t[:, None] + 0.01 * rng.normal(size=(n, 7)))
        values[rng.random((n, 7)) < 0.25] = np.nan
        values[0] = level
        frames.append(pd.DataFrame({"unique_id": f"p{s:02d}", "ds": t, **dict(zip(LABS, values.T))}))
    df = pd.concat(frames, ignore_index=True)
    for sid, labs in LACKING.items():
        df.loc[df["unique_id"] == sid, labs] = np.nan
    return df


def target_of(column: str) -> str | None:
    """The target a column belongs to: a forecast's (``S5:hb``, ``S5:hb_std``, ``S5:hb_ql0.1``, ``S5:hb-lo-80``)
    or a backtest's truth (``hb``)."""
    return next((t for t in LABS if re.fullmatch(rf"(S5:)?{t}([_-].+)?", column)), None)


def assert_nan_exactly_where_never_observed(frame: pd.DataFrame, lacking=LACKING, truth=()):
    """Every prediction column of a lacking (series, target) is NaN; every other one is finite."""
    columns = [c for c in frame.columns if target_of(c) is not None and c not in truth]
    assert columns
    for column in columns:
        never = frame["unique_id"].map(lambda sid: target_of(column) in lacking.get(sid, ())).to_numpy(bool)
        values = frame[column].to_numpy(np.float64)
        assert np.isnan(values[never]).all(), column
        assert np.isfinite(values[~never]).all(), column


def gap_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "never observed target" in str(w.message)]


def forecast_warned(call, lacking=LACKING):
    """``call()``'s result, after checking it warned exactly once, with the count and names of ``lacking``."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = call()
    messages = gap_warnings(record)
    assert len(messages) == 1, messages
    names = [t for t in LABS if any(t in labs for labs in lacking.values())]
    assert messages[0].startswith(f"{len(lacking)} series never observed target(s) {names}: "), messages[0]
    return result


def forecast_silent(call):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = call()
    assert not gap_warnings(record)
    return result


@pytest.fixture(scope="module")
def panel():
    return lab_panel()


@pytest.fixture(scope="module")
def gaussian(panel):
    model = SMRForecaster(loss="gaussian", **SMALL).fit(panel)
    assert model.best_epoch_ >= 0  # a trained network, not the last-value forecast the head starts from
    assert all(torch.isfinite(p).all() for p in model.model_.parameters())
    return model


@pytest.fixture(scope="module")
def quantile(panel):
    model = SMRForecaster(loss="quantile", **SMALL).fit(panel)
    assert model.best_epoch_ >= 0
    return model


def test_forecast_h_is_nan_only_where_a_series_never_observed_the_target(gaussian):
    """Point, std and interval bounds; fails if the call raises for the whole panel (as it did), or if
    a lacking series' other targets, or its std, leak NaN or a number into the wrong cells."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = gaussian.forecast(h=3, return_std=True, level=[80, 95])
    (message,) = gap_warnings(record)  # names the missing targets only, an example, and the way out
    assert message.startswith("3 series never observed target(s) ['ldl', 'crp']: their forecasts of those targets "
                              "are NaN (for example unique_id='p03' has no observed value of ['ldl'])")
    assert "(update(), or context=)" in message
    assert len(result) == 3 * 40
    assert {"S5:ldl_std", "S5:ldl-lo-95", "S5:crp-hi-80"} <= set(result.columns)
    assert_nan_exactly_where_never_observed(result)


def test_quantiles_follow_the_rule(quantile):
    result = forecast_warned(lambda: quantile.forecast(h=2))
    assert "S5:ldl_ql0.1" in result.columns
    assert_nan_exactly_where_never_observed(result)


def test_forecasts_do_not_depend_on_the_lacking_series_in_the_call(gaussian):
    """Batch-composition invariance: the complete series forecast alone (no warning) equal their rows of
    the call with every series, and the lacking series forecast alone equal theirs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        queries = gaussian.forecast(h=3)[["unique_id", "ds"]]
    queries = queries.assign(ds=queries["ds"] + 0.25)  # irregular times, not the h= grid
    lacking = queries["unique_id"].isin(list(LACKING)).to_numpy()
    every = forecast_warned(lambda: gaussian.forecast(times=queries, return_std=True, level=[80]))
    assert_nan_exactly_where_never_observed(every)
    complete = forecast_silent(lambda: gaussian.forecast(times=queries[~lacking], return_std=True, level=[80]))
    only_lacking = forecast_warned(lambda: gaussian.forecast(times=queries[lacking], return_std=True, level=[80]))
    pd.testing.assert_frame_equal(complete, every[~lacking].reset_index(drop=True), rtol=1e-6)
    pd.testing.assert_frame_equal(only_lacking, every[lacking].reset_index(drop=True), rtol=1e-6)
    predicted = forecast_warned(lambda: gaussian.predict(queries))  # forecast mode's predict: the same rule
    pd.testing.assert_frame_equal(predicted.reset_index(drop=True),  # predict mirrors y: the targets' names
                                  every[[f"S5:{lab}" for lab in LABS]].set_axis(LABS, axis=1))


def test_a_series_that_observed_no_target_forecasts_nan_and_leaves_the_others_alone(gaussian):
    """A new series in ``context`` whose rows observe none of the targets: every cell NaN, counted in the
    warning; the fitted series' forecasts are those without it."""
    blank = pd.DataFrame({"unique_id": "blank", "ds": [1.0, 2.5, 3.0], **{lab: np.nan for lab in LABS}})
    lacking = {**LACKING, "blank": LABS}
    result = forecast_warned(lambda: gaussian.forecast(h=2, context=blank, level=[80]), lacking)
    assert_nan_exactly_where_never_observed(result, lacking)
    without = forecast_warned(lambda: gaussian.forecast(h=2, level=[80]))
    pd.testing.assert_frame_equal(result[result["unique_id"] != "blank"].reset_index(drop=True), without, rtol=1e-6)


def test_update_forecasts_a_target_once_it_is_observed(gaussian, panel):
    """p03 measures ldl for the first time, p07 only hb: after ``update``, p03's ldl is forecast, p07 still
    lacks both, and the forecasts equal ``forecast(context=new_rows)`` before it (the streaming contract)."""
    model = copy.deepcopy(gaussian)
    last = panel.groupby("unique_id")["ds"].max()
    new_rows = pd.DataFrame({"unique_id": ["p03", "p07", "p00"], "ds": last[["p03", "p07", "p00"]].to_numpy() + 0.5,
                             **{lab: np.nan for lab in LABS}})
    new_rows.loc[0, ["hb", "ldl"]] = [15.0, 40.0]
    new_rows.loc[1, "hb"] = 12.0
    new_rows.loc[2, LABS] = panel.loc[panel["unique_id"] == "p00", LABS].ffill().iloc[-1].to_numpy()
    still = {"p07": ["ldl", "crp"], "p11": ["crp"]}
    before = forecast_warned(lambda: model.forecast(h=2, context=new_rows, return_std=True, level=[80]), still)
    model.update(new_rows)
    after = forecast_warned(lambda: model.forecast(h=2, return_std=True, level=[80]), still)
    assert_nan_exactly_where_never_observed(after, still)
    # The forecasts equal; the intervals adapt where update logged rows (smr_ts/forecasting/adaptive.py).
    bounds = [c for c in after.columns if "-lo-" in c or "-hi-" in c]
    pd.testing.assert_frame_equal(after.drop(columns=bounds), before.drop(columns=bounds), rtol=1e-5)
    untouched = ~after["unique_id"].isin(new_rows["unique_id"]).to_numpy()
    pd.testing.assert_frame_equal(after[untouched], before[untouched], rtol=1e-5)


def test_backtest_scores_what_each_series_has(panel):
    """Every cut-off's forecast warns once, counting the lacking series it forecasts; their never-measured labs
    are NaN in ``S5:<lab>`` and its interval columns (the truth there is NaN too), every other prediction
    is finite."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = backtest(SMRForecaster(**SMALL), panel, horizon=2.0, n_cutoffs=2, level=[80], refit=False)
    cutoffs = list(pd.unique(result["cutoff"]))
    assert len(cutoffs) == 2 and set(LACKING) <= set(result["unique_id"])
    expected = []
    for cut in cutoffs:
        tested = panel.loc[(panel["ds"] > cut) & (panel["ds"] <= cut + 2.0), "unique_id"]
        lacking = [sid for sid in LACKING if sid in set(tested)]
        names = [lab for lab in LABS if any(lab in LACKING[sid] for sid in lacking)]
        if lacking:  # a cut-off that forecasts no lacking series has nothing to warn about
            expected.append(f"{len(lacking)} series never observed target(s) {names}: ")
    messages = gap_warnings(record)
    assert expected and len(messages) == len(expected), (messages, expected)
    assert all(m.startswith(e) for m, e in zip(messages, expected)), (messages, expected)
    assert_nan_exactly_where_never_observed(result, truth=LABS)
    for sid, labs in LACKING.items():
        assert result.loc[result["unique_id"] == sid, labs].isna().all().all()


def test_training_scores_each_observed_cell_and_nothing_else(gaussian):
    """The loss's gradient reaches the network's output at every (pair, target) with an observed query and
    an anchor, the lacking series' other targets included, and is exactly zero at the targets a series
    never observed. Fails if the weight is per row: ``all`` over targets drops the lacking series from
    training, ``any`` scores their never-observed cells (as a change of 0)."""
    data = forecast_tensors(gaussian.history_panel_, gaussian.layout_, FIRST_GAP)
    ids = list(gaussian.history_panel_.ids)
    for sid in [*LACKING, "p00", "p01"]:
        sampler = PairSampler(data.take(np.array([ids.index(sid)])), gaussian.layout_, window=64, batch_size=1,
                              device="cpu")
        (batch,) = sampler.fixed(np.random.default_rng(0))
        outputs = {}

        def network(b):
            mean, std = gaussian.model_(b)
            mean.retain_grad()
            outputs["mean"] = mean
            return mean, std

        loss, _ = forecast_loss(network, batch, kind="gaussian")
        loss.backward()
        grad = outputs["mean"].grad[0].abs()  # (pair, target)
        scored = batch["weight"][0] > 0
        assert torch.isfinite(loss)
        assert (grad[scored] > 0).all() and (grad[~scored] == 0).all(), sid
        never = torch.tensor([lab in LACKING.get(sid, ()) for lab in LABS])
        assert not scored[:, never].any(), sid
        assert scored[:, ~never].any(0).all(), sid  # each of its other labs trains
