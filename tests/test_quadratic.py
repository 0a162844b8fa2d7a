"""Gradient descent on quadratics: the exact facts notebook 01 is built on."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.quadratic import as_hessian, best_constant_lr, quadratic_gd, quadratic_loss, stability_limit


def _random_hessian(eigenvalues, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))
    return q @ np.diag(eigenvalues) @ q.T


def test_gd_matches_the_closed_form_along_each_eigenvector():
    eigenvalues = np.array([0.5, 2.0, 9.0])
    A = _random_hessian(eigenvalues)
    _, vectors = np.linalg.eigh(A)
    start = vectors @ np.array([1.0, -2.0, 0.5])
    lr, steps = 0.15, 12
    path = quadratic_gd(A, lr, steps, start)
    coords = path @ vectors  # coordinates in the eigenbasis
    expected = np.array([1.0, -2.0, 0.5]) * (1 - lr * eigenvalues) ** np.arange(steps + 1)[:, None]
    assert np.allclose(coords, expected)


@pytest.mark.parametrize("factor, converges", [(0.99, True), (1.01, False)])
def test_stability_limit_separates_convergence_from_divergence(factor, converges):
    A = _random_hessian([1.0, 4.0, 25.0], seed=3)
    path = quadratic_gd(A, factor * stability_limit(A), 3000, np.ones(3))
    loss = quadratic_loss(A, path)
    assert (loss[-1] < loss[0]) == converges


def test_best_constant_lr_minimises_the_contraction_factor():
    eigenvalues = [1.0, 3.0, 10.0]
    best, rate = best_constant_lr(eigenvalues)
    lrs = np.linspace(0.01, 0.199, 500)
    rates = np.max(np.abs(1 - np.outer(lrs, eigenvalues)), axis=1)
    assert rate == pytest.approx(rates.min(), abs=1e-3)
    assert best == pytest.approx(lrs[rates.argmin()], abs=1e-3)
    assert rate == pytest.approx((10 - 1) / (10 + 1))


def test_quadratic_loss_accepts_points_and_batches():
    A = np.diag([2.0, 4.0])
    assert quadratic_loss(A, [1.0, 1.0]) == pytest.approx(3.0)
    assert quadratic_loss([2.0, 4.0], [[1.0, 0.0], [0.0, 1.0]]).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("call, name", [
    (lambda: quadratic_gd([1.0], -0.1, 3, [1.0]), "lr"),
    (lambda: quadratic_gd([1.0], 0.1, -1, [1.0]), "steps"),
    (lambda: quadratic_gd([1.0, 2.0], 0.1, 3, [1.0]), "start"),
    (lambda: as_hessian([[1.0, 2.0], [0.0, 1.0]]), "symmetric"),
    (lambda: as_hessian([1.0, -1.0]), "positive definite"),
    (lambda: stability_limit(np.ones((2, 3))), "square"),
])
def test_bad_input_raises_value_error_naming_the_problem(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_divergence_overflows_quietly_to_inf():
    with np.errstate(all="raise"):  # no floating-point warning escapes
        path = quadratic_gd([100.0], 1.0, 400, [1.0])
    assert not np.isfinite(path[-1]).all()


def test_plot_helpers_name_bad_parameters():
    from helpers.plots import plot_1d_descent, plot_loss_curves, plot_quadratic_paths

    with pytest.raises(ValueError, match="smooth"):
        plot_loss_curves({"a": [1.0, 0.5]}, smooth=1.0)
    with pytest.raises(ValueError, match="lam"):
        plot_1d_descent(0.0, [0.1])
    with pytest.raises(ValueError, match="lrs"):
        plot_1d_descent(1.0, [])
    with pytest.raises(ValueError, match="lr"):
        plot_quadratic_paths([1.0, 10.0], {"bad": -0.1})
