"""Streaming state of every backbone: a sequence run in pieces, each piece continued from the state
the previous one returned (``advance``), gives the outputs of one run over the whole sequence.

This is what ``SMRForecaster.update`` rests on; the estimator-level equivalence is in
tests/forecasting/test_streaming.py.
"""

import pytest
import torch

from smr_ts.backbones import BACKBONES
from smr_ts.baselines import GRUDelta, ODERNN
from smr_ts.ssm import S5, S6, SSMStack
from smr_ts.ssm.observed import elapsed_after, last_observed, observed_causal_conv, observed_gaps

H = 6


def make(kind):
    torch.manual_seed(0)
    layers = {
        "s5": lambda: S5(H, state_size=8, blocks=2),
        "s5-smr": lambda: S5(H, state_size=8, smr=True, smr_kernel=3),
        "s5-smr-gaps": lambda: S5(H, state_size=8, smr=True, smr_use_gaps=True),
        "s6": lambda: S6(H, state_size=4),
        "s6-smr": lambda: S6(H, state_size=4, smr=True, smr_kernel=5),
        "s6-smr-gaps": lambda: S6(H, state_size=4, smr=True, smr_use_gaps=True),
        "stack-s5-smr": lambda: SSMStack(H, 2, S5, glu=True, state_size=8, smr=True),
        "stack-s6": lambda: SSMStack(H, 2, S6, state_size=4),
        "gru_dt": lambda: GRUDelta(H, n_layers=2),
        "ode_rnn": lambda: ODERNN(H, n_layers=1),
    }
    return layers[kind]().double().eval()


KINDS = ["s5", "s5-smr", "s5-smr-gaps", "s6", "s6-smr", "s6-smr-gaps", "stack-s5-smr", "stack-s6", "gru_dt",
         "ode_rnn"]


def inputs(batch=4, length=16, seed=0, observed=0.7):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, length, H, generator=gen, dtype=torch.float64)
    dt = torch.rand(batch, length, generator=gen, dtype=torch.float64) * 2 + 0.1
    mask = torch.rand(batch, length, generator=gen) < observed
    mask[0, :6] = False  # a sequence whose first piece has no observation at all
    mask[1, 5:9] = False  # unobserved steps across a cut
    return u, dt, mask


def run_in_pieces(layer, u, dt, mask, cuts):
    state, outputs = None, []
    bounds = [0, *cuts, u.shape[1]]
    for start, stop in zip(bounds, bounds[1:]):
        y, state = layer.advance(u[:, start:stop], dt[:, start:stop], mask[:, start:stop], state)
        outputs.append(y)
    return torch.cat(outputs, 1), state


@pytest.mark.parametrize("kind", KINDS)
def test_from_the_start_advance_is_forward_bit_for_bit(kind):
    layer = make(kind)
    u, dt, mask = inputs()
    with torch.no_grad():
        y, _ = layer.advance(u, dt, mask)
        assert torch.equal(y, layer(u, dt, mask))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cuts", [(1,), (5, 7), (3, 4, 5, 6, 11, 15)])
def test_pieces_equal_one_run(kind, cuts):
    layer = make(kind)
    u, dt, mask = inputs()
    with torch.no_grad():
        whole, state_whole = layer.advance(u, dt, mask)
        pieces, state = run_in_pieces(layer, u, dt, mask, cuts)
    torch.testing.assert_close(pieces, whole, rtol=1e-10, atol=1e-10)
    assert state.keys() == state_whole.keys()
    for name in state:
        torch.testing.assert_close(state[name], state_whole[name], rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_state_is_the_start_and_padding_keeps_the_state(kind):
    layer = make(kind)
    u, dt, mask = inputs()
    with torch.no_grad():
        y, state = layer.advance(u, dt, mask)
        y0, state0 = layer.advance(u, dt, mask, layer.initial_state(u.shape[0]))
        torch.testing.assert_close(y0, y, rtol=1e-12, atol=1e-12)
        # Padding (gap 0, unobserved) after the last step leaves every state unchanged, exactly.
        pad = 3
        u_pad = torch.cat([u, torch.randn(u.shape[0], pad, H, dtype=u.dtype)], 1)
        dt_pad = torch.cat([dt, torch.zeros(dt.shape[0], pad, dtype=dt.dtype)], 1)
        mask_pad = torch.cat([mask, torch.zeros(mask.shape[0], pad, dtype=torch.bool)], 1)
        _, state_pad = layer.advance(u_pad, dt_pad, mask_pad)
    for name in state:
        assert torch.equal(state_pad[name], state[name]), name


def test_stack_state_is_flat_with_the_batch_first():
    layer = make("stack-s5-smr")
    state = layer.initial_state(5)
    assert all(isinstance(v, torch.Tensor) and v.shape[0] == 5 for v in state.values())
    assert {k.split(".")[0] for k in state} == {"0", "1"}


def test_observed_helpers_continue_across_a_cut():
    u, dt, mask = inputs(length=20)
    weight, bias = torch.randn(H, 4, dtype=torch.float64), torch.randn(H, dtype=torch.float64)
    whole_conv = observed_causal_conv(u, weight, bias, mask)
    whole_gaps = observed_gaps(dt, mask)
    cut = 9
    history = last_observed(u[:, :cut], mask[:, :cut], 4)
    elapsed = elapsed_after(dt[:, :cut], mask[:, :cut])
    torch.testing.assert_close(observed_causal_conv(u[:, cut:], weight, bias, mask[:, cut:], history),
                               whole_conv[:, cut:], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(observed_gaps(dt[:, cut:], mask[:, cut:], elapsed), whole_gaps[:, cut:],
                               rtol=1e-12, atol=1e-12)
    # The kept history is the last four observed inputs, oldest first.
    for i in range(u.shape[0]):
        seen = u[i, :cut][mask[i, :cut]]
        expected = torch.cat([torch.zeros(max(0, 4 - len(seen)), H, dtype=u.dtype), seen[-4:]])
        torch.testing.assert_close(history[i], expected)


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_of_unobserved_steps_change_no_observed_output(kind):
    # What a carried state rests on: only observed inputs enter it. S6 read its gate z at an
    # observed step from step "number of observations so far" (an unobserved step's input, when
    # one came before) until it compacted z first; this test failed for "s6" then.
    layer = make(kind)
    u, dt, mask = inputs(length=15)
    noisy = torch.where(mask.unsqueeze(-1), u, 50 * torch.randn_like(u))
    with torch.no_grad():
        observed = mask.unsqueeze(-1).expand(-1, -1, H)
        torch.testing.assert_close(layer(noisy, dt, mask)[observed], layer(u, dt, mask)[observed], rtol=0, atol=0)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_registered_backbone_streams(name):
    # A backbone added to the registry must carry a state for SMRForecaster.update.
    settings = {"state_size": 8, "smr": BACKBONES[name].takes_smr, "smr_kernel": 3, "smr_use_gaps": False, "step_min": 0.01, "step_max": 1.0,
                "blocks": 1}
    torch.manual_seed(0)
    backbone = BACKBONES[name].build(H, 2, 0.0, settings).double().eval()
    u, dt, mask = inputs()
    with torch.no_grad():
        whole, _ = backbone.advance(u, dt, mask)
        pieces, _ = run_in_pieces(backbone, u, dt, mask, (4, 9))
        torch.testing.assert_close(whole, backbone(u, dt, mask), rtol=0, atol=0)
    torch.testing.assert_close(pieces, whole, rtol=1e-10, atol=1e-10)
    assert all(v.shape[0] == u.shape[0] for v in backbone.initial_state(u.shape[0]).values())
