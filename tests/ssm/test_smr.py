"""State Memory Replay: the gate's formula, causality, masking rules, and its plug-in into S5/S6."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from smr_ts.ssm import S5, S6, SMRGate, observed_causal_conv, observed_gaps
from smr_ts.ssm.observed import causal_conv_reference


def _gate_by_formula(gate, u):
    """sigmoid(sum_i m_i u_{k-i} + c) * u_k with every step observed, written out."""
    tau = gate.kernel_size
    out = torch.empty_like(u)
    for k in range(u.shape[1]):
        logit = gate.bias.clone()
        for i in range(tau):
            if k - i >= 0:
                logit = logit + gate.weight[:, tau - 1 - i] * u[:, k - i]
        out[:, k] = torch.sigmoid(logit) * u[:, k]
    return out


@pytest.mark.parametrize("tau", [1, 2, 4, 7])
def test_gate_matches_the_formula(tau):
    gate = SMRGate(5, kernel_size=tau).double()
    u = torch.randn(3, 12, 5, dtype=torch.float64)
    assert torch.allclose(gate(u), _gate_by_formula(gate, u), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(length=st.integers(1, 20), kernel=st.integers(1, 5), seed=st.integers(0, 10**6), p=st.floats(0.0, 1.0))
def test_observed_conv_matches_loop_reference(length, kernel, seed, p):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, length, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(3, kernel, generator=gen, dtype=torch.float64)
    bias = torch.randn(3, generator=gen, dtype=torch.float64)
    mask = torch.rand(2, length, generator=gen) < p
    assert torch.allclose(observed_causal_conv(x, w, bias, mask), causal_conv_reference(x, w, bias, mask), atol=1e-12)
    assert torch.allclose(observed_causal_conv(x, w, None, None), causal_conv_reference(x, w, None, None), atol=1e-12)


def test_observed_gaps_accumulate_over_unobserved_steps():
    dt = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    mask = torch.tensor([[True, False, False, True, True]])
    assert torch.equal(observed_gaps(dt, mask), torch.tensor([[1.0, 2.0, 5.0, 9.0, 5.0]]))
    assert torch.equal(observed_gaps(dt, None), dt)


def test_gate_is_causal():
    gate = SMRGate(4, kernel_size=4, use_gaps=True).double()
    with torch.no_grad():
        gate.gap_weight.normal_()
    u = torch.randn(2, 15, 4, dtype=torch.float64)
    dt = torch.rand(2, 15, dtype=torch.float64) + 0.1
    g = gate.gate(u, dt)
    u2, dt2 = u.clone(), dt.clone()
    u2[:, 9:] += 3.0
    dt2[:, 9:] *= 4
    g2 = gate.gate(u2, dt2)
    assert torch.allclose(g[:, :9], g2[:, :9], atol=1e-14)
    assert not torch.allclose(g[:, 9:], g2[:, 9:])


@pytest.mark.parametrize("use_gaps", [False, True])
def test_gate_skips_unobserved_steps(use_gaps):
    gate = SMRGate(4, kernel_size=3, use_gaps=use_gaps).double()
    if use_gaps:
        with torch.no_grad():
            gate.gap_weight.normal_()
    u = torch.randn(1, 6, 4, dtype=torch.float64)
    dt = torch.rand(1, 6, dtype=torch.float64) + 0.5
    g = gate.gate(u, dt, torch.ones(1, 6, dtype=torch.bool))
    # Insert an unobserved step with a huge input between steps 2 and 3, splitting the gap.
    u2 = torch.cat([u[:, :3], torch.full((1, 1, 4), 1e3, dtype=u.dtype), u[:, 3:]], 1)
    dt2 = torch.cat([dt[:, :3], dt[:, 3:4] / 3, dt[:, 3:]], 1)
    dt2[:, 4] = dt[:, 3] * 2 / 3
    mask2 = torch.tensor([[True, True, True, False, True, True, True]])
    g2 = gate.gate(u2, dt2, mask2)
    assert torch.allclose(torch.cat([g2[:, :3], g2[:, 4:]], 1), g, atol=1e-12)


def test_time_aware_gate_starts_as_the_plain_gate():
    torch.manual_seed(1)
    plain = SMRGate(4, kernel_size=4)
    torch.manual_seed(1)
    timed = SMRGate(4, kernel_size=4, use_gaps=True)
    u, dt = torch.randn(2, 9, 4), torch.rand(2, 9) * 10
    assert torch.allclose(plain(u, dt), timed(u, dt))


@pytest.mark.parametrize("layer_cls, extra", [(S5, {"state_size": 8}), (S6, {"state_size": 4})])
def test_smr_disabled_equals_plain_layer(layer_cls, extra):
    """The gate is the only difference: saturated open (sigmoid = 1), SMR == no SMR."""
    torch.manual_seed(0)
    plain = layer_cls(6, **extra).double()
    torch.manual_seed(0)
    with_smr = layer_cls(6, smr=True, **extra).double()
    with torch.no_grad():
        with_smr.smr.weight.zero_()
        with_smr.smr.bias.fill_(50.0)  # sigmoid(50) == 1 in float64
    for name, p in plain.named_parameters():
        assert torch.equal(p, dict(with_smr.named_parameters())[name]), name
    u, dt = torch.randn(2, 10, 6, dtype=torch.float64), torch.rand(2, 10, dtype=torch.float64)
    mask = torch.rand(2, 10) > 0.2
    assert torch.allclose(with_smr(u, dt, mask), plain(u, dt, mask), atol=1e-12)
    with torch.no_grad():
        with_smr.smr.bias.fill_(0.0)
    assert not torch.allclose(with_smr(u, dt, mask), plain(u, dt, mask))


def test_s5_with_smr_is_s5_on_the_gated_input():
    torch.manual_seed(0)
    with_smr = S5(6, state_size=8, smr=True).double()
    plain = S5(6, state_size=8).double()
    plain.load_state_dict({k: v for k, v in with_smr.state_dict().items() if not k.startswith("smr.")})
    u, dt = torch.randn(2, 10, 6, dtype=torch.float64), torch.rand(2, 10, dtype=torch.float64)
    gated = _gate_by_formula(with_smr.smr, u)
    # D multiplies the SSM's own input, so it sees the gated input too.
    assert torch.allclose(with_smr(u, dt), plain(gated, dt), atol=1e-12)


def test_s6_with_smr_gates_the_scan_input_and_keeps_the_selection_ungated():
    """S6's twin of the S5 test, written out step by step: the gate scales the selective scan's input (and
    D's), while Delta, B and C are selected from the ungated input, as in plain S6 (SMR leaves A and Delta
    unchanged). Catches Delta, B and C computed from the gated input."""
    torch.manual_seed(0)
    layer = S6(6, state_size=4, smr=True).double()
    with torch.no_grad():
        layer.smr.bias.fill_(-1.0)  # a gate well away from 1, so that gated and ungated differ everywhere
    u, dt = torch.randn(2, 9, 6, dtype=torch.float64), torch.rand(2, 9, dtype=torch.float64) + 0.1
    x, z = layer.in_proj(u).chunk(2, dim=-1)
    kernel = layer.conv_weight.shape[1]
    x = torch.nn.functional.silu(torch.stack(
        [sum(layer.conv_weight[:, -1 - j] * x[:, k - j] for j in range(kernel) if k - j >= 0) + layer.conv_bias
         for k in range(x.shape[1])], 1))
    gated = _gate_by_formula(layer.smr, x)
    assert (gated - x).abs().min() > 1e-6
    a_cont = -torch.exp(layer.A_log)
    h = torch.zeros(2, layer.d_inner, layer.state_size, dtype=torch.float64)
    outputs = []
    for k in range(x.shape[1]):
        d_raw, b_sel, c_sel = layer.x_proj(x[:, k]).split([layer.dt_rank, layer.state_size, layer.state_size], -1)
        delta = torch.nn.functional.softplus(layer.dt_proj(d_raw)) * dt[:, k : k + 1]
        da = delta.unsqueeze(-1) * a_cont
        h = torch.exp(da) * h + (torch.expm1(da) / a_cont) * b_sel.unsqueeze(1) * gated[:, k].unsqueeze(-1)
        y = (h * c_sel.unsqueeze(1)).sum(-1) + layer.D * gated[:, k]
        outputs.append(y * torch.nn.functional.silu(z[:, k]))
    expected = layer.out_proj(torch.stack(outputs, 1))
    torch.testing.assert_close(layer(u, dt), expected, rtol=1e-10, atol=1e-10)


def test_bad_kernel_size_raises():
    with pytest.raises(ValueError, match="kernel_size"):
        SMRGate(3, kernel_size=0)


def test_s6_query_steps_read_the_history():
    """A forecast (masked) step of S6 depends on the observed history: its gate comes from the latest
    observed step, not from the step's own zeroed input (which made every query output 0)."""
    torch.manual_seed(0)
    layer = S6(4, state_size=4).double()
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]]).bool()
    u = torch.randn(1, 6, 4).double()
    u[:, 3:] = 0
    u2 = u.clone()
    u2[:, :3] = torch.randn(1, 3, 4).double()
    y, y2 = layer(u, None, mask), layer(u2, None, mask)
    assert (y - y2)[:, 3:].abs().max() > 1e-3
    assert y[:, 3:].abs().min() > 0
    # observed steps are unchanged by the fix: the same as running the observed prefix alone
    torch.testing.assert_close(y[:, :3], layer(u[:, :3], None, mask[:, :3]))


def test_time_aware_gate_is_plain_smr_when_every_gap_is_one_unit():
    # log(1) = 0: the gap weight adds nothing and gets no gradient, so on a regular grid of one time
    # unit the time-aware gate trains exactly as plain SMR (the pendulum at sample rate 1 shows it).
    torch.manual_seed(0)
    timed, plain = SMRGate(4, kernel_size=3, use_gaps=True).double(), SMRGate(4, kernel_size=3).double()
    plain.load_state_dict({k: v for k, v in timed.state_dict().items() if k != "gap_weight"})
    with torch.no_grad():
        timed.gap_weight.fill_(0.7)  # any weight: it multiplies log(1)
    u = torch.randn(2, 9, 4, dtype=torch.float64)
    ones = torch.ones(2, 9, dtype=torch.float64)
    out = timed(u, ones)
    assert torch.equal(out, plain(u, ones))
    out.square().sum().backward()
    assert torch.count_nonzero(timed.gap_weight.grad) == 0
    # one longer gap, and it matters
    dt = ones.clone()
    dt[:, 5] = 3.0
    assert not torch.allclose(timed(u, dt), plain(u, dt))
