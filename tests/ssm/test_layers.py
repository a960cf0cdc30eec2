"""Properties of the S5 / S6 layers and the stack: causality, padding and batch
invariance, ZOH gap-splitting, continuous-time queries, stability on extreme gaps."""

import pytest
import torch

from smr_ts.ssm import S5, S6, SSMStack
from smr_ts.ssm.linear_scan import scan_reference

H = 6


def make_layer(kind, **kwargs):
    torch.manual_seed(0)
    if kind == "s5":
        layer = S5(H, state_size=8, blocks=2, **kwargs)
    elif kind == "s5-bilinear":
        layer = S5(H, state_size=8, discretization="bilinear", **kwargs)
    elif kind == "s6":
        layer = S6(H, state_size=4, **kwargs)
    elif kind == "stack-s5":
        layer = SSMStack(H, 2, S5, glu=True, state_size=8, **kwargs)
    elif kind == "stack-s6":
        layer = SSMStack(H, 2, S6, state_size=4, **kwargs)
    else:
        raise AssertionError(kind)
    return layer.double().eval()


def random_inputs(batch=3, length=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, length, H, generator=gen, dtype=torch.float64)
    dt = torch.rand(batch, length, generator=gen, dtype=torch.float64) * 3 + 0.1
    mask = torch.rand(batch, length, generator=gen) > 0.25
    return u, dt, mask


ALL_KINDS = ["s5", "s5-bilinear", "s6", "stack-s5", "stack-s6"]
SMR_OPTIONS = [{}, {"smr": True}, {"smr": True, "smr_use_gaps": True}]


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("options", SMR_OPTIONS)
def test_causal(kind, options):
    layer = make_layer(kind, **options)
    u, dt, mask = random_inputs()
    y = layer(u, dt, mask)
    for k in (0, 4, 10):
        u2, dt2, mask2 = u.clone(), dt.clone(), mask.clone()
        u2[:, k + 1 :] = torch.randn_like(u2[:, k + 1 :])
        dt2[:, k + 1 :] = torch.rand_like(dt2[:, k + 1 :]) * 5
        mask2[:, k + 1 :] = ~mask2[:, k + 1 :]
        y2 = layer(u2, dt2, mask2)
        assert torch.allclose(y2[:, : k + 1], y[:, : k + 1], atol=1e-12)
        assert not torch.allclose(y2[:, k + 1 :], y[:, k + 1 :])  # the change is visible later


@pytest.mark.parametrize("kind", ALL_KINDS + ["s5-bidirectional"])
@pytest.mark.parametrize("options", SMR_OPTIONS[:2])
def test_padding_invariance(kind, options):
    if kind == "s5-bidirectional":
        torch.manual_seed(0)
        layer = S5(H, state_size=8, bidirectional=True, **options).double().eval()
    else:
        layer = make_layer(kind, **options)
    u, dt, mask = random_inputs(batch=1, length=9)
    mask[:, -1] = True  # the sequence ends with an observation, padding follows
    y = layer(u, dt, mask)
    for pad in (1, 7):
        u_pad = torch.cat([u, torch.randn(1, pad, H, dtype=u.dtype) * 100], 1)
        dt_pad = torch.cat([dt, torch.rand(1, pad, dtype=dt.dtype) * 100], 1)
        mask_pad = torch.cat([mask, torch.zeros(1, pad, dtype=torch.bool)], 1)
        assert torch.allclose(layer(u_pad, dt_pad, mask_pad)[:, :9], y, atol=1e-12)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_batch_composition_invariance(kind):
    layer = make_layer(kind, smr=True)
    u, dt, mask = random_inputs(batch=5)
    together = layer(u, dt, mask)
    for i in range(5):
        alone = layer(u[i : i + 1], dt[i : i + 1], mask[i : i + 1])
        assert torch.allclose(alone, together[i : i + 1], atol=1e-12)
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(layer(u[perm], dt[perm], mask[perm]), together[perm], atol=1e-12)


def _insert_unobserved_step(u, dt, mask, position, fraction):
    """Split the gap before ``position`` in two by inserting an unobserved step."""
    first = dt[:, position] * fraction
    u_new = torch.cat([u[:, :position], torch.randn_like(u[:, :1]) * 50, u[:, position:]], 1)
    dt_new = torch.cat([dt[:, :position], first[:, None], dt[:, position:]], 1)
    dt_new[:, position + 1] = dt[:, position] - first
    mask_new = torch.cat([mask[:, :position], torch.zeros_like(mask[:, :1]), mask[:, position:]], 1)
    return u_new, dt_new, mask_new


@pytest.mark.parametrize("kind", ["s5", "stack-s5"])
@pytest.mark.parametrize("options", SMR_OPTIONS)
def test_zoh_gap_splitting_unobserved_step_changes_nothing(kind, options):
    layer = make_layer(kind, **options)
    u, dt, mask = random_inputs(length=15)
    y = layer(u, dt, mask)
    for position, fraction in ((3, 0.5), (8, 0.01), (14, 0.9)):
        u2, dt2, mask2 = _insert_unobserved_step(u, dt, mask, position, fraction)
        y2 = layer(u2, dt2, mask2)
        kept = torch.cat([y2[:, :position], y2[:, position + 1 :]], 1)
        assert torch.allclose(kept, y, atol=1e-10), (kept - y).abs().max()


def test_bilinear_does_not_split_gaps_exactly():
    # The identity is a property of ZOH; the test above would catch a bilinear "pass".
    layer = make_layer("s5-bilinear")
    u, dt, mask = random_inputs(length=15)
    u2, dt2, mask2 = _insert_unobserved_step(u, dt, mask, 5, 0.5)
    y, y2 = layer(u, dt, mask), layer(u2, dt2, mask2)
    assert not torch.allclose(torch.cat([y2[:, :5], y2[:, 6:]], 1), y, atol=1e-8)


def test_s5_propagation_is_a_semigroup_and_matches_unobserved_queries():
    layer = make_layer("s5")
    u, dt, mask = random_inputs(length=10)
    mask[:, -1] = True
    y, state = layer(u, dt, mask, return_state=True)
    gap_a = torch.rand(3, 1, dtype=torch.float64) * 4
    gap_b = torch.rand(3, 1, dtype=torch.float64) * 4
    direct = layer.propagate(state, gap_a + gap_b)
    stepwise = layer.propagate(layer.propagate(state, gap_a)[:, 0], gap_b)
    assert torch.allclose(direct, stepwise, atol=1e-12)
    # Reading out the propagated state equals appending unobserved query steps with zero input.
    queries = torch.tensor([[0.5, 2.0, 7.5]], dtype=torch.float64).repeat(3, 1)
    forecast = layer.readout(layer.propagate(state, queries))
    gaps = torch.diff(queries, dim=1, prepend=torch.zeros(3, 1, dtype=torch.float64))
    y_q = layer(
        torch.cat([u, torch.zeros(3, 3, H, dtype=u.dtype)], 1),
        torch.cat([dt, gaps], 1),
        torch.cat([mask, torch.zeros(3, 3, dtype=torch.bool)], 1),
    )
    assert torch.allclose(y_q[:, :10], y, atol=1e-12)
    assert torch.allclose(y_q[:, 10:], forecast, atol=1e-12)


def test_s5_conjugate_symmetry_equals_full_system():
    """2 Re(C x) over kept eigenvalues == Re(C x) over the conjugate-completed system."""
    layer = make_layer("s5")
    u, dt, _ = random_inputs()
    lam = layer.eigenvalues()
    b_t = torch.view_as_complex(layer.b_tilde.contiguous())
    c_t = torch.view_as_complex(layer.c_tilde[0].contiguous())
    lam_full = torch.cat([lam, lam.conj()])
    b_full = torch.cat([b_t, b_t.conj()])
    c_full = torch.cat([c_t, c_t.conj()], dim=1)
    step_full = torch.exp(layer.log_step).repeat(2)
    delta = step_full * dt.unsqueeze(-1)
    a = torch.exp(lam_full * delta)
    b = ((a - 1) / lam_full) * torch.einsum("blh,ph->blp", u.to(b_full.dtype), b_full)
    x = scan_reference(a, b)
    y_full = torch.einsum("blp,hp->blh", x, c_full).real + layer.d * u
    assert torch.allclose(layer(u, dt), y_full, atol=1e-10)


def _observed_gaps_loop(dt, mask):
    out = torch.zeros_like(dt)
    for i in range(dt.shape[0]):
        since = 0.0
        for k in range(dt.shape[1]):
            since += dt[i, k].item()
            out[i, k] = since
            if mask[i, k]:
                since = 0.0
    return out


def test_s5_matches_textbook_zoh_with_reference_scan():
    """Decay over each step's gap; an observation's input held since the previous observation."""
    layer = make_layer("s5")
    u, dt, mask = random_inputs()
    lam = layer.eigenvalues()
    step = torch.exp(layer.log_step)
    a = torch.exp(lam * step * dt.unsqueeze(-1))
    a_hold = torch.exp(lam * step * _observed_gaps_loop(dt, mask).unsqueeze(-1))
    bu = torch.einsum("blh,ph->blp", u.to(lam.dtype), torch.view_as_complex(layer.b_tilde.contiguous()))
    x = scan_reference(a, (a_hold - 1) / lam * bu * mask.unsqueeze(-1))
    y = 2 * torch.einsum("blp,hp->blh", x, torch.view_as_complex(layer.c_tilde[0].contiguous())).real + layer.d * u
    assert torch.allclose(layer(u, dt, mask), y, atol=1e-10)


def test_s6_matches_loop_reference():
    """S6 against a per-step loop written from the equations in the module docstring."""
    layer = make_layer("s6")
    u, dt, _ = random_inputs(batch=2, length=9)
    xz = layer.in_proj(u)
    x, z = xz.chunk(2, dim=-1)
    kernel = layer.conv_weight.shape[1]
    conv = torch.stack(
        [
            sum(layer.conv_weight[:, -1 - j] * x[:, k - j] for j in range(kernel) if k - j >= 0) + layer.conv_bias
            for k in range(x.shape[1])
        ],
        1,
    )
    x = torch.nn.functional.silu(conv)
    a_cont = -torch.exp(layer.A_log)
    h = torch.zeros(2, layer.d_inner, layer.state_size, dtype=torch.float64)
    outputs = []
    for k in range(x.shape[1]):
        sel = layer.x_proj(x[:, k])
        d_raw, b_sel, c_sel = sel.split([layer.dt_rank, layer.state_size, layer.state_size], -1)
        delta = torch.nn.functional.softplus(layer.dt_proj(d_raw)) * dt[:, k : k + 1]
        da = delta.unsqueeze(-1) * a_cont
        h = torch.exp(da) * h + (torch.expm1(da) / a_cont) * b_sel.unsqueeze(1) * x[:, k].unsqueeze(-1)
        y = (h * c_sel.unsqueeze(1)).sum(-1) + layer.D * x[:, k]
        outputs.append(y * torch.nn.functional.silu(z[:, k]))
    expected = layer.out_proj(torch.stack(outputs, 1))
    assert torch.allclose(layer(u, dt), expected, atol=1e-10)


@pytest.mark.parametrize("kind", ["s5", "s6"])
def test_fast_and_reference_scans_agree_inside_layers(kind):
    fast = make_layer(kind, smr=True)
    ref = make_layer(kind, smr=True, use_reference_scan=True)
    ref.load_state_dict(fast.state_dict())
    u, dt, mask = random_inputs(length=40)
    u.requires_grad_()
    y_fast, y_ref = fast(u, dt, mask), ref(u, dt, mask)
    assert torch.allclose(y_fast, y_ref, atol=1e-10)
    g_fast = torch.autograd.grad(y_fast.sum(), [u, *fast.parameters()])
    g_ref = torch.autograd.grad(y_ref.sum(), [u, *ref.parameters()])
    for a, b in zip(g_fast, g_ref):
        assert torch.allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("kind", ["s5", "s5-bilinear", "s6", "stack-s5", "stack-s6"])
@pytest.mark.parametrize("options", [{}, {"smr": True, "smr_use_gaps": True}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_gaps_stay_finite(kind, options, dtype):
    layer = make_layer(kind, **options).to(dtype).train()
    gaps = torch.tensor([1e-6, 1e6, 1e-6, 1.0, 1e6, 1e6, 1e-6, 3e5], dtype=dtype)
    dt = gaps.repeat(2, 1)
    u = torch.randn(2, 8, H, dtype=dtype, requires_grad=True)
    y = layer(u, dt)
    assert torch.isfinite(y).all()
    grads = torch.autograd.grad(y.square().sum(), [u, *layer.parameters()], allow_unused=True)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)


def test_s6_zoh_input_saturates_but_euler_grows():
    zoh = make_layer("s6")
    euler = make_layer("s6", input_discretization="euler")
    euler.load_state_dict(zoh.state_dict())
    u = torch.randn(1, 2, H, dtype=torch.float64)
    out = {}
    for name, layer in (("zoh", zoh), ("euler", euler)):
        out[name] = [layer(u, torch.tensor([[1.0, gap]], dtype=torch.float64))[0, 1].abs().max().item() for gap in (1e5, 1e6)]
    assert out["zoh"][1] == pytest.approx(out["zoh"][0], rel=1e-3)  # saturated
    assert out["euler"][1] > 5 * out["euler"][0]  # grows with the gap


def test_s5_eigenvalues_stay_stable_for_any_parameter():
    layer = make_layer("s5")
    with torch.no_grad():
        layer.log_neg_lambda_re.fill_(-30.0)  # Re(Lambda) -> 0^-
    assert (layer.eigenvalues().real < 0).all()
    a, _ = layer._discretize(torch.full((1, 3), 1e6, dtype=torch.float64))
    assert (a.abs() <= 1).all()


@pytest.mark.parametrize("bad", [{"discretization": "euler"}, {"state_size": 7}, {"state_size": 8, "blocks": 3}])
def test_s5_bad_parameters_raise(bad):
    kwargs = {"state_size": 8, **bad}
    with pytest.raises(ValueError):
        S5(H, **kwargs)


def test_bidirectional_sees_the_future_and_return_state_is_refused():
    torch.manual_seed(0)
    layer = S5(H, state_size=8, bidirectional=True).double()
    u, dt, mask = random_inputs()
    y = layer(u, dt, mask)
    u2 = u.clone()
    u2[:, -1] += 1
    mask2 = mask.clone()
    mask2[:, -1] = True
    assert not torch.allclose(layer(u2, dt, mask2)[:, 0], layer(u, dt, mask2)[:, 0])
    assert y.shape == u.shape
    with pytest.raises(ValueError, match="unidirectional"):
        layer(u, dt, mask, return_state=True)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["stack-s5", "stack-s6"])
def test_layers_on_cuda_match_cpu(kind):
    layer = make_layer(kind, smr=True).float()
    u, dt, mask = random_inputs(length=70)
    u, dt = u.float(), dt.float()
    y_cpu = layer(u, dt, mask)
    g_cpu = torch.autograd.grad(y_cpu.square().sum(), list(layer.parameters()))
    layer_gpu = layer.cuda()
    y_gpu = layer_gpu(u.cuda(), dt.cuda(), mask.cuda())
    g_gpu = torch.autograd.grad(y_gpu.square().sum(), list(layer_gpu.parameters()))
    assert torch.allclose(y_gpu.cpu(), y_cpu, atol=1e-4, rtol=1e-4)
    for a, b in zip(g_gpu, g_cpu):
        assert torch.allclose(a.cpu(), b, atol=1e-3, rtol=1e-3)
