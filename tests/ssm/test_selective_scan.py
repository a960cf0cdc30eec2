"""The chunked selective scan is held against its materialising reference: values and gradients,
every chunk size, masks (held input steps), extreme steps, streaming, and inside the S6 layer."""

import pytest
import torch

import smr_ts.ssm.selective_scan as selective_module
from smr_ts.ssm import S6
from smr_ts.ssm.selective_scan import selective_scan, selective_scan_reference

BATCH, LENGTH, CHANNELS, STATE = 2, 11, 3, 4
EPS32 = torch.finfo(torch.float32).eps
# Chunk sizes: one step, one that does not divide L, L itself, more than L, and the default.
CHUNKS = [1, 3, 4, LENGTH, LENGTH + 5, None]


def _problem(seed, held=False, h0=False, length=LENGTH, log_delta=(-7.0, 1.0), dtype=torch.float64):
    """Inputs of the scan, in ``dtype``: log-uniform steps over ``log_delta``, A in [-20, -1]."""
    gen = torch.Generator().manual_seed(seed)
    f64 = dict(generator=gen, dtype=torch.float64)
    u = torch.randn(BATCH, length, CHANNELS, **f64)
    delta = torch.exp(torch.empty(BATCH, length, CHANNELS, dtype=torch.float64).uniform_(*log_delta, generator=gen))
    A = -torch.exp(torch.empty(CHANNELS, STATE, dtype=torch.float64).uniform_(0, 3, generator=gen))
    B, C = torch.randn(BATCH, length, STATE, **f64), torch.randn(BATCH, length, STATE, **f64)
    # A held input step covers the step's own gap and those of the unobserved steps before it.
    delta_in = delta * torch.randint(1, 4, (BATCH, length, 1), generator=gen) if held else None
    state = torch.randn(BATCH, CHANNELS, STATE, **f64) if h0 else None
    grad_y = torch.randn(BATCH, length, CHANNELS, **f64)
    grad_h = torch.randn(BATCH, CHANNELS, STATE, **f64)
    cast = [None if t is None else t.to(dtype) for t in (u, delta, A, B, C, delta_in, state)]
    return cast, grad_y.to(dtype), grad_h.to(dtype)


def _outputs_and_grads(fn, inputs, grad_y, grad_h, discretization, **kwargs):
    """``[y, h_last, d/du, d/ddelta, d/dA, d/dB, d/dC, (d/ddelta_in), (d/dh0)]`` for the loss
    ``sum(y grad_y) + sum(h_last grad_h)``."""
    leaves = [None if t is None else t.clone().requires_grad_() for t in inputs]
    u, delta, A, B, C, delta_in, h0 = leaves
    y, h_last = fn(u, delta, A, B, C, delta_in, discretization, h0, return_last_state=True, **kwargs)
    wrt = [t for t in leaves if t is not None]
    grads = torch.autograd.grad((y * grad_y).sum() + (h_last * grad_h).sum(), wrt)
    return [y, h_last, *grads]


def _rel_err(actual, expected):
    return ((actual.double() - expected.double()).abs().max() / expected.double().abs().max().clamp(min=1e-300)).item()


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize("discretization", ["zoh", "euler"])
@pytest.mark.parametrize("held, h0", [(False, False), (True, True)])
def test_chunked_equals_reference_in_float64(chunk_size, discretization, held, h0):
    """Values and gradients to 1e-12 for every chunk size; fails if a chunk boundary drops the
    carried state or gradient, or if the last chunk's short tail is mishandled."""
    inputs, grad_y, grad_h = _problem(0, held=held, h0=h0)
    expected = _outputs_and_grads(selective_scan_reference, inputs, grad_y, grad_h, discretization)
    actual = _outputs_and_grads(selective_scan, inputs, grad_y, grad_h, discretization, chunk_size=chunk_size)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert _rel_err(got, want) < 1e-12


@pytest.mark.parametrize("discretization", ["zoh", "euler"])
def test_gradcheck_float64(discretization):
    inputs, _, _ = _problem(1, held=True, h0=True, length=5)
    leaves = tuple(t.clone().requires_grad_() for t in inputs)

    def scan(u, delta, A, B, C, delta_in, h0):
        return selective_scan(u, delta, A, B, C, delta_in, discretization, h0, return_last_state=True, chunk_size=2)

    assert torch.autograd.gradcheck(scan, leaves)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("discretization", ["zoh", "euler"])
@pytest.mark.parametrize("log_delta", [(-7.0, 1.0), (-14.0, -4.0)], ids=["mixed steps", "short steps"])
def test_float32_is_as_close_to_the_float64_oracle_as_the_reference(seed, discretization, log_delta):
    """The fast path in float32 errs from the float64 result no more than (a small multiple of) the
    float32 reference does, values and gradients alike. With short steps, fails if the ZOH input
    scale is computed as (exp(Delta A) - 1) / A (cancellation)."""
    inputs, grad_y, grad_h = _problem(seed, held=True, h0=True, length=40, log_delta=log_delta)
    oracle = _outputs_and_grads(selective_scan_reference, inputs, grad_y, grad_h, discretization)
    inputs32 = [None if t is None else t.float() for t in inputs]
    reference = _outputs_and_grads(selective_scan_reference, inputs32, grad_y.float(), grad_h.float(), discretization)
    fast = _outputs_and_grads(selective_scan, inputs32, grad_y.float(), grad_h.float(), discretization,
                              chunk_size=7)
    for got, ref, want in zip(fast, reference, oracle):
        assert got.dtype == torch.float32
        assert _rel_err(got, want) <= 10 * max(_rel_err(ref, want), EPS32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discretization", ["zoh", "euler"])
def test_steps_from_1e_minus_6_to_1e6_stay_finite_and_match(dtype, discretization):
    """Delta * dt over twelve decades: decays underflow to zero, ZOH input scales saturate at -1/A."""
    inputs, grad_y, grad_h = _problem(2, held=True, h0=True, log_delta=(-6 * 2.3026, 6 * 2.3026), dtype=dtype)
    actual = _outputs_and_grads(selective_scan, inputs, grad_y, grad_h, discretization, chunk_size=3)
    assert all(torch.isfinite(t).all() for t in actual)
    if dtype == torch.float64:
        expected = _outputs_and_grads(selective_scan_reference, inputs, grad_y, grad_h, discretization)
        for got, want in zip(actual, expected):
            assert _rel_err(got, want) < 1e-12


def test_long_steps_run_whatever_numpy_error_settings():
    """Decays that underflow to zero are expected: fails if a user's np.seterr(all="raise") reaches
    the scan's exponentials."""
    np = pytest.importorskip("numpy")
    inputs, grad_y, grad_h = _problem(10, held=True, h0=True, log_delta=(5.0, 13.0), dtype=torch.float32)
    with np.errstate(all="raise"):
        actual = _outputs_and_grads(selective_scan, inputs, grad_y, grad_h, "zoh", chunk_size=4)
    assert all(torch.isfinite(t).all() for t in actual)


def test_zero_decay_rate_is_the_limit_not_nan():
    """An entry of A that rounded to zero (A_log far below zero) holds the state and adds Delta B u."""
    inputs, grad_y, grad_h = _problem(3)
    u, delta, A, B, C, _, _ = inputs
    A = A.clone()
    A[0, 0] = 0.0
    got = selective_scan(u, delta, A, B, C, chunk_size=4)
    want = selective_scan_reference(u, delta, A, B, C)
    assert torch.isfinite(got).all()
    assert _rel_err(got, want) < 1e-12


def test_split_sequence_equals_one_run():
    """Streaming: the state after one piece, passed as h0 to the next, gives one run's outputs,
    and gradients flow back through the carried state."""
    inputs, grad_y, _ = _problem(4, held=True, h0=True, length=12)
    u, delta, A, B, C, delta_in, h0 = inputs
    whole = selective_scan(u, delta, A, B, C, delta_in, h0=h0, chunk_size=5)
    pieces, state = [], h0
    for lo, hi in ((0, 5), (5, 6), (6, 12)):
        y, state = selective_scan(u[:, lo:hi], delta[:, lo:hi], A, B[:, lo:hi], C[:, lo:hi], delta_in[:, lo:hi],
                                  h0=state, return_last_state=True, chunk_size=4)
        pieces.append(y)
    assert _rel_err(torch.cat(pieces, 1), whole) < 1e-12

    h0 = h0.clone().requires_grad_()
    once = torch.autograd.grad((selective_scan(u, delta, A, B, C, delta_in, h0=h0) * grad_y).sum(), h0)[0]
    first, mid = selective_scan(u[:, :5], delta[:, :5], A, B[:, :5], C[:, :5], delta_in[:, :5], h0=h0,
                                return_last_state=True)
    second = selective_scan(u[:, 5:], delta[:, 5:], A, B[:, 5:], C[:, 5:], delta_in[:, 5:], h0=mid)
    split = torch.autograd.grad((first * grad_y[:, :5]).sum() + (second * grad_y[:, 5:]).sum(), h0)[0]
    assert _rel_err(split, once) < 1e-12


def test_empty_sequence_returns_the_initial_state():
    inputs, _, _ = _problem(5, h0=True, length=0)
    u, delta, A, B, C, _, h0 = inputs
    y, h_last = selective_scan(u, delta, A, B, C, h0=h0, return_last_state=True)
    assert y.shape == (BATCH, 0, CHANNELS)
    assert torch.equal(h_last, h0) and h_last is not h0


def test_forward_keeps_only_chunk_boundary_states():
    """What the graph saves for the backward grows with L / chunk, not with L * state: fails if
    the forward keeps every step's (batch, D, N) state (as the reference does)."""
    inputs, _, _ = _problem(6, length=64)
    u, delta, A, B, C, _, _ = (None if t is None else t.clone().requires_grad_() for t in inputs)
    saved = {}

    def pack(t):
        saved[t.data_ptr()] = t.numel()  # a tensor saved twice is held once
        return t

    def saved_numel(fn, **kwargs):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(u, delta, A, B, C, **kwargs)
        return sum(saved.values())

    inputs_numel = sum(t.numel() for t in (u, delta, A, B, C))
    boundaries = (64 // 8) * BATCH * CHANNELS * STATE
    assert saved_numel(selective_scan, chunk_size=8) <= inputs_numel + boundaries
    assert saved_numel(selective_scan_reference) > BATCH * 64 * CHANNELS * STATE


@pytest.mark.parametrize("change, error, match", [
    (dict(input_discretization="bilinear"), ValueError, "input_discretization"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(A=torch.zeros(CHANNELS + 1, STATE, dtype=torch.float64)), ValueError, "A must have shape"),
    (dict(B=torch.zeros(BATCH, LENGTH, STATE + 1, dtype=torch.float64)), ValueError, "B must have shape"),
    (dict(u=torch.zeros(BATCH, LENGTH, CHANNELS)), TypeError, "float32 or all float64"),
    (dict(delta_in=torch.zeros(BATCH, LENGTH, CHANNELS, dtype=torch.float16)), TypeError, "float32 or all float64"),
])
def test_bad_inputs_raise(change, error, match):
    inputs, _, _ = _problem(7)
    kwargs = dict(zip(["u", "delta", "A", "B", "C"], inputs[:5]))
    kwargs.update(change)
    with pytest.raises(error, match=match):
        selective_scan(**kwargs)


# -- inside the S6 layer -------------------------------------------------------------------

H = 4


def _layer_inputs(dtype, length=23):
    gen = torch.Generator().manual_seed(8)
    u = torch.randn(BATCH, length, H, generator=gen, dtype=torch.float64).to(dtype)
    dt = torch.exp(torch.empty(BATCH, length, dtype=torch.float64).uniform_(-3, 2, generator=gen)).to(dtype)
    mask = torch.rand(BATCH, length, generator=gen) > 0.3
    mask[:, 0] = True
    return u, dt, mask


@pytest.fixture(params=["one step", "default", "whole sequence"])
def layer_chunks(request, monkeypatch):
    """The layer's chunk (chosen from the sizes) forced to one step, left alone, or the whole sequence."""
    budget = {"one step": 1, "default": selective_module._CHUNK_NUMEL, "whole sequence": 1 << 30}
    monkeypatch.setattr(selective_module, "_CHUNK_NUMEL", budget[request.param])
    return request.param


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("options", [{}, {"input_discretization": "euler"}, {"smr": True, "smr_use_gaps": True}])
def test_s6_chunked_equals_reference_layer(layer_chunks, dtype, options):
    """The whole layer with masks (unobserved steps read the propagated state): outputs and every
    parameter's gradient, float64 to 1e-12, float32 within float32 rounding of each other."""
    torch.manual_seed(0)
    fast = S6(H, state_size=4, **options).to(dtype)
    reference = S6(H, state_size=4, use_reference_scan=True, **options).to(dtype)
    reference.load_state_dict(fast.state_dict())
    u, dt, mask = _layer_inputs(dtype)
    u.requires_grad_()
    y_fast, y_ref = fast(u, dt, mask), reference(u, dt, mask)
    tol = 1e-12 if dtype == torch.float64 else 1e3 * EPS32
    assert _rel_err(y_fast, y_ref) < tol
    grad_out = torch.randn_like(y_ref)
    grads_fast = torch.autograd.grad((y_fast * grad_out).sum(), [u, *fast.parameters()])
    grads_ref = torch.autograd.grad((y_ref * grad_out).sum(), [u, *reference.parameters()])
    for got, want in zip(grads_fast, grads_ref):
        assert _rel_err(got, want) < tol


@pytest.mark.parametrize("options", [{}, {"smr": True}])
def test_s6_advance_in_pieces_equals_one_run(layer_chunks, options):
    """S6.advance (state in, state out) over pieces, one of them a single step, equals one run."""
    torch.manual_seed(1)
    layer = S6(H, state_size=4, **options).double()
    u, dt, mask = _layer_inputs(torch.float64)
    whole = layer(u, dt, mask)
    state, pieces = None, []
    for lo, hi in ((0, 9), (9, 10), (10, 23)):
        y, state = layer.advance(u[:, lo:hi], dt[:, lo:hi], mask[:, lo:hi], state)
        pieces.append(y)
    assert (torch.cat(pieces, 1) - whole).abs().max() < 1e-10


def test_s6_under_autocast_keeps_its_scan_in_float32():
    """CPU autocast hands the scan bfloat16 projections: the layer casts them up (fails if the scan
    refuses them), and the scan's own products stay float32 (fails if autocast reaches them: the
    float32 scan's result would move), forward and backward."""
    torch.manual_seed(2)
    layer = S6(H, state_size=4)
    u, dt, mask = _layer_inputs(torch.float32)
    expected = layer(u, dt, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(u, dt, mask)
        grads = torch.autograd.grad(y.float().square().sum(), list(layer.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)
    assert _rel_err(y, expected) < 0.05

    inputs, grad_y, grad_h = _problem(9, held=True, h0=True, dtype=torch.float32)
    plain = _outputs_and_grads(selective_scan, inputs, grad_y, grad_h, "zoh", chunk_size=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = _outputs_and_grads(selective_scan, inputs, grad_y, grad_h, "zoh", chunk_size=4)
    for got, want in zip(autocast, plain):
        assert torch.equal(got, want)
