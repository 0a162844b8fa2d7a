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

__all__ = ["plot_1d_descent", "plot_quadratic_paths", "update_quadratic_path", "plot_loss_curves",
           "plot_schedules", "ema", "powers_of_ten",
           "SCHEDULE_COLORS", "RULE_COLORS", "color_for", "legend_outside"]

# One colour per schedule and per range-test suggestion rule, across the whole course,
# so that "cosine" is the same red in notebook 03, 04 and 05. Keys are normalised names
# (see color_for): lower case, no spaces, dashes, underscores or a trailing "lr".
SCHEDULE_COLORS: dict[str, str] = {
    "constant": "#555555",
    "step": "#1f77b4",
    "multistep": "#17becf",
    "exponential": "#9467bd",
    "linear": "#2ca02c",
    "polynomial": "#bcbd22",
    "cosine": "#d62728",
    "warmrestarts": "#e377c2",
    "plateau": "#8c564b",
    "triangular": "#ff7f0e",
    "triangular2": "#c45a00",
    "exprange": "#7f7f00",
    "onecycle": "#000080",
    "linearwarmup": "#66c2a5",
    "exponentialwarmup": "#b39ddb",
    "warmupcosine": "#fb8072",
    "inversesqrt": "#8dd3c7",
    "wsd": "#e6ab02",
    "schedulefree": "#1b9e77",
}
RULE_COLORS: dict[str, str] = {"valley": "#e66100", "steepest": "#5d3a9b", "minimum": "#1a9850"}
"""Colours of the LR range test's suggestion rules (``"minimum"`` is minimum/10)."""

# Longer names first: "multistep" contains "step", "warmupcosine" contains "cosine".
_ALIASES = [
    ("cosineannealingwarmrestarts", "warmrestarts"), ("sgdr", "warmrestarts"),
    ("warmrestart", "warmrestarts"), ("reducelronplateau", "plateau"),
    ("warmupstabledecay", "wsd"), ("noam", "inversesqrt"), ("cyclic", "triangular"),
    ("cosineannealing", "cosine"),
]


def _normalise(name: str) -> str:
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    return key[:-2] if key.endswith("lr") and key[:-2] else key


def color_for(name: str) -> str | None:
    """The course's colour for a schedule or suggestion rule named in ``name``, else None.

    Matching ignores case, spaces, dashes, underscores and a trailing ``LR``, and finds
    the longest known name at the start of the label, so PyTorch's class names, the
    functions of :mod:`helpers.schedules` and labels such as ``"cosine (T=100)"`` agree.

    >>> color_for("CosineAnnealingLR") == color_for("cosine_annealing_lr") == color_for("cosine, 5 seeds")
    True
    >>> color_for("MultiStepLR") != color_for("StepLR")
    True
    >>> color_for("valley") == RULE_COLORS["valley"], color_for("lr = 0.1")
    (True, None)
    """
    if not isinstance(name, str):
        return None
    key = _normalise(name.split("(")[0].split(":")[0].split(",")[0])
    for alias, target in _ALIASES:
        if key.startswith(alias):
            key = target + key[len(alias):]
    known = {**SCHEDULE_COLORS, **RULE_COLORS}
    matches = [k for k in known if key.startswith(k)]
    return known[max(matches, key=len)] if matches else None


def _color(label: str, i: int) -> str:
    return color_for(label) or f"C{i}"


def legend_outside(ax, **kwargs):
    """A legend to the right of the axes, where it can never cover data."""
    kwargs = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0,
              "fontsize": 8, **kwargs}
    return ax.legend(**kwargs)


def _axes(ax, figsize=(6, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _finish(ax, logy: bool, xlabel: str, ylabel: str, title: str | None) -> None:
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)


def ema(values: Sequence[float], beta: float = 0.9) -> np.ndarray:
    """Bias-corrected exponential moving average (``beta`` in [0, 1); 0 = no smoothing).

    Dividing by ``1 - beta**(i + 1)`` removes the pull towards the zero the average starts from:

    >>> bool(np.allclose(ema([2.0, 2.0, 2.0], beta=0.9), 2.0))
    True
    """
    _validate.number("beta", beta, low=0, high=1, high_open=True)
    values = np.asarray(values, dtype=float)
    out, avg = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def plot_1d_descent(lam: float, lrs: Sequence[float], *, steps: int = 12, start: float = 1.0) -> Figure:
    """Gradient descent on ``L(θ) = ½ λ θ²`` for several learning rates, one panel each.

    Each panel draws the parabola and the iterates θ_0, θ_1, ... joined in order, so
    creeping, oscillating and diverging runs look different at a glance.

    Parameters
    ----------
    lam : float > 0
        The curvature λ (the stability limit is 2/λ).
    lrs : sequence of float > 0
        Learning rates, one panel each.
    steps : int >= 1
        Steps drawn.
    start : float
        θ_0 (non-zero).

    Examples
    --------
    >>> fig = plot_1d_descent(1.0, [0.5, 2.1], steps=5)
    >>> [ax.get_title() for ax in fig.axes]
    ['η = 0.5:  θ ← +0.5·θ', 'η = 2.1:  θ ← -1.1·θ']
    """
    lam = _validate.positive("lam", lam)
    if not lrs:
        raise ValueError("lrs must hold at least one learning rate, got none")
    fig = Figure(figsize=(3.1 * len(lrs), 2.9))
    axes = np.atleast_1d(fig.subplots(1, len(lrs), sharey=True))
    r = 1.6 * abs(start)
    grid = np.linspace(-r, r, 200)
    for ax, lr in zip(axes, lrs):
        path = quadratic_gd([lam], lr, steps, [start]).ravel()
        ax.plot(grid, 0.5 * lam * grid**2, color="0.7")
        ax.plot(path, 0.5 * lam * path**2, "o-", ms=3.5, lw=1, color="tab:blue")
        ax.plot(path[0], 0.5 * lam * path[0] ** 2, "s", color="black", ms=5)
        factor = 1 - lr * lam
        ax.set(title=f"η = {lr:g}:  θ ← {factor:+.2g}·θ", xlabel="θ", xlim=(-r, r),
               ylim=(-0.05 * lam * r**2, 0.6 * lam * r**2))
    axes[0].set_ylabel("L(θ) = ½λθ²")
    fig.tight_layout()
    return fig


def plot_quadratic_paths(eigenvalues, lrs: Mapping[str, float] | float, *, steps: int = 30,
                         start=(-4.0, 2.0), layout: bool = True) -> Figure:
    """Gradient descent on ``½(λ_1 θ_1² + λ_2 θ_2²)``: paths on the contours, and the losses.

    Parameters
    ----------
    eigenvalues : pair of float > 0
        Curvatures along θ_1 and θ_2.
    lrs : float > 0, or mapping of label to float > 0
        One learning rate, or several (one contour panel each, one loss panel for all).
    steps : int >= 1
        Number of gradient-descent steps.
    start : pair of float
        Starting point.
    layout : bool
        Apply matplotlib's tight layout (``False`` leaves it to the caller, e.g. a demo
        that reuses one layout for every redraw).

    Examples
    --------
    >>> fig = plot_quadratic_paths([1.0, 10.0], {"slow": 0.02, "fast": 0.18})
    >>> len(fig.axes)  # one panel per learning rate, plus the losses
    3
    """
    lam = np.diag(as_hessian(np.asarray(eigenvalues, dtype=float)))
    if lam.size != 2:
        raise ValueError(f"eigenvalues must hold two values, got {lam.size}")
    if not isinstance(lrs, Mapping):
        lrs = {f"η = {lrs:.3g}": lrs}
    n = len(lrs)
    fig = Figure(figsize=(4.4 * n + 4.2, 3.6))
    axes = fig.subplots(1, n + 1, gridspec_kw={"width_ratios": [1.25] * n + [1]})
    r = _view_radius(start)
    g1, g2 = np.meshgrid(np.linspace(-r, r, 200), np.linspace(-r / 1.6, r / 1.6, 160))
    levels = quadratic_loss(lam, np.array(start, dtype=float)) * np.geomspace(1e-3, 1.5, 9)
    for i, (ax, (label, lr)) in enumerate(zip(axes, lrs.items())):
        path, (t, loss) = _quadratic_run(lam, lr, steps, start)
        ax.contour(g1, g2, 0.5 * (lam[0] * g1**2 + lam[1] * g2**2), levels=levels,
                   colors="0.75", linewidths=0.8)
        ax.plot(*path.T, "o-", ms=3, lw=1.2, color=f"C{i}")
        ax.plot(*start, "s", color="black", ms=6)
        ax.plot(0, 0, "*", color="tab:red", ms=12)
        ax.set(xlim=(-r, r), ylim=(-r / 1.6, r / 1.6), xlabel="θ₁", ylabel="θ₂", title=label)
        axes[-1].semilogy(t, loss, color=f"C{i}", label=label)
    axes[-1].axhline(quadratic_loss(lam, np.array(start, dtype=float)), color="0.6", ls=":", lw=1)
    axes[-1].set(xlabel="step t", ylabel="loss L(θ_t)",
                 title=f"loss (log scale); 2/λ_max = {stability_limit(lam):.3g}")
    axes[-1].grid(alpha=0.3)
    powers_of_ten(axes[-1].yaxis)
    for ax in axes[:-1]:  # a path drawn on contours is only perpendicular to them at equal scales
        ax.set_aspect("equal", adjustable="box")
    if n > 1:
        legend_outside(axes[-1])
    if layout:
        fig.tight_layout()
    return fig


def _view_radius(start) -> float:
    return 1.3 * np.abs(np.asarray(start, dtype=float)).max()


def _quadratic_run(lam, lr, steps, start):
    """One run as drawn: the path until it flies off the view, and the (step, loss) points."""
    path = quadratic_gd(lam, lr, steps, start)
    shown = np.all(np.abs(path) < 50 * _view_radius(start), axis=1)
    loss = quadratic_loss(lam, path)
    ok = np.isfinite(loss) & (loss > 0)
    return path[shown], (np.arange(loss.size)[ok], loss[ok])


def update_quadratic_path(fig: Figure, eigenvalues, lr: float, *, steps: int = 30, start=(-4.0, 2.0)) -> Figure:
    """Redraw a one-LR figure of :func:`plot_quadratic_paths` for another ``lr``, in place.

    Much cheaper than a new figure: the axes, contours and labels stay (matplotlib lays
    their text out once). ``eigenvalues``, ``steps`` and ``start`` must be the figure's.

    >>> fig = plot_quadratic_paths([1.0, 10.0], 0.1)
    >>> update_quadratic_path(fig, [1.0, 10.0], 0.21).axes[0].get_title()
    'η = 0.21'
    """
    lam = np.diag(as_hessian(np.asarray(eigenvalues, dtype=float)))
    if len(fig.axes) != 2:
        raise ValueError(f"fig must be a one-LR figure of plot_quadratic_paths (2 axes), got {len(fig.axes)} axes")
    ax, ax_loss = fig.axes
    path, (t, loss) = _quadratic_run(lam, _validate.positive("lr", lr), steps, start)
    ax.lines[0].set_data(*path.T)
    ax.set_title(f"η = {lr:.3g}")
    ax_loss.lines[0].set_data(t, loss)
    ax_loss.lines[0].set_label(f"η = {lr:.3g}")
    return fig


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def powers_of_ten(axis) -> None:
    """Label a log axis 10⁻⁴, 10⁰, 10³ ... in plain text (no minor labels).

    Matplotlib's default labels are mathtext, parsed anew on every draw: a live demo
    with a log axis redraws a third faster without them.

    >>> fig = Figure(); ax = fig.add_subplot(yscale="log")
    >>> powers_of_ten(ax.yaxis); ax.yaxis.get_major_formatter()(1e-4)
    '10⁻⁴'
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def label(value, _pos=None):
        exponent = np.log10(value) if value > 0 else np.nan
        if not np.isfinite(exponent) or abs(exponent - round(exponent)) > 1e-9:
            return ""
        return "10" + str(int(round(exponent))).translate(_SUPERSCRIPT)

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(NullFormatter())


def plot_loss_curves(curves: Mapping[str, Sequence[float]], *, ax=None, smooth: float = 0.0,
                     logy: bool = True, xlabel: str = "step", ylabel: str = "training loss",
                     title: str | None = None):
    """One line per entry of ``curves`` (label -> losses); non-finite values end a line.

    ``smooth`` in [0, 1) applies a bias-corrected moving average (the raw curve is drawn faintly).
    ``ax``: axes to draw into (a new figure by default). Returns the axes.

    >>> ax = plot_loss_curves({"lr = 0.1": [2.3, 1.2, 0.6, float("nan")]}, smooth=0.5)
    >>> ax.get_yscale(), ax.get_ylabel()
    ('log', 'training loss')
    """
    _validate.number("smooth", smooth, low=0, high=1, high_open=True)
    ax = _axes(ax)
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=float)
        color = _color(label, i)
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
    if smooth:  # say so on the figure: a smoothed curve is not the raw loss
        ax.text(0.99, 0.98, f"bold: moving average (β = {smooth:g}); faint: raw", transform=ax.transAxes,
                ha="right", va="top", fontsize=7, color="0.35")
    _finish(ax, logy, xlabel, ylabel, title)
    legend_outside(ax)
    return ax


def plot_schedules(curves: Mapping[str, Sequence[float]], *, ax=None, logy: bool = False,
                   xlabel: str = "step (scheduler.step() calls)", ylabel: str = "learning rate",
                   title: str | None = None):
    """Learning-rate curves, one per entry of ``curves`` (label -> LRs at steps 0, 1, ...).

    ``logy`` puts the learning rate on a log scale; ``ax``: axes to draw into. Returns the axes.

    >>> ax = plot_schedules({"StepLR": [0.1, 0.1, 0.01], "constant": [0.1, 0.1, 0.1]}, logy=True)
    >>> ax.get_yscale(), len(ax.get_lines())
    ('log', 2)
    """
    ax = _axes(ax)
    for i, (label, values) in enumerate(curves.items()):
        ax.plot(np.arange(len(values)), values, label=label, lw=1.6, color=_color(label, i))
    _finish(ax, logy, xlabel, ylabel, title)
    if len(curves) > 1:
        legend_outside(ax)
    return ax
