"""GRU-Delta-t and ODE-RNN baselines: causality, padding and batch invariance, unobserved
steps, agreement with step-by-step definitions, extreme gaps, learning, validation."""

import pytest
import torch
from torchdiffeq import odeint

from smr_ts.backbones import BACKBONES
from smr_ts.baselines import GRUDelta, ODERNN

H = 5


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: intra-op threads only add synchronisation (and stall badly
    when the cores are shared), so run each test single-threaded and restore after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(kind, **kwargs):
    torch.manual_seed(0)
    if kind == "gru":
        model = GRUDelta(H, 2, hidden_size=7, **kwargs)
    elif kind == "gru-identity":
        model = GRUDelta(H, 1, gap_transform="identity", **kwargs)
    elif kind == "ode":
        model = ODERNN(H, 1, hidden_size=6, **kwargs)
    elif kind == "ode-euler":
        model = ODERNN(H, 2, hidden_size=6, ode_units=9, method="euler", n_steps=3, **kwargs)
    else:
        raise AssertionError(kind)
    return model.double().eval()


def random_inputs(batch=3, length=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, H, generator=gen, dtype=torch.float64)
    dt = torch.rand(batch, length, generator=gen, dtype=torch.float64) * 3 + 0.1
    mask = torch.rand(batch, length, generator=gen) > 0.25
    return x, dt, mask


ALL_KINDS = ["gru", "gru-identity", "ode", "ode-euler"]
GRU_KINDS = ["gru", "gru-identity"]
ODE_KINDS = ["ode", "ode-euler"]


def test_registry():
    assert BACKBONES["gru_dt"].module is GRUDelta and BACKBONES["ode_rnn"].module is ODERNN
    assert not BACKBONES["gru_dt"].stacked and not BACKBONES["gru_dt"].takes_smr


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_shapes_and_default_gaps(kind):
    model = make_model(kind)
    x, _, mask = random_inputs()
    y = model(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y, model(x, torch.ones(3, 10, dtype=torch.float64)))
    # mask None is the same as every step observed (a different code path for GRU-Delta-t)
    assert torch.allclose(model(x, mask=torch.ones(3, 10, dtype=torch.bool)), y, atol=1e-12)
    assert model(x, mask=mask).shape == x.shape


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_causal(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs()
    y = model(x, dt, mask)
    for k in (0, 4, 8):
        x2, dt2, mask2 = x.clone(), dt.clone(), mask.clone()
        x2[:, k + 1 :] = torch.randn_like(x2[:, k + 1 :])
        dt2[:, k + 1 :] = torch.rand_like(dt2[:, k + 1 :]) * 5
        mask2[:, k + 1 :] = ~mask2[:, k + 1 :]
        y2 = model(x2, dt2, mask2)
        assert torch.allclose(y2[:, : k + 1], y[:, : k + 1], atol=1e-12)
        assert not torch.allclose(y2[:, k + 1 :], y[:, k + 1 :])  # the change is visible later


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_padding_invariance(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs(batch=1, length=9)
    mask[:, -1] = True
    y = model(x, dt, mask)
    for pad in (1, 6):
        x_pad = torch.cat([x, torch.randn(1, pad, H, dtype=x.dtype) * 100], 1)
        dt_pad = torch.cat([dt, torch.rand(1, pad, dtype=dt.dtype) * 100], 1)
        mask_pad = torch.cat([mask, torch.zeros(1, pad, dtype=torch.bool)], 1)
        assert torch.allclose(model(x_pad, dt_pad, mask_pad)[:, :9], y, atol=1e-12)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_batch_composition_invariance(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs(batch=5)
    mask[2] = False  # a sequence with no observation at all
    dt[3, 4:] = 40.0  # gaps above ODE-RNN's cap in one sequence only
    together = model(x, dt, mask)
    for i in range(5):
        alone = model(x[i : i + 1], dt[i : i + 1], mask[i : i + 1])
        assert torch.allclose(alone, together[i : i + 1], atol=1e-12)
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(model(x[perm], dt[perm], mask[perm]), together[perm], atol=1e-12)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_unobserved_inputs_are_ignored_even_nan(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs()
    y = model(x, dt, mask)
    x2 = x.clone().requires_grad_(False)
    x2[~mask] = float("nan")
    x2.requires_grad_()
    y2 = model(x2, dt, mask)
    assert torch.allclose(y2, y, atol=1e-12)
    (grad,) = torch.autograd.grad(y2.square().sum(), x2)
    assert torch.isfinite(grad).all() and (grad[~mask] == 0).all()


def _insert_unobserved_step(x, dt, mask, position, fraction):
    """Split the gap before ``position`` in two by inserting an unobserved step."""
    first = dt[:, position] * fraction
    x_new = torch.cat([x[:, :position], torch.randn_like(x[:, :1]) * 50, x[:, position:]], 1)
    dt_new = torch.cat([dt[:, :position], first[:, None], dt[:, position:]], 1)
    dt_new[:, position + 1] = dt[:, position] - first
    mask_new = torch.cat([mask[:, :position], torch.zeros_like(mask[:, :1]), mask[:, position:]], 1)
    return x_new, dt_new, mask_new


@pytest.mark.parametrize("kind", GRU_KINDS)
def test_gru_unobserved_step_insertion_changes_nothing(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs(length=12)
    y = model(x, dt, mask)
    for position, fraction in ((0, 0.3), (3, 0.5), (8, 0.01), (11, 0.9)):
        x2, dt2, mask2 = _insert_unobserved_step(x, dt, mask, position, fraction)
        y2 = model(x2, dt2, mask2)
        kept = torch.cat([y2[:, :position], y2[:, position + 1 :]], 1)
        assert torch.allclose(kept, y, atol=1e-12)
        # the inserted step reads out the state carried from the step before it
        before = y[:, position - 1] if position > 0 else model.out_proj.bias.expand(3, H)
        assert torch.allclose(y2[:, position], before, atol=1e-12)


def test_gru_gap_is_time_since_previous_observation():
    # Observed steps see the whole gap since the previous observation, not the last dt.
    model = make_model("gru")
    x, dt, mask = random_inputs(batch=1, length=4)
    mask[:] = torch.tensor([[True, False, False, True]])
    y = model(x, dt, mask)
    dt_merged = torch.stack([dt[:, 0], dt[:, 1:].sum(1)], 1)
    y_merged = model(x[:, [0, 3]], dt_merged, None)
    assert torch.allclose(y[:, [0, 3]], y_merged, atol=1e-12)


def _gru_reference(model, x, dt, mask):
    """GRU cells run step by step, skipping unobserved steps: the definition of GRUDelta."""
    cells = []
    for layer in range(model.n_layers):
        cell = torch.nn.GRUCell(model.gru.input_size if layer == 0 else model.hidden_size, model.hidden_size)
        cell = cell.double()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(model.gru, f"{name}_l{layer}"))
        cells.append(cell)
    batch, length, _ = x.shape
    states = [torch.zeros(batch, model.hidden_size, dtype=x.dtype) for _ in cells]
    since = torch.zeros(batch, dtype=x.dtype)
    outputs = []
    for k in range(length):
        since = since + dt[:, k]
        inp = torch.cat([x[:, k], model.gap_feature(since[:, None])[:, 0]], -1)
        for i, cell in enumerate(cells):
            new = cell(inp, states[i])
            states[i] = torch.where(mask[:, k : k + 1], new, states[i])
            inp = new
        since = torch.where(mask[:, k], torch.zeros_like(since), since)
        outputs.append(model.out_proj(states[-1]))
    return torch.stack(outputs, 1)


@pytest.mark.parametrize("kind", GRU_KINDS)
def test_gru_matches_cell_loop_reference_and_masked_steps_keep_the_state(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs(batch=4, length=11)
    mask[1, :3] = False  # starts unobserved: outputs of the zero state
    mask[3] = False
    y = model(x, dt, mask)
    assert torch.allclose(y, _gru_reference(model, x, dt, mask), atol=1e-12)
    bias = model.out_proj.bias
    assert torch.allclose(y[1, :3], bias.expand(3, H), atol=1e-12)
    assert torch.allclose(y[3], bias.expand(11, H), atol=1e-12)
    for b in range(4):
        for k in range(1, 11):
            if not mask[b, k]:
                assert torch.equal(y[b, k], y[b, k - 1])  # state carried unchanged


def _ode_rnn_reference(model, x, dt, mask):
    """One sequence at a time, ODE solved in real time over [0, min(gap, max_gap)]."""
    outputs = []
    for b in range(x.shape[0]):
        h = torch.zeros(1, model.hidden_size, dtype=x.dtype)
        seq = []
        for k in range(x.shape[1]):
            tau = min(dt[b, k].item(), model.max_gap)
            if tau > 0:
                grid = torch.linspace(0.0, tau, model.n_steps + 1, dtype=x.dtype)
                h = odeint(lambda t, z: model.ode_func(z), h, grid, method=model.method)[-1]
            if mask[b, k]:
                h = model.cell(x[b, k : k + 1], h)
            seq.append(model.out_proj(h)[0])
        outputs.append(torch.stack(seq))
    return torch.stack(outputs)


@pytest.mark.parametrize("kind", ODE_KINDS)
def test_ode_rnn_matches_per_sequence_real_time_solve(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs(batch=3, length=7)
    dt[0, 2] = 0.0
    dt[1, 3] = 25.0  # above max_gap: integrated as max_gap
    y = model(x, dt, mask)
    assert torch.allclose(y, _ode_rnn_reference(model, x, dt, mask), atol=1e-10)


@pytest.mark.parametrize("kind", ODE_KINDS)
def test_ode_rnn_unobserved_steps_evolve_the_state(kind):
    model = make_model(kind)
    x, dt, mask = random_inputs(batch=2, length=6)
    mask[:, 3] = False
    y = model(x, dt, mask)
    assert not torch.allclose(y[:, 3], y[:, 2])  # the ODE moved the state: a forecast
    # zero-length unobserved steps are exactly neutral
    x0, dt0, mask0 = _insert_unobserved_step(x, dt, mask, 4, 0.0)
    y0 = model(x0, dt0, mask0)
    assert torch.allclose(torch.cat([y0[:, :4], y0[:, 5:]], 1), y, atol=1e-12)
    assert torch.allclose(y0[:, 4], y[:, 3], atol=1e-12)


def test_ode_rnn_gap_splitting_up_to_solver_error():
    torch.manual_seed(0)
    x, dt, mask = random_inputs(length=8)
    errors = {}
    for n_steps in (2, 16):
        torch.manual_seed(0)
        model = ODERNN(H, 1, hidden_size=6, n_steps=n_steps).double()
        y = model(x, dt, mask)
        x2, dt2, mask2 = _insert_unobserved_step(x, dt, mask, 5, 0.4)
        y2 = model(x2, dt2, mask2)
        kept = torch.cat([y2[:, :5], y2[:, 6:]], 1)
        errors[n_steps] = (kept - y).abs().max().item()
        assert torch.allclose(kept[:, :5], y[:, :5], atol=1e-12)  # before the split: exact
    assert errors[16] < 1e-7
    assert errors[16] < errors[2] / 100  # RK4 error shrinks with the step


def test_ode_rnn_caps_long_gaps():
    model = make_model("ode")
    x, dt, mask = random_inputs(batch=2, length=5)
    dt_cap, dt_huge = dt.clone(), dt.clone()
    dt_cap[:, 2] = model.max_gap
    dt_huge[:, 2] = 1e6
    assert torch.equal(model(x, dt_cap, mask), model(x, dt_huge, mask))


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_gaps_stay_finite(kind, dtype):
    model = make_model(kind, dropout=0.1).to(dtype).train()
    gaps = torch.tensor([1e-6, 1e6, 1e-6, 1.0, 1e6, 1e6, 1e-6, 3e5], dtype=dtype)
    dt = gaps.repeat(2, 1)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 1::3] = False
    x = torch.randn(2, 8, H, dtype=dtype, requires_grad=True)
    for m in (None, mask):
        y = model(x, dt, m)
        assert torch.isfinite(y).all()
        grads = torch.autograd.grad(y.square().sum(), [x, *model.parameters()], allow_unused=True)
        assert all(torch.isfinite(g).all() for g in grads if g is not None)


@pytest.mark.parametrize("cls", [GRUDelta, ODERNN])
def test_learns_a_simple_target(cls):
    torch.manual_seed(0)
    model = cls(3, 1, hidden_size=16)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 8, 3, generator=gen)
    dt = torch.rand(8, 8, generator=gen) * 2 + 0.1
    mask = torch.rand(8, 8, generator=gen) > 0.2
    # target: squashed running mean of the observations so far (needs memory)
    counts = torch.cumsum(mask, 1).clamp(min=1).unsqueeze(-1)
    target = torch.tanh(torch.cumsum(x * mask.unsqueeze(-1), 1) / counts)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(40):
        loss = (model(x, dt, mask) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (GRUDelta, {"d_model": 0}),
        (GRUDelta, {"n_layers": 0}),
        (GRUDelta, {"n_layers": 1.5}),
        (GRUDelta, {"hidden_size": -3}),
        (GRUDelta, {"gap_transform": "log"}),
        (GRUDelta, {"dropout": 1.0}),
        (ODERNN, {"n_layers": True}),
        (ODERNN, {"ode_units": 0}),
        (ODERNN, {"method": "dopri5"}),
        (ODERNN, {"n_steps": 0}),
        (ODERNN, {"max_gap": 0.0}),
        (ODERNN, {"max_gap": float("inf")}),
        (ODERNN, {"dropout": -0.1}),
    ],
)
def test_bad_parameters_raise(cls, kwargs):
    args = {"d_model": H, "n_layers": 1, **kwargs}
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        cls(**args)


@pytest.mark.parametrize("cls", [GRUDelta, ODERNN])
def test_bad_inputs_raise(cls):
    model = cls(H, 1)
    x = torch.randn(2, 4, H)
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(2, 4, H + 1))
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(4, H))
    with pytest.raises(ValueError, match="dt must"):
        model(x, torch.ones(2, 5))
    with pytest.raises(ValueError, match="mask must"):
        model(x, None, torch.ones(2, 3, dtype=torch.bool))
