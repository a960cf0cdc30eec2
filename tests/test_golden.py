"""Predictions for a fixed seed are bit-identical to the committed golden file.

The file is regenerated on purpose only (``python tests/golden.py``), with the reason in the
commit message: restructuring code must not move a single bit.
"""

import numpy as np

from golden import GOLDEN, golden_predictions


def test_predictions_match_the_golden_file():
    expected = np.load(GOLDEN)
    got = golden_predictions()
    assert sorted(got) == sorted(expected.files)
    for name in expected.files:
        assert got[name].shape == expected[name].shape, name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        assert np.isfinite(got[name]).all(), name
