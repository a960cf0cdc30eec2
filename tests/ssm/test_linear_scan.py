"""The fast scan is held against the sequential reference: values and gradients."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smr_ts.ssm.linear_scan as scan_module
from smr_ts.ssm.linear_scan import scan, scan_reference

DTYPES = [torch.float64, torch.complex128, torch.float32, torch.complex64]
# float64: agreement to ~1e-10; float32: ~1e-5 relative (the spec's tolerances).
TOL = {torch.float64: 1e-10, torch.complex128: 1e-10, torch.float32: 1e-5, torch.complex64: 1e-5}


def _random_problem(batch, length, state, dtype, generator, device="cpu"):
    real = torch.float64
    # |a| in [0, 1]: decays from total (gap -> infinity) to none (gap -> 0), as the layers produce.
    mag = torch.rand(batch, length, *state, generator=generator, dtype=real)
    if dtype.is_complex:
        phase = torch.rand(batch, length, *state, generator=generator, dtype=real) * 6.283
        a = torch.polar(mag, phase)
        b = torch.complex(*(torch.randn(2, batch, length, *state, generator=generator, dtype=real)))
    else:
        a = mag
        b = torch.randn(batch, length, *state, generator=generator, dtype=real)
    x0 = torch.randn(batch, *state, generator=generator, dtype=real).to(dtype)
    return a.to(dtype).to(device), b.to(dtype).to(device), x0.to(device)


def _rel_err(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max().clamp(min=1e-30)).item()


def _check_against_reference(a, b, x0, reverse, tol):
    a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
    x0 = None if x0 is None else x0.clone().requires_grad_()
    inputs = [t for t in (a, b, x0) if t is not None]
    expected = scan_reference(a, b, x0, reverse=reverse)
    actual = scan(a, b, x0, reverse=reverse)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert _rel_err(actual, expected) < tol
    grad_out = torch.randn_like(expected)
    for g_fast, g_ref in zip(torch.autograd.grad(actual, inputs, grad_out), torch.autograd.grad(expected, inputs, grad_out)):
        assert _rel_err(g_fast, g_ref) < tol


@pytest.fixture(params=["sequential", "chunked"])
def kernel_regime(request, monkeypatch):
    """Force each CPU kernel regime regardless of the size heuristic."""
    sequential = request.param == "sequential"
    monkeypatch.setattr(scan_module, "_sequential_is_faster", lambda b: sequential)
    return request.param


# The regime fixture only sets a constant, so sharing it across examples is intended.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.integers(1, 3),
    length=st.integers(1, 140),
    state=st.lists(st.integers(1, 5), min_size=1, max_size=2),
    dtype=st.sampled_from(DTYPES),
    reverse=st.booleans(),
    with_x0=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_fast_path_matches_reference(kernel_regime, batch, length, state, dtype, reverse, with_x0, seed):
    gen = torch.Generator().manual_seed(seed)
    a, b, x0 = _random_problem(batch, length, state, dtype, gen)
    _check_against_reference(a, b, x0 if with_x0 else None, reverse, TOL[dtype])


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(1)
    for dtype in (torch.float64, torch.complex128):
        a, b, x0 = _random_problem(2, 37, (3,), dtype, gen)
        for reverse in (False, True):
            assert torch.autograd.gradcheck(
                lambda a_, b_, x_: scan(a_, b_, x_, reverse=reverse),
                (a.requires_grad_(), b.requires_grad_(), x0.requires_grad_()),
            )


def test_zero_and_unit_transitions_are_exact():
    # a = 0 forgets everything (an infinitely long gap); a = 1 is a running sum.
    b = torch.randn(2, 50, 3, dtype=torch.float64)
    assert torch.equal(scan(torch.zeros_like(b), b), b)
    assert torch.allclose(scan(torch.ones_like(b), b), torch.cumsum(b, 1), atol=1e-12)


def test_broadcast_transition():
    a = torch.rand(2, 40, 1, dtype=torch.float64)
    b = torch.randn(2, 40, 4, dtype=torch.float64)
    assert torch.allclose(scan(a, b), scan_reference(a.expand_as(b), b), atol=1e-12)


def test_half_precision_is_computed_in_float32():
    a = torch.rand(2, 30, 4).to(torch.bfloat16)
    b = torch.randn(2, 30, 4).to(torch.bfloat16)
    out = scan(a, b)
    assert out.dtype == torch.float32
    assert torch.allclose(out, scan_reference(a.float(), b.float()), atol=1e-5)


def test_long_sequence_stays_finite_and_matches():
    a = torch.rand(1, 5000, 2, dtype=torch.float64)
    b = torch.randn(1, 5000, 2, dtype=torch.float64)
    assert _rel_err(scan(a, b), scan_reference(a, b)) < 1e-10


@pytest.mark.parametrize(
    "a, b, match",
    [
        (torch.ones(2, 3), "x", TypeError),
        (torch.ones(2, 3, 4), torch.ones(2, 5, 4), ValueError),
        (torch.ones(3), torch.ones(3), ValueError),
        (torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64), TypeError),
    ],
)
def test_bad_inputs_raise(a, b, match):
    with pytest.raises(match):
        scan(a, b)


def test_bad_initial_state_raises():
    with pytest.raises(ValueError, match="x0"):
        scan(torch.ones(2, 3, 4), torch.ones(2, 3, 4), x0=torch.ones(2, 5))


def test_triton_kernels_match_reference_in_interpreter():
    """Run the CUDA kernels through Triton's CPU interpreter when Triton is installed."""
    pytest.importorskip("triton")
    code = textwrap.dedent(
        """
        import torch
        from smr_ts.ssm import _triton_scan as ts
        from smr_ts.ssm.linear_scan import scan_reference
        torch.manual_seed(0)
        worst = 0.0
        for dtype in (torch.float64, torch.complex128):
            for length in (1, 5, 70, 131):
                for reverse in (False, True):
                    a = torch.rand(2, length, 3, dtype=torch.float64)
                    if dtype.is_complex:
                        a = torch.polar(a, torch.rand_like(a) * 6.283)
                    b = torch.randn(2, length, 3, dtype=dtype)
                    a.requires_grad_(); b.requires_grad_()
                    ref = scan_reference(a, b, reverse=reverse)
                    g = torch.randn_like(ref)
                    ga_ref, gb_ref = torch.autograd.grad(ref, (a, b), g)
                    x = ts.scan_forward(a.detach(), b.detach(), reverse)
                    ga, gb = ts.scan_backward(a.detach(), x, g, reverse)
                    for u, v in ((x, ref), (ga, ga_ref), (gb, gb_ref)):
                        worst = max(worst, ((u - v).abs().max() / v.abs().max().clamp(min=1e-30)).item())
        print(worst)
        """
    )
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0 and "InterpreterError" in proc.stderr:
        pytest.skip(f"this Triton's interpreter cannot run here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.strip().splitlines()[-1]) < 1e-10


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_cuda_fast_path_matches_reference(dtype, reverse):
    gen = torch.Generator().manual_seed(3)
    for length in (1, 17, 64, 300):
        a, b, x0 = _random_problem(3, length, (5, 4), dtype, gen)
        _check_against_reference(a.cuda(), b.cuda(), x0.cuda(), reverse, TOL[dtype])


@pytest.mark.gpu
def test_cuda_and_cpu_agree():
    a, b, _ = _random_problem(4, 200, (8,), torch.complex64, torch.Generator().manual_seed(4))
    assert _rel_err(scan(a.cuda(), b.cuda()).cpu(), scan(a, b)) < 1e-5


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 1, 20000), (1, 2, 1)])
def test_tiny_lengths_with_the_size_heuristic(shape):
    """Length 1 and 2, with slices on both sides of the sequential/chunked threshold."""
    a = torch.rand(*shape, dtype=torch.float64, requires_grad=True)
    b = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    _check_against_reference(a.detach(), b.detach(), None, False, 1e-10)
    scan(a, b).sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
