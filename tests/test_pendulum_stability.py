"""Stability of the probe-chosen pendulum recipes on the seeds that collapsed (slow: ``pytest -m slow``).

Each test trains the first epochs of the full 100-epoch schedule (one epoch of warm-up, then
cosine) on the benchmark's data (2000/1000 sequences, data seed 0), as
``benchmarks/pendulum_probe.py`` does, and checks that the model learns past the learning-rate
peak, where the collapsed runs failed. Only validation numbers are read.

The backbones with a probe-chosen recipe (``PENDULUM_BACKBONE_SETTINGS``), on the seeds that failed:

- ODE-RNN: under S5's recipe its seeds 0, 1 and 2 all collapsed in the first 4 epochs (validation
  MSE back to about 0.41, the gradient norm at 1e4 at the peak; ``docs/results/pendulum_probe.md``).
- S6 and S6+SMR (clipping at norm 1): S6 seed 1 and S6+SMR seed 0 stopped improving early in their
  full runs under S5's recipe (best epochs 13 and 6, on a GPU); S6 seed 0 was still at 0.17 after
  4 epochs of the recipe on this CPU (``docs/results/pendulum_probe_s6.md``), the one probe run that
  fails these tests' checks. A GPU run and a CPU run of one seed do not follow the same path, so the
  GPU's failed seeds are tested for what they are: seeds that failed once.
- GRU-dt (lr 0.003, clipping at norm 1): seed 0 never went below 0.22 in its full run under S5's
  recipe (a GPU); on this CPU it was at 0.257 after 4 epochs of the recipe and 0.249 with clipping
  alone (``docs/results/pendulum_probe_gru_dt.md``).

One test takes about 3 minutes on one CPU core.
"""

import math

import pytest

from smr_ts.callbacks import StopAfter
from smr_ts.datasets import make_pendulum
from smr_ts.recipes import PENDULUM_BACKBONE_SETTINGS, pendulum_forecaster

# Validation MSE of a model that has learnt nothing: (sin, cos) of a uniform angle has variance 1/2.
LEARNT_NOTHING = 0.3
# Learnt past the peak: after 4 epochs the failed runs sat at 0.17-0.41 (S6's recipe on seed 0 0.170,
# GRU-dt's 0.257 and 0.249 with clipping alone, ODE-RNN's 0.41), the chosen recipes at 0.013-0.030.
LEARNT = 0.2 * LEARNT_NOTHING
EPOCHS = 4  # past the learning-rate peak at the end of epoch 0, where the recipe's runs collapsed


@pytest.fixture(scope="module")
def pendulum():
    return make_pendulum(n_train=2000, n_valid=1000, n_test=1000, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ode_rnn_with_its_recipe_learns_past_the_learning_rate_peak(pendulum, seed):
    assert PENDULUM_BACKBONE_SETTINGS["ode_rnn"] == {"lr": 0.003, "grad_clip": 1.0}
    _assert_learns_past_the_peak(_probe(pendulum, "ode_rnn", False, seed))


@pytest.mark.slow
@pytest.mark.parametrize("smr, seed", [(False, 0), (False, 1), (True, 0)])
def test_s6_with_its_recipe_learns_past_the_learning_rate_peak(pendulum, smr, seed):
    assert PENDULUM_BACKBONE_SETTINGS["s6"] == {"grad_clip": 1.0}
    _assert_learns_past_the_peak(_probe(pendulum, "s6", smr, seed))


@pytest.mark.slow
def test_gru_dt_with_its_recipe_learns_past_the_learning_rate_peak(pendulum):
    assert PENDULUM_BACKBONE_SETTINGS["gru_dt"] == {"lr": 0.003, "grad_clip": 1.0}
    _assert_learns_past_the_peak(_probe(pendulum, "gru_dt", False, 0))


def _probe(pendulum, backbone, smr, seed):
    """Validation MSE of the first ``EPOCHS`` epochs of the full schedule, with the backbone's recipe."""
    model = pendulum_forecaster(backbone, smr=smr, tuned=True, random_state=seed, device="cpu",
                                callbacks=[StopAfter(EPOCHS)])
    model.fit(*pendulum.to_frame("train"), validation_data=pendulum.to_frame("valid"))
    valid = [h["valid_mse"] for h in model.history_]
    assert len(valid) == EPOCHS and all(math.isfinite(v) for v in valid)
    return valid


def _assert_learns_past_the_peak(valid):
    # It learns, and it does not fall back after the peak: every epoch after the first improves on
    # the first, and the last is far below what a model that has learnt nothing scores.
    assert valid[-1] < LEARNT, valid
    assert max(valid[1:]) < valid[0], valid
