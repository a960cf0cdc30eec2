"""Padded per-series panels (smr_ts/data/panel.py): packing rows into padded series, held against a
per-series loop; duplicates named; the median gap."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smr_ts.data.frames import split_frame
from smr_ts.data.panel import median_gap, to_panel
from smr_ts.data.times import TimeInfo


def _panel_by_loop(ids, times, values):
    """The definition: for each series id (sorted), its rows sorted by time."""
    out = {}
    for sid in sorted(set(ids.tolist())):
        rows = [i for i in range(len(ids)) if ids[i] == sid]
        rows.sort(key=lambda i: times[i])
        out[sid] = rows
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), n_ids=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_to_panel_matches_loop(n, n_ids, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, n_ids, n)
    times = rng.permutation(n * 3)[:n].astype(np.float64)  # unique, so never duplicate
    values = rng.normal(size=(n, 2)).astype(np.float32)
    values[rng.random((n, 2)) < 0.2] = np.nan
    panel = to_panel(ids, times, values)
    expected = _panel_by_loop(ids, times, values)
    assert panel.ids.tolist() == list(expected)
    for s, rows in enumerate(expected.values()):
        k = len(rows)
        assert panel.lengths[s] == k
        assert panel.rows[s, :k].tolist() == rows
        assert (panel.rows[s, k:] == -1).all() and not panel.valid[s, k:].any()
        np.testing.assert_array_equal(panel.time[s, :k], times[rows])
        np.testing.assert_array_equal(panel.value_observed[s, :k], ~np.isnan(values[rows]))
        np.testing.assert_array_equal(panel.values[s, :k], np.nan_to_num(values[rows]))
        gaps = panel.gaps(unit=2.0)
        assert gaps[s, 0] == 1.0
        np.testing.assert_allclose(gaps[s, 1:k], np.diff(times[rows]) / 2.0)
        assert (gaps[s, k:] == 0).all()


def test_duplicate_rows_are_named():
    with pytest.raises(ValueError, match=r"duplicate \(unique_id, ds\).*unique_id='b'"):
        to_panel(np.array(["a", "b", "b"]), np.array([1.0, 2.0, 2.0]), np.zeros((3, 1), np.float32),
                 id_col="unique_id", time_col="ds")


def test_duplicate_datetimes_are_named_as_datetimes():
    stamps = pd.Series(pd.to_datetime(["2024-03-01 12:00", "2024-03-01 12:00"])).dt.tz_localize("Europe/Paris")
    ids, times, info, _ = split_frame(pd.DataFrame({"id": ["a", "a"], "ds": stamps, "v": [1.0, 2.0]}), "id", "ds")
    with pytest.raises(ValueError, match=r"ds=2024-03-01 12:00:00\+01:00$"):
        to_panel(ids, times, np.zeros((2, 1), np.float32), time_col="ds", info=info)
    with pytest.raises(ValueError, match=r"ds=7\.5$"):  # numeric times as plain numbers
        to_panel(ids, np.array([7.5, 7.5]), np.zeros((2, 1), np.float32), time_col="ds", info=TimeInfo("numeric"))
    naive = TimeInfo("datetime")
    with pytest.raises(ValueError, match=r"ds=2024-03-01 11:00:00$"):
        to_panel(ids, times, np.zeros((2, 1), np.float32), time_col="ds", info=naive)


def test_median_gap_ignores_padding_and_first_rows():
    panel = to_panel(np.array([0, 0, 0, 1, 1]), np.array([0.0, 1.0, 3.0, 10.0, 14.0]), np.zeros((5, 1), np.float32))
    assert median_gap(panel) == 2.0
