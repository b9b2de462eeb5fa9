"""Least squares with unpenalised sign-free columns and ridge-penalised non-negative columns.

Problem solved::

    minimise ||y - Z g - M b||^2 + sum_i w_i^2 (L_i b - l_i)^2 + lam * ||b||^2   over g (free), b >= 0

``Z`` holds the unpenalised columns (intercept, trend, seasonality, controls), ``M`` the media columns and
the optional rows ``(L, l, w)`` are extra pseudo-observations on the media coefficients (lift tests).
For any ``b`` the optimal ``g`` is the least-squares projection of ``y - M b`` on ``Z``, so by
Frisch–Waugh–Lovell the problem in ``b`` alone is a non-negative least squares on the residualised data
stacked with the pseudo-observation rows and ``sqrt(lam) * I``; ``g`` follows by one ``lstsq``.
This is exact, unlike a coordinate-descent solver with ``positive=True`` stopping at its tolerance.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls


def orthonormal_basis(Z: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of ``Z`` (rank-revealing; drops dependent columns)."""
    if Z.shape[1] == 0:
        return np.zeros((Z.shape[0], 0))
    U, s, _ = np.linalg.svd(Z, full_matrices=False)
    tol = s.max() * max(Z.shape) * np.finfo(float).eps if s.size else 0.0
    return U[:, s > tol]


def solve_partialled_nnls(
    Z: np.ndarray,
    M: np.ndarray,
    y: np.ndarray,
    lam: float = 0.0,
    L: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    basis: np.ndarray | None = None,
    pinv: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve the problem in the module docstring.

    Args:
        Z: (n, q) unpenalised columns.
        M: (n, k) non-negative, penalised columns.
        y: (n,) outcome.
        lam: ridge penalty on ``b``.
        L: (m, k) pseudo-observation rows on ``b`` (optional).
        targets: (m,) their targets.
        weights: (m,) their weights ``w_i`` (multiplying the residual, i.e. ``sigma / se``).
        basis: precomputed :func:`orthonormal_basis` of ``Z`` (speed-up when solving repeatedly).
        pinv: precomputed ``numpy.linalg.pinv(Z)`` (speed-up when solving repeatedly).

    Returns:
        ``(g, b)``: unpenalised and non-negative coefficients.
    """
    Q = orthonormal_basis(Z) if basis is None else basis
    Mt = M - Q @ (Q.T @ M)
    yt = y - Q @ (Q.T @ y)
    k = M.shape[1]
    blocks_a, blocks_b = [Mt], [yt]
    if L is not None and len(L):
        w = np.ones(len(L)) if weights is None else np.asarray(weights, dtype=float)
        blocks_a.append(w[:, None] * np.asarray(L, dtype=float))
        blocks_b.append(w * np.asarray(targets, dtype=float))
    if lam > 0:
        blocks_a.append(np.sqrt(lam) * np.eye(k))
        blocks_b.append(np.zeros(k))
    A, rhs = np.vstack(blocks_a), np.concatenate(blocks_b)
    if k:
        b, _ = nnls(A, rhs, maxiter=50 * max(k, 10))
    else:
        b = np.zeros(0)
    if not Z.shape[1]:
        g = np.zeros(0)
    elif pinv is not None:
        g = pinv @ (y - M @ b)
    else:
        g = np.linalg.lstsq(Z, y - M @ b, rcond=None)[0]
    return g, b


def solve_direct_nnls(Z: np.ndarray, M: np.ndarray, y: np.ndarray, lam: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Reference solver: one NNLS over ``[Z, -Z, M]`` (free columns split into ± parts), ridge rows on ``M`` only.

    Slower and numerically weaker than :func:`solve_partialled_nnls`; used to verify it.
    """
    q, k = Z.shape[1], M.shape[1]
    A = np.hstack([Z, -Z, M])
    rhs = y
    if lam > 0:
        pen = np.hstack([np.zeros((k, 2 * q)), np.sqrt(lam) * np.eye(k)])
        A, rhs = np.vstack([A, pen]), np.concatenate([y, np.zeros(k)])
    x, _ = nnls(A, rhs, maxiter=200 * (2 * q + k))
    return x[:q] - x[q : 2 * q], x[2 * q :]


__all__ = ["orthonormal_basis", "solve_direct_nnls", "solve_partialled_nnls"]
