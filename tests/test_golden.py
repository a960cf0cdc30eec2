"""Predictions for a fixed seed match the committed golden file, up to float noise.

The file is regenerated on purpose only (``python tests/golden.py``), with the reason in the
commit message.

The forecasts are compared with ``rtol=1e-5`` and an ``atol`` of ``1e-5`` times the case's largest
absolute value: about a hundred float32 roundings. That is far above what a different BLAS code
path moves (another CPU, another MKL or numpy, ``MKL_CBWR``), and far below what one more
training step or one wrong input feature moves. Every case's selected epoch must match exactly.

``SMR_TS_GOLDEN_STRICT=1`` demands bit-identical output instead: for a refactor checked on the
machine and library versions that wrote the file, where not a single bit may move.
"""

import os

import numpy as np
import pytest

from golden import CASES, GOLDEN, best_epoch_key, columns_key, golden_predictions

RTOL = 1e-5
ATOL_OF_LARGEST = 1e-5  # times the case's largest |value|: values near 0 carry their neighbours' rounding
STRICT = os.environ.get("SMR_TS_GOLDEN_STRICT", "") not in ("", "0")


@pytest.fixture(scope="module")
def golden():
    return np.load(GOLDEN), golden_predictions()


def test_predictions_match_the_golden_file(golden):
    expected, got = golden
    assert sorted(got) == sorted(expected.files)
    moved = []  # every case that moved, not only the first: which cases move tells what changed
    for name in sorted(expected.files):
        assert got[name].shape == expected[name].shape, name
        if got[name].dtype.kind == "U":  # a case's column names
            np.testing.assert_array_equal(got[name], expected[name])
            continue
        assert np.isfinite(got[name]).all(), name
        try:
            if STRICT or got[name].dtype.kind == "i":
                np.testing.assert_array_equal(got[name], expected[name])
            else:
                np.testing.assert_allclose(got[name], expected[name], rtol=RTOL,
                                           atol=ATOL_OF_LARGEST * np.abs(expected[name]).max())
        except AssertionError:
            diff = np.abs(got[name].astype(np.float64) - expected[name]).max()
            moved.append(f"{name}: max abs difference {diff:.3g}")
    assert not moved, "moved from tests/data/golden_predictions.npz:\n" + "\n".join(moved)


def test_the_golden_forecasts_are_named_after_their_model(golden):
    """The columns of each case: the backbone's name, with its suffixes (the file holds them beside the values)."""
    expected, _ = golden
    assert list(expected[columns_key("s5_gaussian")]) == ["S5", "S5_std"]
    assert list(expected[columns_key("s6_smr")]) == ["S6"] and list(expected[columns_key("gru_dt")]) == ["GRU-dt"]


def test_every_golden_forecast_comes_from_a_trained_network(golden):
    """Fails if a case's selection keeps the untrained last-value network (best epoch -1): its
    forecasts would pin carrying the last value forward, not the backbone."""
    expected, got = golden
    for name, _ in CASES:
        assert int(got[best_epoch_key(name)]) >= 0, name
        assert int(expected[best_epoch_key(name)]) >= 0, name
