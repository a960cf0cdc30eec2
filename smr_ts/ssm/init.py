"""Parameter initialisation for the state-space layers (S5's HiPPO-N, Mamba's step init)."""

from __future__ import annotations

import math

import torch

__all__ = ["hippo_n", "block_diagonal_hippo", "lecun_normal_", "log_uniform_", "inverse_softplus"]


def hippo_n(n: int) -> torch.Tensor:
    """HiPPO-N: the normal part of HiPPO-LegS (S5, Sec. 4.3), as a float64 (n, n) matrix.

    A = -(tril(p p^T) - diag(0..n-1)) with p_i = sqrt(1 + 2i) is HiPPO-LegS; adding
    q q^T with q_i = sqrt(i + 1/2) leaves skew-symmetric - I/2, which is normal and so
    diagonalisable by a unitary matrix.
    """
    idx = torch.arange(n, dtype=torch.float64)
    p = torch.sqrt(1 + 2 * idx)
    a = -(torch.tril(torch.outer(p, p)) - torch.diag(idx))
    q = torch.sqrt(idx + 0.5)
    return a + torch.outer(q, q)


def block_diagonal_hippo(state_size: int, blocks: int = 1, conj_sym: bool = True):
    """Eigenvalues and eigenvectors of a block-diagonal HiPPO-N matrix.

    Parameters
    ----------
    state_size : int
        Total state size P before conjugate symmetry; divisible by ``blocks`` (and by
        ``2 * blocks`` when ``conj_sym``).
    blocks : int
        Number J of HiPPO-N blocks of size P / J on the diagonal.
    conj_sym : bool
        Keep one eigenvalue of each conjugate pair (the output then takes 2 Re(.)).

    Returns
    -------
    lam : complex128 tensor (P',)
        Eigenvalues; Re = mean of diag(S) = -1/2, P' = P/2 when ``conj_sym``.
    v, v_inv : complex128 tensors (P, P') and (P', P)
        Block-diagonal eigenvectors and their conjugate transpose (V is unitary).
    """
    if state_size < 1 or blocks < 1 or state_size % blocks:
        raise ValueError(f"state_size={state_size} must be a positive multiple of blocks={blocks}")
    size = state_size // blocks
    if conj_sym and size % 2:
        raise ValueError(f"with conj_sym the block size state_size/blocks={size} must be even")
    s = hippo_n(size)
    diag = torch.diagonal(s)
    lam_re = diag.mean() * torch.ones(size, dtype=torch.float64)
    # S - diag(S) is skew-symmetric, so (S - diag(S)) * -1j is Hermitian: eigh gives Im(Lambda), V.
    lam_im, v = torch.linalg.eigh((s - torch.diag(diag)) * -1j)
    lam = torch.complex(lam_re, lam_im)
    if conj_sym:
        keep = size // 2
        lam, v = lam[:keep], v[:, :keep]
    lam = lam.repeat(blocks)
    v_full = torch.block_diag(*([v] * blocks))
    return lam, v_full, v_full.conj().T


def lecun_normal_(tensor: torch.Tensor, fan_in: int) -> torch.Tensor:
    """Fill in place from a truncated normal with variance 1/fan_in (LeCun normal)."""
    std = 1.0 / math.sqrt(fan_in)
    # JAX's lecun_normal truncates at 2 std and rescales so the variance is still 1/fan_in.
    std /= 0.87962566103423978
    with torch.no_grad():
        return torch.nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)


def log_uniform_(tensor: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Fill in place with log(U(log low, log high)) values, i.e. the log of a log-uniform draw."""
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got low={low}, high={high}")
    with torch.no_grad():
        return tensor.uniform_(math.log(low), math.log(high))


def inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    """y such that softplus(y) == x, for x > 0 (stable for small and large x)."""
    return x + torch.log(-torch.expm1(-x))
