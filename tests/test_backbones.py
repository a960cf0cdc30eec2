"""The backbone registry: every backbone trains through the estimator, knows its SSM group,
and backbone names live in the registry alone."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

import smr_ts
from smr_ts import SMRForecaster
from smr_ts.backbones import BACKBONES, smr_backbones
from smr_ts.baselines import GRUDelta, ODERNN
from smr_ts.datasets import make_oscillators, make_pendulum
from smr_ts.ssm.params import is_ssm_parameter, parameter_groups

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_fits_and_forecasts(name):
    """A trained network of every backbone forecasts from what its backbone read: near the data's range,
    away from the last value (the head learned a correction), and differently for two histories whose query
    features are the same. Catches a backbone whose output never reaches the forecast."""
    history = make_oscillators(n_series=4, n_obs=12, random_state=0)
    smr = BACKBONES[name].takes_smr
    model = SMRForecaster(backbone=name, smr=smr, d_model=8, state_size=8, n_layers=1, epochs=2,
                          validation_fraction=0.0, random_state=0).fit(history)
    out = model.forecast(h=2)
    last = history.groupby("unique_id")["y"].last().reindex(out["unique_id"]).to_numpy()
    spread = np.ptp(history["y"].to_numpy())
    assert list(out.columns) == ["unique_id", "ds", BACKBONES[name].alias]  # named after the backbone
    assert np.abs(out[model.alias_].to_numpy() - last).max() < spread
    assert np.abs(out[model.alias_].to_numpy() - last).min() > 1e-6
    t = np.arange(1.0, 11.0)
    y = np.array([0.0, 1.0, -1.0, 2.0, 0.5, -2.0, 1.0, 0.3, 0.0, 0.7])
    a = pd.DataFrame({"unique_id": "a", "ds": t, "y": y})
    # its first nine values reversed: the same last value, mean and absolute changes (every query feature the
    # same), another past that only the backbone sees
    b = a.assign(unique_id="b", y=np.r_[y[8::-1], y[9]])
    queries = pd.DataFrame({"unique_id": ["a", "b"], "ds": [11.0, 11.0]})
    both = model.forecast(times=queries, context=pd.concat([a, b]))[model.alias_].to_numpy()
    assert abs(both[0] - both[1]) > 1e-6, both


@pytest.mark.parametrize("name, expected", [
    ("s5", {"log_neg_lambda_re", "lambda_im", "b_tilde", "log_step", "norm.weight", "norm.bias"}),
    ("s6", {"A_log", "D", "norm.weight", "norm.bias"}),
    ("gru_dt", set()),
    ("ode_rnn", set()),
])
def test_the_ssm_group_holds_the_tagged_parameters(name, expected):
    model = SMRForecaster(backbone=name, d_model=8, state_size=8, n_layers=2)
    model.n_targets_, model.mode_, model.value_columns_, model.loss_ = 1, "regression", ["a", "b", "c"], "mse"
    network = model._build_model()
    tagged = {n.split(".")[-1] if ".ssm." in n else ".".join(n.split(".")[-2:])
              for n, p in network.named_parameters() if is_ssm_parameter(p)}
    assert tagged == expected
    other, ssm = parameter_groups(network)
    assert len(other) + len(ssm) == len(list(network.parameters()))
    assert all(n.startswith("backbone.") for n, p in network.named_parameters() if is_ssm_parameter(p))


def test_registry_entries():
    assert list(BACKBONES) == ["s5", "s6", "gru_dt", "ode_rnn"]
    assert smr_backbones() == ["s5", "s6"]
    assert BACKBONES["ode_rnn"].module is ODERNN and BACKBONES["gru_dt"].module is GRUDelta


def test_smr_needs_a_backbone_that_takes_it():
    with pytest.raises(InvalidParameterError, match="smr"):
        SMRForecaster(backbone="gru_dt", smr=True, epochs=1).fit(make_oscillators(n_series=2, n_obs=5))


@pytest.mark.parametrize("name", smr_backbones())
def test_smr_use_gaps_reaches_every_gate(name):
    history = make_oscillators(n_series=4, n_obs=12, random_state=0)
    fits = {use: SMRForecaster(backbone=name, smr=True, smr_use_gaps=use, d_model=8, state_size=8, n_layers=2,
                               epochs=1, validation_fraction=0.0, random_state=0).fit(history) for use in (False, True)}
    gates = {use: [m for m in f.model_.modules() if type(m).__name__ == "SMRGate"] for use, f in fits.items()}
    assert len(gates[True]) == 2 and all(g.use_gaps and g.gap_weight is not None for g in gates[True])
    assert all(not g.use_gaps and g.gap_weight is None for g in gates[False])
    # the gap weights train (they start at 0) and are read: other weights move the forecasts
    assert all(float(g.gap_weight.detach().abs().max()) > 0 for g in gates[True])
    before = fits[True].forecast(h=2)[fits[True].alias_].to_numpy()
    with torch.no_grad():
        for g in gates[True]:
            g.gap_weight.fill_(2.0)
    del fits[True].stream_state_  # the saved states were computed with the trained weights
    assert np.abs(fits[True].forecast(h=2)[fits[True].alias_].to_numpy() - before).max() > 1e-6
    with pytest.raises(InvalidParameterError, match="smr_use_gaps"):
        SMRForecaster(backbone=name, smr=False, smr_use_gaps=True, epochs=1).fit(history)


def test_backbone_names_appear_nowhere_but_the_registry():
    literal = re.compile(r"""[(\[]\s*["']s5["']\s*,\s*["']s6["']""")  # a tuple or list of names in code
    offenders = []
    for folder in ("smr_ts", "benchmarks", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name != "backbones.py" and literal.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.parametrize("call, match", [
    (lambda: SMRForecaster(d_model=0).fit(make_oscillators(n_series=2, n_obs=5)), "d_model"),
    (lambda: SMRForecaster(n_layers=True).fit(make_oscillators(n_series=2, n_obs=5)), "n_layers"),
    (lambda: GRUDelta(4, n_layers=0), "n_layers"),
    (lambda: ODERNN(4, max_gap=float("inf")), "max_gap"),
    (lambda: make_pendulum(n_train=0), "n_train"),
    (lambda: make_pendulum(sampling="random"), "sampling"),
    (lambda: make_oscillators(rate=0.0), "rate"),
])
def test_one_style_of_parameter_errors(call, match):
    """The estimator, the baselines and the generators raise the same error type, naming the parameter."""
    with pytest.raises(InvalidParameterError, match=match):
        call()


def test_public_version():
    from importlib.metadata import version

    assert smr_ts.__version__ == version("smr_ts")
