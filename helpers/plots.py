"""Plots used across the course: labelled axes, log scales where they belong.

Functions that draw one panel take an optional ``ax`` and return it; functions that
draw a whole picture return a :class:`matplotlib.figure.Figure` (shown when it is the
last expression of a cell, and usable inside :class:`helpers.widgets.FigureDemo`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import _validate
from .quadratic import as_hessian, quadratic_gd, quadratic_loss, stability_limit

__all__ = ["plot_quadratic_descent", "plot_loss_curves", "plot_schedules", "ema"]


def _axes(ax, figsize=(6, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def ema(values: Sequence[float], beta: float = 0.9) -> np.ndarray:
    """Bias-corrected exponential moving average (``beta`` in [0, 1); 0 = no smoothing)."""
    _validate.number("beta", beta, low=0, high=1, high_open=True)
    values = np.asarray(values, dtype=float)
    out, avg = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def plot_quadratic_descent(eigenvalues, lr: float, *, steps: int = 30, start=(-4.0, 2.0),
                           fig: Figure | None = None) -> Figure:
    """Gradient descent on ``½(λ_1 θ_1² + λ_2 θ_2²)``: the path on the contours and the loss.

    Parameters
    ----------
    eigenvalues : pair of float > 0
        Curvatures along θ_1 and θ_2.
    lr : float > 0
        Learning rate η.
    steps : int >= 1
        Number of gradient-descent steps.
    start : pair of float
        Starting point.
    fig : Figure, optional
        Figure to draw into (a new 10×3.8 in figure by default).
    """
    lam = np.diag(as_hessian(np.asarray(eigenvalues, dtype=float)))
    if lam.size != 2:
        raise ValueError(f"eigenvalues must hold two values, got {lam.size}")
    path = quadratic_gd(lam, lr, steps, start)
    loss = quadratic_loss(lam, path)
    fig = fig or Figure(figsize=(10, 3.8))
    ax_path, ax_loss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})

    r = 1.3 * np.abs(np.asarray(start, dtype=float)).max()
    g1, g2 = np.meshgrid(np.linspace(-r, r, 200), np.linspace(-r / 1.6, r / 1.6, 160))
    levels = quadratic_loss(lam, np.array(start, dtype=float)) * np.geomspace(1e-3, 1.5, 9)
    ax_path.contour(g1, g2, 0.5 * (lam[0] * g1**2 + lam[1] * g2**2), levels=levels,
                    colors="0.75", linewidths=0.8)
    shown = np.all(np.abs(path) < 50 * r, axis=1)  # stop drawing once it has flown off
    ax_path.plot(*path[shown].T, "o-", ms=3, lw=1.2, color="tab:blue")
    ax_path.plot(*path[0], "s", color="black", ms=6, label="start")
    ax_path.plot(0, 0, "*", color="tab:red", ms=12, label="minimum")
    ax_path.set(xlim=(-r, r), ylim=(-r / 1.6, r / 1.6), xlabel="θ₁", ylabel="θ₂",
                title=f"η = {lr:.3g}  (2/λ_max = {stability_limit(lam):.3g})")
    ax_path.legend(loc="upper right", fontsize=8)

    finite = np.isfinite(loss) & (loss > 0)
    ax_loss.semilogy(np.arange(loss.size)[finite], loss[finite], color="tab:blue")
    ax_loss.set(xlabel="step t", ylabel="loss L(θ_t)", title="loss (log scale)")
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_curves(curves: Mapping[str, Sequence[float]], *, ax=None, smooth: float = 0.0,
                     logy: bool = True, xlabel: str = "step", ylabel: str = "training loss",
                     title: str | None = None):
    """One line per entry of ``curves`` (label -> losses); non-finite values end a line.

    ``smooth`` in [0, 1) applies a bias-corrected moving average (the raw curve is drawn faintly).
    """
    ax = _axes(ax)
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=float)
        color = f"C{i}"
        steps = np.arange(values.size)
        ok = np.isfinite(values)
        if smooth:
            ax.plot(steps[ok], values[ok], color=color, alpha=0.2, lw=0.8)
            ax.plot(steps[ok], ema(values[ok], smooth), color=color, label=label)
        else:
            ax.plot(steps[ok], values[ok], color=color, label=label)
        if not ok.all():  # mark where the run blew up
            first = int(np.argmin(ok))
            ax.axvline(first, color=color, ls=":", lw=1)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_schedules(curves: Mapping[str, Sequence[float]], *, ax=None, logy: bool = False,
                   xlabel: str = "step (scheduler.step() calls)", ylabel: str = "learning rate",
                   title: str | None = None):
    """Learning-rate curves, one per entry of ``curves`` (label -> LRs at steps 0, 1, ...)."""
    ax = _axes(ax)
    for label, values in curves.items():
        ax.plot(np.arange(len(values)), values, label=label, lw=1.6)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    return ax
