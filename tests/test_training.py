"""The training loop (smr_ts/training.py): its optimiser's two parameter groups and the running average of
the weights."""

import numpy as np
import pytest
import torch
from torch import nn

from smr_ts import SMRForecaster
from smr_ts.callbacks import Callback
from smr_ts.datasets import make_oscillators
from smr_ts.ssm.params import is_ssm_parameter, tag_ssm_parameters
from smr_ts.training import TrainingSettings, train


class TwoGroups(nn.Module):
    def __init__(self):
        super().__init__()
        self.other = nn.Parameter(torch.ones(3, dtype=torch.float64))
        self.ssm = nn.Parameter(torch.ones(3, dtype=torch.float64))
        tag_ssm_parameters(self.ssm)


@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_the_first_step_moves_ssm_parameters_by_ssm_lr_without_decay(weight_decay):
    """Adam's first step moves each parameter by its group's rate (times the gradient's sign), and AdamW
    decays the other group only. Catches the SSM group stepping at the main ``lr`` or with weight decay."""
    net = TwoGroups()
    settings = TrainingSettings(epochs=1, lr=0.1, ssm_lr=0.001, weight_decay=weight_decay, warmup_epochs=0.0,
                                grad_clip=None)
    loss_fn = lambda batch: ((net.other * batch).sum() + (net.ssm * batch).sum(), 1.0)  # noqa: E731
    train(net, settings, lambda epoch: [torch.ones(3, dtype=torch.float64)], 1, loss_fn, None)
    decayed = 1.0 - 0.1 * weight_decay  # AdamW decays before its step
    torch.testing.assert_close(net.other.detach(), torch.full((3,), decayed - 0.1, dtype=torch.float64))
    torch.testing.assert_close(net.ssm.detach(), torch.full((3,), 1.0 - 0.001, dtype=torch.float64))


class Snapshot(Callback):
    def on_train_begin(self, state):
        self.before = {n: p.detach().clone() for n, p in state.model.named_parameters()}


def test_the_estimator_trains_the_ssm_group_at_ssm_lr():
    """Through fit: with ``ssm_lr`` a billionth of ``lr`` the tagged S5 parameters barely move while the others
    do. Catches ``ssm_lr`` not reaching the optimiser."""
    snapshot = Snapshot()
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, lr=0.01, ssm_lr=1e-11, random_state=0,
                          validation_fraction=0.0, callbacks=[snapshot]).fit(make_oscillators(n_series=4, n_obs=30))
    moved = {n: float((p.detach() - snapshot.before[n]).abs().max()) for n, p in model.model_.named_parameters()}
    tagged = {n for n, p in model.model_.named_parameters() if is_ssm_parameter(p)}
    assert tagged and max(moved[n] for n in tagged) < 1e-8
    assert np.median([moved[n] for n in moved if n not in tagged]) > 1e-4


class _Fixed(nn.Module):
    """A 'network' whose forecast is the batch's ``guess``: forecast_evaluate's scores, without training."""

    def forward(self, batch):
        return batch["guess"], None


def _validation_batch(gains_per_cutoff: np.ndarray, queries: int, rng) -> dict:
    """One window per cut-off, ``queries`` queries each; every query's gain over last value is its cut-off's
    gain plus small noise (one shared future per cut-off)."""
    n = len(gains_per_cutoff)
    target = torch.full((n, queries, 1), 2.0)  # the truth, 2 scales from the anchor
    gain = torch.as_tensor(gains_per_cutoff, dtype=torch.float32)[:, None, None] \
        + 0.01 * torch.as_tensor(rng.standard_normal((n, queries, 1)), dtype=torch.float32)
    return {"guess": target - (2.0 - gain), "target": target, "weight": torch.ones(n, queries, 1),
            "scale": torch.ones(n, queries, 1), "k": torch.zeros(n, queries, dtype=torch.int64)}


def test_the_gain_over_last_value_counts_cut_offs_not_their_queries():
    from smr_ts.training import forecast_evaluate

    rng = np.random.default_rng(0)
    gains = np.array([0.9, -0.4, 0.8, -0.3])  # two cut-offs won, two lost: no clear gain
    few = forecast_evaluate(_Fixed(), [_validation_batch(gains, 2, rng)])["valid_gain_z"]
    many = forecast_evaluate(_Fixed(), [_validation_batch(gains, 200, rng)])["valid_gain_z"]
    assert abs(many - few) < 0.05 * abs(few)  # more queries from the same cut-offs add no evidence
    assert few < 2.0  # RequireGain's bar: not met by four cut-offs that disagree
    clear = forecast_evaluate(_Fixed(), [_validation_batch(np.full(12, 0.5) + rng.normal(0, 0.1, 12), 3, rng)])
    assert clear["valid_gain_z"] > 5.0  # twelve cut-offs that agree


def test_queries_of_several_cut_offs_in_one_window_are_grouped_by_cut_off():
    from smr_ts.training import _per_cutoff

    gain = torch.tensor([[1.0, 3.0, 10.0, 0.0]])[..., None]
    weight = torch.tensor([[1.0, 1.0, 1.0, 0.0]])[..., None]  # the last pair is padding
    k = torch.tensor([[4, 4, 7, 0]])
    assert sorted(_per_cutoff(gain, weight, k).tolist()) == [2.0, 10.0]


class _Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([3.0, -2.0], dtype=torch.float64))


def test_each_epoch_is_judged_by_the_running_average_of_the_weights_after_each_step():
    """With ``average_epochs``, evaluation sees the exponential average of the weights after every step,
    computed here from the raw weights by a plain loop; the next epoch trains on from the raw weights, and
    training ends holding the average. Catches averaging the wrong steps, a wrong decay or warm-up, a swap
    that leaks the average into training, or a model that ends on the raw weights."""
    net, n_batches, epochs = _Scalar(), 3, 3
    raw, seen = [], []  # the weights each loss call starts from; the weights each evaluation sees
    settings = TrainingSettings(epochs=epochs, lr=0.05, ssm_lr=0.05, weight_decay=0.0, warmup_epochs=0.0,
                                grad_clip=None, average_epochs=0.7)

    def loss_fn(batch):
        raw.append(net.w.detach().clone())
        return ((net.w - batch) ** 2).sum(), 1.0

    def evaluate_fn():
        seen.append(net.w.detach().clone())
        return {"valid_score": float(seen[-1].sum())}

    batches = [torch.tensor([1.0, 1.0], dtype=torch.float64) * k for k in range(n_batches)]
    train(net, settings, lambda epoch: batches, n_batches, loss_fn, evaluate_fn)

    decay = np.exp(-1.0 / (0.7 * n_batches))
    average, expected = raw[0].clone(), []
    for t, after in enumerate(raw[1:], start=1):  # raw[t] holds the weights after step t
        d = min(decay, (1 + t) / (10 + t))
        average = d * average + (1 - d) * after
        if t % n_batches == 0:
            expected.append(average.clone())
    assert len(expected) == len(seen) - 1 == epochs - 1
    for got, want in zip(seen[:-1], expected):
        torch.testing.assert_close(got, want)
    assert not torch.allclose(seen[0], raw[n_batches])  # the average is not the raw weights
    torch.testing.assert_close(net.w.detach(), seen[-1])  # ends holding the last evaluated average


def test_the_weight_average_swaps_back_and_refuses_a_non_positive_span():
    from smr_ts.training import WeightAverage

    net = _Scalar()
    average = WeightAverage(net, 1.0, 4)
    start = net.w.detach().clone()
    with torch.no_grad():
        net.w.add_(1.0)
    average.update()
    moved = net.w.detach().clone()
    average.swap()
    assert average.swapped and not torch.allclose(net.w.detach(), moved)
    torch.testing.assert_close(net.w.detach(), start + 9 / 11)  # the first step keeps 2/11 of the old average
    average.swap()
    assert not average.swapped
    torch.testing.assert_close(net.w.detach(), moved)
    with pytest.raises(ValueError, match="average_epochs must be positive"):
        WeightAverage(net, 0.0, 4)


@pytest.mark.parametrize("regression", [False, True])
def test_forecasting_fits_average_their_weights_and_regression_fits_do_not(regression, monkeypatch):
    """The estimator wires the running average into forecasting fits only (sequence regression keeps the
    last step's weights, as the pendulum results were measured). Catches the setting not reaching the
    loop, or reaching regression."""
    import smr_ts.training as training

    made = []

    class Spy(training.WeightAverage):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(training, "WeightAverage", Spy)
    frame = make_oscillators(n_series=4, n_obs=30)
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=2, random_state=0)
    if regression:
        X = frame.assign(x=frame["y"].shift(1).fillna(0.0)).drop(columns="y")
        model.fit(X, frame["y"])
        assert made == []
    else:
        model.fit(frame)
        assert len(made) == 1 and made[0].steps > 0 and made[0].swapped  # ends holding the average
