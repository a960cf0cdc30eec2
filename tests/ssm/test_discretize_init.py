"""Discretisation over gaps and HiPPO-N initialisation."""

import math

import pytest
import torch

from smr_ts.ssm.discretize import bilinear, complex_exprel, exprel, zoh
from smr_ts.ssm.init import block_diagonal_hippo, hippo_n, inverse_softplus

F64 = torch.float64


def test_exprel_real_is_accurate_near_zero_and_saturates():
    z = torch.tensor([-1e8, -50.0, -1.0, -1e-3, -1e-7, 0.0, 1e-7, 1e-3, 1.0], dtype=F64)
    expected = torch.tensor([math.expm1(v) / v if v != 0 else 1.0 for v in z.tolist()], dtype=F64)
    assert torch.allclose(exprel(z), expected, rtol=1e-14, atol=0)


def _exprel_series(z, terms=12):
    out, term = torch.zeros_like(z), torch.ones_like(z)
    for n in range(1, terms + 1):
        out = out + term
        term = term * z / (n + 1)
    return out


def test_complex_exprel_matches_series_and_direct_formula():
    gen = torch.Generator().manual_seed(0)
    small = torch.complex(torch.randn(50, generator=gen, dtype=F64), torch.randn(50, generator=gen, dtype=F64)) * 1e-3
    big = torch.complex(-torch.rand(50, generator=gen, dtype=F64) * 20, torch.randn(50, generator=gen, dtype=F64) * 20)
    tiny = torch.complex(torch.randn(10, generator=gen, dtype=F64), torch.randn(10, generator=gen, dtype=F64)) * 1e-9
    for z, expected in ((small, _exprel_series(small)), (tiny, _exprel_series(tiny)), (big, (torch.exp(big) - 1) / big)):
        re, im = complex_exprel(z.real, z.imag)
        assert torch.allclose(torch.complex(re, im), expected, rtol=1e-12, atol=0)


def test_zoh_semigroup_at_the_discretisation_level():
    """a(d1 + d2) = a(d1) a(d2) and scale(d1 + d2) = a(d2) scale(d1) + scale(d2)."""
    lam = torch.complex(-torch.rand(7, dtype=F64) - 0.01, torch.randn(7, dtype=F64) * 5)
    d1, d2 = torch.rand(7, dtype=F64) * 3, torch.rand(7, dtype=F64) * 0.01

    def discretize(d):
        ar, ai, sr, si = zoh(lam.real, lam.imag, d)
        return torch.complex(ar, ai), torch.complex(sr, si)

    a12, s12 = discretize(d1 + d2)
    a1, s1 = discretize(d1)
    a2, s2 = discretize(d2)
    assert torch.allclose(a12, a1 * a2, atol=1e-14)
    assert torch.allclose(s12, a2 * s1 + s2, atol=1e-14)
    assert torch.allclose(a1, torch.exp(lam * d1), atol=1e-14)
    assert torch.allclose(s1, (torch.exp(lam * d1) - 1) / lam, atol=1e-13)


def test_bilinear_matches_its_formula_and_is_stable():
    lam = torch.complex(-torch.rand(9, dtype=F64) - 1e-3, torch.randn(9, dtype=F64) * 3)
    for d in (torch.full((9,), 1e-6, dtype=F64), torch.rand(9, dtype=F64), torch.full((9,), 1e6, dtype=F64)):
        ar, ai, sr, si = bilinear(lam.real, lam.imag, d)
        z = lam * d / 2
        assert torch.allclose(torch.complex(ar, ai), (1 + z) / (1 - z), atol=1e-12)
        assert torch.allclose(torch.complex(sr, si), d / (1 - z), atol=1e-12, rtol=1e-12)
        assert (torch.complex(ar, ai).abs() <= 1 + 1e-12).all()


def test_zoh_is_finite_for_extreme_gaps_in_float32():
    lam_re, lam_im = -torch.rand(16) - 1e-4, torch.randn(16) * 30
    for d in (1e-6, 1e6, 1e12):
        outs = zoh(lam_re, lam_im, torch.full((16,), d))
        assert all(torch.isfinite(o).all() for o in outs)


def test_hippo_n_is_legs_plus_rank_one_and_normal():
    n = 8
    s = hippo_n(n)
    # HiPPO-LegS entry by entry: -sqrt(2i+1) sqrt(2j+1) below the diagonal, -(i+1) on it, 0 above.
    legs = torch.zeros(n, n, dtype=F64)
    for i in range(n):
        for j in range(n):
            if i > j:
                legs[i, j] = -math.sqrt(2 * i + 1) * math.sqrt(2 * j + 1)
            elif i == j:
                legs[i, j] = -(i + 1)
    q = torch.sqrt(torch.arange(n, dtype=F64) + 0.5)
    assert torch.allclose(s, legs + torch.outer(q, q), atol=1e-12)
    assert torch.allclose(s @ s.T, s.T @ s, atol=1e-10)  # normal
    assert torch.allclose(torch.diagonal(s), torch.full((n,), -0.5, dtype=F64))


def test_block_diagonal_hippo_diagonalises_the_block_matrix():
    lam, v, v_inv = block_diagonal_hippo(12, blocks=3, conj_sym=False)
    assert lam.shape == (12,) and torch.allclose(lam.real, torch.full((12,), -0.5, dtype=F64))
    assert torch.allclose(v_inv @ v, torch.eye(12, dtype=v.dtype), atol=1e-10)  # unitary
    block = hippo_n(4)
    full = torch.block_diag(block, block, block).to(v.dtype)
    assert torch.allclose(v @ torch.diag(lam) @ v_inv, full, atol=1e-10)


def test_conjugate_symmetry_keeps_one_of_each_pair():
    lam_all, _, _ = block_diagonal_hippo(8, blocks=2, conj_sym=False)
    lam_half, v, _ = block_diagonal_hippo(8, blocks=2, conj_sym=True)
    assert lam_half.shape == (4,) and v.shape == (8, 4)
    for value in lam_half:
        assert torch.isclose(lam_all, value.conj()).any()


@pytest.mark.parametrize("args", [(10, 3, False), (6, 2, True), (0, 1, False)])
def test_block_diagonal_hippo_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        block_diagonal_hippo(*args)


def test_inverse_softplus_round_trip():
    x = torch.tensor([1e-4, 1e-3, 0.1, 1.0, 20.0], dtype=F64)
    assert torch.allclose(torch.nn.functional.softplus(inverse_softplus(x)), x, rtol=1e-12)
