"""Interactive demos: ipywidgets controls whose output is a matplotlib figure.

Every demo is a :class:`FigureDemo`. Displayed in a notebook it shows sliders and
a figure that redraws when a slider moves; where no widget front end exists
(nbconvert, nbval, GitHub) the same cell shows a static figure of the default
setting. Only widgets common to ipywidgets 7.7 (Colab) and 8 are used.

The ready-made demos of the course are built with the factories below
(``lr_trajectory_demo``, ...); :class:`FigureDemo` builds new ones::

    >>> import ipywidgets as W
    >>> from matplotlib.figure import Figure
    >>> def render(lr):
    ...     fig = Figure(figsize=(4, 3))
    ...     fig.add_subplot().plot([(1 - lr) ** t for t in range(20)])
    ...     return fig
    >>> demo = FigureDemo(render, {"lr": W.FloatSlider(value=0.5, min=0.1, max=1.9)})
    >>> demo.set(lr=1.5).values
    {'lr': 1.5}
"""
from __future__ import annotations

from typing import Callable, Mapping

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import _validate
from ._display import figure_png, png_output, text_output, widget_bundle

__all__ = ["FigureDemo", "log_slider", "lr_trajectory_demo", "widget_check_demo"]


class FigureDemo:
    """Controls plus a figure that ``render(**values)`` redraws on every change.

    Parameters
    ----------
    render : callable
        ``render(**values) -> matplotlib.figure.Figure``, called with the current
        value of every control (keyword = the control's key in ``controls``).
        A ``ValueError`` it raises while the learner moves a slider is shown in
        place of the figure (the first render lets it propagate).
    controls : mapping of str to ipywidgets value widget
        Sliders, dropdowns, check boxes ... Their ``value`` is passed to ``render``.
    title : str, optional
        Shown above the controls.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The live widget (title, controls, figure).
    output : ipywidgets.Output
        Holds the current figure; ``output.outputs`` can be inspected.
    renders : int
        How many times the figure was drawn (useful in tests).
    """

    def __init__(self, render: Callable[..., Figure], controls: Mapping[str, W.Widget], *,
                 title: str = ""):
        if not controls:
            raise ValueError("controls must hold at least one widget, got none")
        self.render = render
        self.controls = dict(controls)
        self.output = W.Output()
        self.renders = 0
        self._png = ""
        for control in self.controls.values():
            if hasattr(control, "continuous_update"):
                control.continuous_update = False  # redraw on release, not on every pixel
            control.observe(self._on_change, names="value")
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        row = W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap"))
        self.widget = W.VBox([*header, row, self.output])
        self.title = title
        self._draw()

    @property
    def values(self) -> dict:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> "FigureDemo":
        """Set controls programmatically (as a learner moving sliders would)."""
        for name, value in values.items():
            if name not in self.controls:
                raise ValueError(f"unknown control {name!r}; this demo has {sorted(self.controls)}")
            self.controls[name].value = value
        return self

    def _draw(self) -> None:
        fig = self.render(**self.values)
        try:
            self._png = figure_png(fig)
        finally:
            plt.close(fig)
        self.renders += 1
        self.output.outputs = (png_output(self._png, f"<Figure: {self.title or 'demo'}>"),)

    def _on_change(self, _change) -> None:
        try:
            self._draw()
        except ValueError as err:  # an impossible setting: say why instead of a blank figure
            self.output.outputs = (text_output(f"Cannot draw this setting: {err}\n"),)

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = f"{self.title or 'Interactive demo'} (run the notebook to use the sliders)"
        return widget_bundle(self.widget, {"image/png": self._png}, text)


def log_slider(description: str, value: float, low: float, high: float, *,
               steps_per_decade: int = 10, readout_format: str = ".2e") -> W.FloatLogSlider:
    """A ``FloatLogSlider`` from ``low`` to ``high`` (both > 0), e.g. for learning rates."""
    _validate.positive("low", low)
    _validate.positive("high", high)
    if not low <= value <= high:
        raise ValueError(f"value must lie in [low, high] = [{low}, {high}], got {value}")
    lo, hi = np.log10(low), np.log10(high)
    return W.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=1 / steps_per_decade,
                            description=description, readout_format=readout_format,
                            style={"description_width": "initial"})


def widget_check_demo() -> FigureDemo:
    """A sine wave whose frequency follows a slider: checks that widgets work."""
    def render(frequency):
        fig = Figure(figsize=(5, 2.2))
        ax = fig.add_subplot()
        t = np.linspace(0, 1, 400)
        ax.plot(t, np.sin(2 * np.pi * frequency * t))
        ax.set(xlabel="t", ylabel="sin(2π f t)", title=f"f = {frequency}")
        return fig

    slider = W.IntSlider(value=2, min=1, max=10, description="frequency f")
    return FigureDemo(render, {"frequency": slider}, title="Widget check: move the slider")


def lr_trajectory_demo(eigenvalues=(1.0, 10.0), *, lr: float = 0.15, steps: int = 30,
                       start=(-4.0, 2.0)) -> FigureDemo:
    """Gradient descent on ``½ Σ λ_i θ_i²``: an LR slider redraws path and loss curve.

    Parameters
    ----------
    eigenvalues : pair of float > 0
        The curvatures (λ_1, λ_2) of the quadratic; their ratio is its condition number.
    lr : float > 0
        Initial learning rate of the slider (which spans 0.01/λ_max to 2.5/λ_max).
    steps : int >= 1
        Gradient-descent steps drawn.
    start : pair of float
        The starting point θ_0.
    """
    from .plots import plot_quadratic_descent  # local: plots imports this module's users

    lam = np.asarray(eigenvalues, dtype=float)
    if lam.shape != (2,) or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"eigenvalues must be two finite numbers > 0, got {eigenvalues!r}")
    _validate.integer("steps", steps, low=1)
    limit = 2 / lam.max()
    slider = log_slider("learning rate η", lr, 0.01 * limit, 1.25 * limit, steps_per_decade=40,
                        readout_format=".3f")

    def render(lr):
        return plot_quadratic_descent(lam, lr, steps=steps, start=start)

    return FigureDemo(render, {"lr": slider},
                      title=f"Gradient descent on a quadratic with λ = {tuple(lam.tolist())}: "
                            f"stable while η < 2/λ_max = {limit:.3g}")
