"""The network's losses and heads (smr_ts/model.py): each loss against its textbook form, and a
Gaussian head whose std lands on the data's own absolute scale."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.model import gaussian_nll, masked_mae, masked_mse


def test_the_gaussian_nll_is_the_normal_negative_log_likelihood():
    """Against ``torch.distributions.Normal.log_prob``, averaged over the weighted targets.

    Catches a NLL that uses ``log(std**2)`` or ``0.5 * log(std)`` where ``log(std)`` belongs: each
    moves the loss by a multiple of ``log(std)``, and so every trained std by sqrt(2)."""
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(3, 7, 2, generator=gen, dtype=torch.float64)
    std = torch.exp(torch.randn(3, 7, 2, generator=gen, dtype=torch.float64))  # 0.1 to 10: log(std) of both signs
    target = torch.randn(3, 7, 2, generator=gen, dtype=torch.float64) * 3
    weight = (torch.rand(3, 7, 2, generator=gen) > 0.3).double()
    expected = -(torch.distributions.Normal(mean, std).log_prob(target) * weight).sum() / weight.sum()
    torch.testing.assert_close(gaussian_nll(mean, std, target, weight), expected, rtol=1e-12, atol=1e-12)
    # at its minimum over std the loss is the data's RMS error, not sqrt(2) off it
    error = torch.tensor([[1.5], [-0.5], [2.0]], dtype=torch.float64)
    rms = float(error.square().mean().sqrt())
    grid = torch.linspace(0.5 * rms, 2 * rms, 3001, dtype=torch.float64)
    losses = torch.stack([gaussian_nll(torch.zeros_like(error), s.expand_as(error), error, torch.ones_like(error))
                          for s in grid])
    assert float(grid[losses.argmin()]) == pytest.approx(rms, rel=1e-3)


def test_masked_losses_count_the_weighted_targets_only():
    mean = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[0.0, 0.0], [1.0, 100.0]])
    weight = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # the 100 is not observed
    assert float(masked_mse(mean, target, weight)) == pytest.approx((1 + 4 + 4) / 3)
    assert float(masked_mae(mean, target, weight)) == pytest.approx((1 + 2 + 2) / 3)


def test_a_gaussian_fit_on_pure_noise_recovers_the_noise_sigma():
    """Targets ``5 + 3 * e`` with e standard normal, unrelated to the input: the NLL's best mean is 5 and its
    best std 3, on the targets' own scale. Fails if the NLL weighs ``log(std)`` wrongly (a std of 3 / sqrt(2)
    or 3 * sqrt(2)), or if the std is not scaled back to the target's units (about 1)."""
    rng = np.random.default_rng(0)
    n_series, n_obs = 40, 30
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    X = pd.DataFrame({"unique_id": np.repeat(np.arange(n_series), n_obs), "ds": t.ravel(),
                      "x": rng.normal(size=t.size)})
    y = pd.Series(5.0 + 3.0 * rng.normal(size=t.size), name="y")
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=40, lr=0.02, batch_size=40,
                          loss="gaussian", validation_fraction=0.0, random_state=0).fit(X, y)
    mean, std = model.predict(X, return_std=True)
    assert mean.mean() == pytest.approx(5.0, abs=0.3)
    assert float(np.sqrt(np.mean(std**2))) == pytest.approx(3.0, rel=0.1)
    # the std the fit settled on is its own residuals' RMS (what the NLL's minimum is)
    assert float(np.sqrt(np.mean(std**2))) == pytest.approx(float(np.sqrt(np.mean((y - mean) ** 2))), rel=0.1)
    assert math.isfinite(model.history_[-1]["train_loss"])
