"""Reading long frames (smr_ts/data/frames.py): ids and times from columns or index levels, and the rows
a fitted model is given, read by its schema."""

import numpy as np
import pandas as pd
import pytest

from smr_ts.data.frames import FrameSchema, known_rows, split_frame
from smr_ts.data.times import TimeInfo


def test_index_levels_are_read_like_columns():
    df = pd.DataFrame({"unique_id": ["a", "a", "b"], "ds": [1.0, 2.0, 0.5], "v": [1.0, 2.0, 3.0]})
    from_cols = split_frame(df, "unique_id", "ds")
    from_index = split_frame(df.set_index(["unique_id", "ds"]), "unique_id", "ds")
    for a, b in zip(from_cols[:2], from_index[:2]):
        np.testing.assert_array_equal(a, b)
    assert list(from_index[3].columns) == ["v"]


SCHEMA = FrameSchema("unique_id", "ds", TimeInfo("numeric"), ["y", "dose"], ["y"], ["dose"], ["group"])


def test_known_rows_take_the_fitted_column_order_and_set_the_statics_apart():
    """Columns in another order come back in fit's order; the static column leaves the values, as one row per
    series. Fails if values are read by position, or if a static column stays among the values."""
    frame = pd.DataFrame({"unique_id": ["a", "a", "b"], "ds": [1.0, 2.0, 1.0], "group": ["x", "x", "z"],
                          "dose": [0.0, 1.0, np.nan], "y": [5.0, 6.0, 7.0]})
    ids, times, info, values = split_frame(frame, "unique_id", "ds")
    rows = known_rows(ids, times, info, values, SCHEMA, "new_rows", np.float64)
    np.testing.assert_array_equal(rows.values, [[5.0, 0.0], [6.0, 1.0], [7.0, np.nan]])
    assert rows.statics["group"].to_dict() == {"a": "x", "b": "z"}
    without = known_rows(ids, times, info, values.drop(columns="group"), SCHEMA, "new_rows", np.float64)
    assert without.statics is None  # rows may leave every static column out


def test_known_rows_name_what_is_wrong():
    frame = pd.DataFrame({"unique_id": ["a", "a"], "ds": [1.0, 2.0], "group": ["x", "w"], "dose": [0.0, 1.0],
                          "y": [5.0, 6.0]})
    ids, times, info, values = split_frame(frame, "unique_id", "ds")
    with pytest.raises(ValueError, match="context: static column 'group' must hold one value per series"):
        known_rows(ids, times, info, values, SCHEMA, "context")
    with pytest.raises(ValueError, match=r"context: feature columns differ from fit: missing \['dose'\]"):
        known_rows(ids, times, info, values.drop(columns=["dose", "group"]), SCHEMA, "context")
    dated = frame.assign(ds=pd.to_datetime(["2024-01-01", "2024-01-02"]))
    ids, times, info, values = split_frame(dated, "unique_id", "ds")
    with pytest.raises(TypeError, match="context: time column 'ds' is tz-naive datetime but was numeric at fit"):
        known_rows(ids, times, info, values, SCHEMA, "context")
