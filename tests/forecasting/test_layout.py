"""What a forecasting fit fixes about its inputs (smr_ts/forecasting/layout.py): the automatic horizon and
batch size."""

import numpy as np
import pytest

from smr_ts import SMRForecaster
from smr_ts.forecasting.layout import _BATCH_ROWS, auto_batch_size

from ._data import FAST, poisson_frame


def test_the_auto_horizon_is_a_quarter_of_the_median_span():
    frame = poisson_frame(lambda t, rng, i: np.sin(t), n_series=4, n_obs=60)
    model = SMRForecaster(**{**FAST, "epochs": 1}).fit(frame)
    spans = frame.groupby("unique_id")["ds"].agg(lambda t: t.max() - t.min())
    assert model.horizon_ == pytest.approx(max(0.25 * spans.median(), 8 * model.layout_.gap))


def test_auto_batch_size_holds_about_a_fixed_number_of_rows():
    sizes = [auto_batch_size(w) for w in (64, 128, 256, 512, 1024)]
    assert sizes == sorted(sizes, reverse=True) and all(8 <= b <= 32 for b in sizes)
    for w, b in zip((256, 512, 1024), sizes[2:]):  # inside the clip: rows per batch are the budget
        assert b * w == _BATCH_ROWS
