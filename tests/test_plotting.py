"""smr_ts.plotting draws what it is given: history at its observation times, forecast lines and one
band per interval level, a forecast per backtest cut-off, and the cut-offs (read back from the
artists on the Agg backend)."""

import sys

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from smr_ts import SMRForecaster  # noqa: E402
from smr_ts.model_selection import backtest  # noqa: E402
from smr_ts.plotting import plot_forecast  # noqa: E402

TINY = dict(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0, horizon=6.0)


def frame(n_series=3, n_obs=25, seed=0, start=None):
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        t = np.cumsum(rng.exponential(1.0, n_obs))
        parts.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": np.cumsum(rng.normal(size=n_obs)) + 3 * i}))
    out = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)  # unsorted rows
    if start is not None:
        out["ds"] = pd.Timestamp(start) + pd.to_timedelta(out["ds"], unit="h")
    return out


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_history_and_a_forecast_with_its_bands_are_drawn_at_their_times():
    history = frame()
    history.loc[history.index[0], "y"] = np.nan  # not observed: not drawn
    model = SMRForecaster(**TINY).fit(history)
    forecast = model.forecast(h=4, level=[80, 95])
    fig = plot_forecast(history, forecast, ids=["s1", "s2"])
    assert len(fig.axes) == 2
    for ax, sid in zip(fig.axes, ["s1", "s2"]):
        rows = history[(history["unique_id"] == sid) & history["y"].notna()].sort_values("ds")
        observed, line = [l for l in ax.lines if l.get_label() in ("observed", "forecast")]
        np.testing.assert_array_equal(observed.get_xdata(), rows["ds"].to_numpy())
        np.testing.assert_array_equal(observed.get_ydata(), rows["y"].to_numpy())
        mine = forecast[forecast["unique_id"] == sid]
        np.testing.assert_array_equal(line.get_xdata(), mine["ds"].to_numpy())
        np.testing.assert_array_equal(line.get_ydata(), mine["S5"].to_numpy())
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2  # one per level, the wider one lighter
        assert bands[0].get_label() == "95% interval" and bands[0].get_alpha() < bands[1].get_alpha()
        top = bands[1].get_paths()[0].vertices[:, 1]  # the 80 % band spans lo-80 .. hi-80
        assert top.max() == pytest.approx(mine["S5-hi-80"].max()) and top.min() == pytest.approx(mine["S5-lo-80"].min())
        assert not [l for l in ax.lines if l.get_linestyle() == "--"]  # no cut-offs without a backtest
    only_80 = plot_forecast(history, forecast, ids=["s1"], level=[80])
    assert [c.get_label() for c in only_80.axes[0].collections] == ["80% interval"]


def test_a_backtest_draws_a_forecast_per_cutoff_and_marks_the_cutoffs():
    history = frame(n_series=2, n_obs=40)
    result = backtest(SMRForecaster(**TINY), history, horizon=4.0, n_cutoffs=2, step=3.0, level=[80])
    cutoffs = list(pd.unique(result["cutoff"]))
    fig = plot_forecast(history, result, ids=["s0"])
    ax = fig.axes[0]
    marks = [l for l in ax.lines if l.get_linestyle() == "--"]
    assert [float(m.get_xdata()[0]) for m in marks] == cutoffs
    forecasts = [l for l in ax.lines if l.get_label().startswith("forecast from")]
    mine = result[result["unique_id"] == "s0"]
    assert len(forecasts) == mine["cutoff"].nunique() == 2
    assert forecasts[0].get_color() != forecasts[1].get_color()
    for line, cut in zip(forecasts, cutoffs):
        rows = mine[mine["cutoff"] == cut].sort_values("ds")
        np.testing.assert_array_equal(line.get_ydata(), rows["S5"].to_numpy())
        assert line.get_label() == f"forecast from {cut:g}"
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2  # a band per cut-off
    assert len(plot_forecast(history, cutoffs=[5.0, 9.0]).axes[0].lines) == 3  # history and two marks


def test_the_forecast_column_is_found_by_its_model_name_or_named():
    """One target: the model's column, whatever the alias; several: the one of the drawn target."""
    history = frame(n_series=2).assign(z=lambda f: 2 * f["y"])
    model = SMRForecaster(**TINY, target_cols=["y", "z"], alias="mine").fit(history)
    forecast = model.forecast(h=3)
    assert list(forecast.columns) == ["unique_id", "ds", "mine:y", "mine:z"]
    for target in ("y", "z"):
        line = [l for l in plot_forecast(history, forecast, target=target, ids=["s0"]).axes[0].lines
                if l.get_label() == "forecast"][0]
        np.testing.assert_array_equal(line.get_ydata(), forecast.loc[forecast["unique_id"] == "s0", f"mine:{target}"])
    named = plot_forecast(history, forecast.assign(other=0.0), target="y", model="other", ids=["s0"])
    assert [l for l in named.axes[0].lines if l.get_label() == "forecast"][0].get_ydata().max() == 0.0


def test_aware_times_are_drawn_as_wall_clock_times_and_series_are_capped():
    history = frame(n_series=6, start="2024-06-01")
    history["ds"] = history["ds"].dt.tz_localize("America/New_York")
    fig = plot_forecast(history, max_series=4)
    assert len(fig.axes) == 4
    rows = history[history["unique_id"] == "s0"].sort_values("ds")
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_xdata(), rows["ds"].dt.tz_localize(None).to_numpy())
    fig = plot_forecast(history.drop(columns="unique_id").iloc[:10], id_col=None)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines[0].get_xdata()) == 10


def test_plot_errors_name_the_column_and_the_missing_extra(monkeypatch):
    history = frame()
    with pytest.raises(ValueError, match="no column 'z' to draw"):
        plot_forecast(history, target="z")
    with pytest.raises(ValueError, match=r"several prediction columns \['a', 'b'\] for 'y'.*model="):
        plot_forecast(history, history.assign(a=1.0, b=2.0))
    with pytest.raises(ValueError, match="forecast has no column 'S6'"):
        plot_forecast(history, history.assign(S5=1.0), model="S6")
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'smr_ts\[plot\]'"):
        plot_forecast(history)


def test_ids_and_axes_that_cannot_be_drawn_name_the_parameter():
    """Fails if ids=[] reaches matplotlib ("Number of rows must be a positive integer"), or fewer axes
    than series raise a bare IndexError."""
    history = frame()
    with pytest.raises(ValueError, match=r"ids is empty: give the series to draw, or ids=None"):
        plot_forecast(history, ids=[])
    with pytest.raises(ValueError, match=r"ids \['nope'\] are in neither history nor forecast"):
        plot_forecast(history, ids=["s0", "nope"])
    with pytest.raises(ValueError, match=r"max_series must be a positive int"):
        plot_forecast(history, max_series=0)
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"axes holds 1 Axes but 2 series are drawn \(ids=\['s0', 's1'\]\): give one "
                                         r"Axes per series"):
        plot_forecast(history, ids=["s0", "s1"], axes=[ax])
    # one Axes for one series, also given bare; a grid from plt.subplots is read in order
    assert plot_forecast(history, ids="s2", axes=ax).axes == [ax]
    fig, grid = plt.subplots(2, 2)
    plot_forecast(history, ids=["s0", "s1", "s2"], axes=grid)
    assert [a.get_title(loc="left") for a in grid.ravel()] == ["unique_id = s0", "unique_id = s1", "unique_id = s2", ""]
