"""n_networks: an ensemble of forecasting networks (smr_ts/model.py, ForecastEnsemble) forecasts the average of its
members, trains each member on its own loss, and is one network to everything downstream (save, load, update)."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.model import ForecastEnsemble, ForecastNetwork
from smr_ts.training import forecast_loss

from ._data import FAST, poisson_frame, split_last


def _members(n, gaussian=False, quantiles=None):
    torch.manual_seed(0)
    settings = SMRForecaster(state_size=4).get_params()
    members = [ForecastNetwork(5, 4, 1, 8, 1, "s5", settings, gaussian=gaussian, quantiles=quantiles)
               for _ in range(n)]
    for m in members:  # heads start at zero; give every member its own non-zero forecast
        for p in m.parameters():
            p.data.add_(0.1 * torch.randn_like(p))
    return members


def _batch(b=3, length=6, pairs=4):
    g = torch.Generator().manual_seed(1)
    return {"inputs": torch.randn(b, length, 5, generator=g), "dt": torch.rand(b, length, generator=g) + 0.1,
            "mask": torch.ones(b, length, dtype=torch.bool), "k": torch.randint(0, length, (b, pairs), generator=g),
            "query": torch.randn(b, pairs, 4, generator=g), "target": torch.randn(b, pairs, 1, generator=g),
            "weight": (torch.rand(b, pairs, 1, generator=g) > 0.2).float(), "scale": torch.ones(b, pairs, 1)}


@pytest.mark.parametrize("head", ["point", "gaussian", "quantile"])
def test_an_ensemble_forecasts_the_average_of_its_members(head):
    members = _members(3, gaussian=head == "gaussian", quantiles=(0.1, 0.5, 0.9) if head == "quantile" else None)
    ensemble = ForecastEnsemble(copy.deepcopy(members)).eval()
    batch = _batch()
    with torch.no_grad():
        outs = [m.eval()(batch) for m in members]
        mean, second = ensemble(batch)
    if head == "quantile":
        np.testing.assert_allclose(second, torch.stack([s for _, s in outs]).mean(0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(mean, second[..., 1], rtol=0, atol=0)
        return
    np.testing.assert_allclose(mean, torch.stack([m for m, _ in outs]).mean(0), rtol=1e-6, atol=1e-7)
    if head == "gaussian":  # the mixture's spread: the members' variances plus their disagreement
        means, stds = torch.stack([m for m, _ in outs]), torch.stack([s for _, s in outs])
        expected = torch.sqrt((stds ** 2).mean(0) + means.var(0, unbiased=False))
        np.testing.assert_allclose(second, expected, rtol=1e-6)
        assert (second >= stds.min(0).values - 1e-6).all()


def test_in_training_the_loss_is_the_average_of_the_members_losses():
    members = _members(3)
    ensemble = ForecastEnsemble(copy.deepcopy(members)).train()
    batch = _batch()
    loss, weight = forecast_loss(ensemble, batch, kind="mae")
    each = [forecast_loss(m.train(), batch, kind="mae")[0] for m in members]
    assert weight == float(batch["weight"].sum())
    np.testing.assert_allclose(loss.item(), torch.stack(each).mean().item(), rtol=1e-6)
    loss.backward()  # every member learns from its own error
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ensemble.members[1].mean_head.parameters())


def test_an_ensemble_fit_is_one_network_to_save_load_and_update(tmp_path):
    history, future = split_last(poisson_frame(lambda t, rng, i: np.sin(t) + 0.1 * rng.normal(size=len(t))), 4)
    params = {**FAST, "epochs": 3, "floor": False}
    model = SMRForecaster(**params, n_networks=3).fit(history)
    again = SMRForecaster(**params, n_networks=3).fit(history)
    single = SMRForecaster(**params).fit(history)
    assert isinstance(model.model_, ForecastEnsemble) and len(model.model_.members) == 3
    assert isinstance(single.model_, ForecastNetwork)
    before = model.forecast(h=3, level=[80])
    pd.testing.assert_frame_equal(again.forecast(h=3, level=[80]), before)  # determinism under a seed
    assert not np.allclose(single.forecast(h=3)["S5"], before["S5"])
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(SMRForecaster.load(tmp_path / "m").forecast(h=3, level=[80]), before)
    new = future.groupby("unique_id").head(2)
    expected = model.forecast(h=2, context=new)
    model.update(new)  # each member's state advances over the new rows only
    pd.testing.assert_frame_equal(model.forecast(h=2), expected, rtol=1e-5, atol=1e-6)
