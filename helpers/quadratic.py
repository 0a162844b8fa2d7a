"""Gradient descent on quadratics, where everything about the learning rate is exact.

On ``L(θ) = ½ θᵀ A θ`` with ``A`` symmetric positive definite, one step of gradient
descent is ``θ ← θ − η A θ = (I − η A) θ``. Along the eigenvector of eigenvalue λ the
error is multiplied by ``1 − ηλ`` every step, so the iteration converges exactly when
``|1 − ηλ| < 1`` for every λ, i.e. ``0 < η < 2 / λ_max``.
"""
from __future__ import annotations

import numpy as np

from . import _validate

__all__ = ["as_hessian", "quadratic_gd", "quadratic_loss", "stability_limit", "best_constant_lr"]


def as_hessian(A) -> np.ndarray:
    """Return ``A`` as a symmetric positive-definite matrix (a vector means a diagonal).

    Raises ``ValueError`` (naming ``A``) when it is not square, symmetric and positive definite.

    >>> as_hessian([1.0, 10.0]).tolist()
    [[1.0, 0.0], [0.0, 10.0]]
    """
    A = np.asarray(A, dtype=float)
    if A.ndim == 1:
        A = np.diag(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"A must be a square matrix or a vector of eigenvalues, got shape {A.shape}")
    if not np.all(np.isfinite(A)) or not np.allclose(A, A.T):
        raise ValueError("A must be a finite symmetric matrix")
    if np.linalg.eigvalsh(A).min() <= 0:
        raise ValueError("A must be positive definite (all eigenvalues > 0)")
    return A


def quadratic_loss(A, theta) -> np.ndarray:
    """``½ θᵀ A θ`` for one point ``θ`` of shape (d,) or many of shape (n, d).

    ``A`` is a (d, d) matrix or a vector of eigenvalues (a diagonal Hessian).

    >>> quadratic_loss([2.0, 4.0], [[1.0, 1.0], [0.0, 1.0]]).tolist()
    [3.0, 2.0]
    """
    A = np.asarray(A, dtype=float)
    A = np.diag(A) if A.ndim == 1 else A
    theta = np.asarray(theta, dtype=float)
    return 0.5 * np.einsum("...i,ij,...j->...", theta, A, theta)


def quadratic_gd(A, lr: float, steps: int, start) -> np.ndarray:
    """Run ``steps`` steps of gradient descent on ``½ θᵀ A θ`` from ``start``.

    Parameters
    ----------
    A : array of shape (d, d) or (d,)
        The Hessian (symmetric positive definite) or its eigenvalues (a diagonal Hessian).
    lr : float > 0
        The learning rate η.
    steps : int >= 0
        Number of steps.
    start : array of shape (d,)
        The starting point θ_0.

    Returns
    -------
    ndarray of shape (steps + 1, d)
        ``θ_0, θ_1, ..., θ_steps``. Values overflow to ``inf`` when GD diverges far.

    Examples
    --------
    >>> quadratic_gd([2.0], lr=0.25, steps=3, start=[1.0]).ravel().tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    A = as_hessian(A)
    _validate.positive("lr", lr)
    _validate.integer("steps", steps, low=0)
    theta = np.asarray(start, dtype=float)
    if theta.shape != (A.shape[0],):
        raise ValueError(f"start must have shape ({A.shape[0]},), got {theta.shape}")
    path = np.empty((steps + 1, theta.size))
    path[0] = theta
    step = np.eye(theta.size) - lr * A
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            path[t + 1] = step @ path[t]
    return path


def stability_limit(A) -> float:
    """The largest stable learning rate ``2 / λ_max`` of GD on ``½ θᵀ A θ``.

    >>> stability_limit([1.0, 10.0])
    0.2
    """
    return float(2.0 / np.linalg.eigvalsh(as_hessian(A)).max())


def best_constant_lr(A) -> tuple[float, float]:
    """The fastest constant learning rate and its contraction factor per step.

    ``η* = 2 / (λ_min + λ_max)`` balances the slowest and the fastest direction; the error
    then shrinks by ``(κ − 1) / (κ + 1)`` per step, with ``κ = λ_max / λ_min``.

    >>> best_constant_lr([1.0, 9.0])
    (0.2, 0.8)
    """
    lam = np.linalg.eigvalsh(as_hessian(A))
    lo, hi = lam.min(), lam.max()
    return float(2 / (lo + hi)), float((hi - lo) / (hi + lo))
