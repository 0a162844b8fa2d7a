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

import contextlib
import gc
import re
import textwrap
from typing import Callable, Mapping, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import _validate
from ._display import figure_png, png_output, text_output, widget_bundle
from .plots import SCHEDULE_COLORS, color_for, legend_outside

CODE_WIDTH = 78  # characters that fit one line of the narrowest output area (classic notebook)

__all__ = ["FigureDemo", "log_slider", "widget_check_demo", "lr_trajectory_demo",
           "schedule_explorer", "range_test_demo", "cyclical_demo", "warmup_demo",
           "branched_sweep_demo", "isolation_demo"]


class FigureDemo:
    """Controls plus a figure that ``render(**values)`` redraws on every change.

    Parameters
    ----------
    render : callable
        ``render(**values) -> Figure`` or ``-> (Figure, str)``, called with the current
        value of every control (keyword = the control's key in ``controls``); a string
        returned with the figure (e.g. the matching PyTorch code) is shown below it.
        A ``ValueError`` it raises while the learner moves a slider is shown in
        place of the figure (the first render lets it propagate).
    controls : mapping of str to ipywidgets value widget
        Sliders, dropdowns, check boxes ... Their ``value`` is passed to ``render``.
    title : str, optional
        Shown above the controls.
    layout_key : callable, optional
        ``layout_key(**values) -> hashable``. The demo lays every figure out itself
        (matplotlib's tight layout, unless the figure has a layout engine of its own),
        so ``render`` should not call ``tight_layout``. Laying out measures every label
        and costs as much as drawing: by default it is done on every redraw; with a
        key, the layout found for a key is reused while the key stays the same, so use
        it where the labels' sizes depend only on what the key returns.
    active : callable, optional
        ``active(**values) -> names of the controls that change the figure at these
        values``; the others are disabled (greyed out) until they matter, e.g. a
        parameter of a schedule that is not selected. By default all are enabled.

    Notes
    -----
    A redraw should take well under 250 ms to feel live. Nearly all of it is spent in the
    kernel drawing the figure; building a new figure costs about as much again (every tick
    and label is created anew), so a demo that redraws often builds its figure once and
    moves its artists in ``render`` (``line.set_data``, ``ax.set_xlim`` ...), as
    :func:`branched_sweep_demo` and :func:`lr_trajectory_demo` do. Give a ``layout_key``,
    and label log axes with :func:`helpers.plots.powers_of_ten` (mathtext is parsed anew
    on every draw). The garbage collector is paused while a figure is drawn and sent.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The live widget (title, controls, figure).
    output : ipywidgets.Output
        Holds the current figure; ``output.outputs`` can be inspected.
    renders : int
        How many times the figure was drawn (useful in tests).

    Examples
    --------
    >>> def render(lr):
    ...     fig = Figure(figsize=(3, 2))
    ...     fig.add_subplot().plot([(1 - lr) ** t for t in range(10)])
    ...     return fig, f"lr = {lr}"
    >>> demo = FigureDemo(render, {"lr": W.FloatSlider(value=0.5, min=0.1, max=1.9)})
    >>> print(demo.set(lr=1.5).output.outputs[1]["text"], end="")
    lr = 1.5
    """

    def __init__(self, render: Callable[..., Figure], controls: Mapping[str, W.Widget], *,
                 title: str = "", layout_key: Callable[..., object] | None = None,
                 active: Callable[..., object] | None = None):
        if not controls:
            raise ValueError("controls must hold at least one widget, got none")
        self.render = render
        self.controls = dict(controls)
        self.output = W.Output()
        self.renders = 0
        self.layout_key, self.active = layout_key, active
        self._layouts: dict = {}
        self._png = self._text = ""
        for control in self.controls.values():
            if hasattr(control, "continuous_update"):
                control.continuous_update = False  # redraw on release, not on every pixel
            control.observe(self._on_change, names="value")
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        row = W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap"))
        self.widget = W.VBox([*header, row, self.output])
        self.title = title
        self._enable()
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
        with _collector_paused():
            self._draw_now()

    def _draw_now(self) -> None:
        result = self.render(**self.values)
        fig, text = result if isinstance(result, tuple) else (result, "")
        try:
            self._lay_out(fig)
            # Laid out already: no cropping, which would cost one more drawing pass.
            self._png = figure_png(fig, tight=False)
        finally:
            plt.close(fig)
        self.renders += 1
        self._text = text = wrap_code(text)
        outputs = [png_output(self._png, f"<Figure: {self.title or 'demo'}>")]
        if text:
            outputs.append(text_output(text if text.endswith("\n") else text + "\n"))
        self.output.outputs = tuple(outputs)

    def _lay_out(self, fig: Figure) -> None:
        """Lay ``fig`` out (reusing a known layout), so that all of it lies inside the figure."""
        if fig.get_layout_engine() is not None:
            return
        if self.layout_key is None:
            fig.tight_layout()
            return
        key = self.layout_key(**self.values)
        if key in self._layouts:
            fig.subplots_adjust(**self._layouts[key])
        else:
            fig.tight_layout()
            pars = fig.subplotpars
            self._layouts[key] = {k: getattr(pars, k) for k in ("left", "right", "bottom", "top",
                                                                 "wspace", "hspace")}

    def _enable(self) -> None:
        if self.active is not None:
            on = set(self.active(**self.values))
            for name, control in self.controls.items():
                control.disabled = name not in on

    def _on_change(self, _change) -> None:
        self._enable()
        try:
            self._draw()
        except ValueError as err:  # an impossible setting: say why instead of a blank figure
            self.output.outputs = (text_output(f"Cannot draw this setting: {err}\n"),)

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = f"{self.title or 'Interactive demo'} (run the notebook to use the sliders)"
        if self._text:
            text += "\n" + self._text
        return widget_bundle(self.widget, {"image/png": self._png}, text)


@contextlib.contextmanager
def _collector_paused():
    """Hold Python's cyclic garbage collector while a figure is drawn and sent.

    Drawing allocates thousands of small objects, which triggers collections; in a
    kernel that holds a few hundred thousand objects (a trained model, a range test)
    a full one takes 100-200 ms. Paused, the collection runs after the new figure
    has left for the browser instead of in the middle of the redraw.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def wrap_code(text: str, width: int = CODE_WIDTH) -> str:
    """Break lines longer than ``width`` after the commas of their call, never inside a token.

    A line that is not a call (prose) is wrapped between words instead.

    An output area wraps a long line wherever the width runs out, often in the
    middle of a number or a name (the classic notebook front end of Colab's
    ipywidgets 7.7 is narrower than JupyterLab's). Continuation lines are
    indented to just after the line's first ``(``, as code is written.

    >>> print(wrap_code("CyclicLR(optimizer, base_lr=0.001, max_lr=0.1, mode='triangular')", width=40))
    CyclicLR(optimizer, base_lr=0.001,
             max_lr=0.1, mode='triangular')
    """
    out = []
    for line in text.split("\n"):
        if len(line) > width and not re.match(r"\s*[\w.]+\(", line):  # prose: wrap between words
            out += textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
            continue
        indent = " " * (line.find("(") + 1)
        while len(line) > width and ", " in line[:width]:
            cut = line[:width].rindex(", ") + 1
            out.append(line[:cut])
            line = indent + line[cut:].lstrip()
        out.append(line)
    return "\n".join(out)


def log_slider(description: str, value: float, low: float, high: float, *,
               steps_per_decade: int = 10, readout_format: str = ".2e") -> W.FloatLogSlider:
    """A ``FloatLogSlider`` from ``low`` to ``high`` (both > 0), e.g. for learning rates.

    The ticks (``steps_per_decade`` per decade) pass through ``value`` itself:
    a slider whose initial value lies between two ticks snaps to one on the
    first key press and can never return to it. So the ends are the outermost
    ticks inside ``[low, high]``, less than one tick from ``low`` and ``high``.

    >>> slider = log_slider("lr", 0.03, 1e-4, 1.0, steps_per_decade=4)
    >>> slider.value, round(10 ** slider.min, 6), round(10 ** slider.max, 3)
    (0.03, 0.000169, 0.949)
    """
    _validate.positive("low", low)
    _validate.positive("high", high)
    _validate.integer("steps_per_decade", steps_per_decade, low=1)
    if not low <= value <= high:
        raise ValueError(f"value must lie in [low, high] = [{low}, {high}], got {value}")
    step, at = 1 / steps_per_decade, np.log10(value)
    below = np.floor((at - np.log10(low)) / step + 1e-9)  # whole ticks between low and value
    above = np.floor((np.log10(high) - at) / step + 1e-9)
    lo, hi = float(at - below * step), float(at + above * step)
    return W.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=step,
                            description=description, readout_format=readout_format,
                            style={"description_width": "initial"})


def widget_check_demo() -> FigureDemo:
    """A sine wave whose frequency follows a slider: checks that widgets work.

    >>> widget_check_demo().set(frequency=3).values
    {'frequency': 3}
    """
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

    Examples
    --------
    >>> demo = lr_trajectory_demo(lr=0.1)
    >>> demo.set(lr=0.21).renders
    2
    """
    from .plots import plot_quadratic_paths, update_quadratic_path
    from .quadratic import quadratic_gd, quadratic_loss

    lam = np.asarray(eigenvalues, dtype=float)
    if lam.shape != (2,) or not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"eigenvalues must be two finite numbers > 0, got {eigenvalues!r}")
    _validate.integer("steps", steps, low=1)
    limit = 2 / lam.max()
    slider = log_slider("learning rate η", lr, 0.01 * limit, 1.25 * limit, steps_per_decade=40,
                        readout_format=".3f")

    # One loss scale for every position of the slider: runs compare at a glance, and
    # the axis labels keep their size, so one layout serves every redraw.
    positions = 10 ** np.arange(slider.min, slider.max + slider.step / 2, slider.step)
    losses = np.concatenate([quadratic_loss(lam, quadratic_gd(lam, eta, steps, start)) for eta in positions])
    losses = losses[np.isfinite(losses) & (losses > 0)]
    ylim = (losses.min() / 3, losses.max() * 3)

    drawn: list = []  # one figure, redrawn in place: its text is laid out only once

    def render(lr):
        if drawn:
            return update_quadratic_path(drawn[0], lam, lr, steps=steps, start=start)
        fig = plot_quadratic_paths(lam, lr, steps=steps, start=start, layout=False)
        fig.axes[-1].set_ylim(*ylim)
        drawn.append(fig)
        return fig

    # Only the data move with the slider: one layout serves every learning rate.
    return FigureDemo(render, {"lr": slider}, layout_key=lambda lr: None,
                      title=f"Gradient descent on a quadratic with λ = {tuple(lam.tolist())}: "
                            f"stable while η < 2/λ_max = {limit:.3g}")


def _int_slider(description, value, low, high, step=1):
    return W.IntSlider(value=value, min=low, max=high, step=step, description=description,
                       style={"description_width": "initial"})


def _float_slider(description, value, low, high, step, fmt=".2f"):
    return W.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                         readout_format=fmt, style={"description_width": "initial"})


# Label shown in the explorer -> (schedule name, keyword arguments from the controls).
_EXPLORER = {
    "StepLR": ("step_lr", lambda v: dict(step_size=v["step_size"], gamma=v["gamma"])),
    "MultiStepLR (milestones at N/2, 3N/4)": (
        "multistep_lr", lambda v: dict(milestones=[v["steps"] // 2, 3 * v["steps"] // 4], gamma=v["gamma"])),
    "ExponentialLR": ("exponential_lr", lambda v: dict(gamma=v["exp_gamma"])),
    "LinearLR (to 0 at N)": ("linear_lr", lambda v: dict(start_factor=1.0, end_factor=0.0, total_iters=v["steps"])),
    "PolynomialLR": ("polynomial_lr", lambda v: dict(total_iters=v["steps"], power=v["power"])),
    "CosineAnnealingLR": ("cosine_annealing_lr", lambda v: dict(T_max=v["T_max"], eta_min=v["eta_min"])),
    "CosineAnnealingWarmRestarts": (
        "cosine_annealing_warm_restarts_lr", lambda v: dict(T_0=v["T_0"], T_mult=v["T_mult"], eta_min=v["eta_min"])),
    "warmup + cosine": ("warmup_cosine_lr", lambda v: dict(
        warmup_steps=v["warmup"], total_steps=v["steps"], min_lr=v["eta_min"])),
}


# The controls each schedule of the explorer reads (besides N).
_EXPLORER_USES = {
    "StepLR": ("step_size", "gamma"), "MultiStepLR (milestones at N/2, 3N/4)": ("gamma",),
    "ExponentialLR": ("exp_gamma",), "LinearLR (to 0 at N)": (), "PolynomialLR": ("power",),
    "CosineAnnealingLR": ("T_max", "eta_min"), "CosineAnnealingWarmRestarts": ("T_0", "T_mult", "eta_min"),
    "warmup + cosine": ("warmup", "eta_min"),
}


def schedule_explorer(base_lr: float = 0.1, steps: int = 100,
                      selected=("StepLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts")) -> FigureDemo:
    """Pick schedules, move their parameters, see the curves together and the PyTorch code.

    Parameters
    ----------
    base_lr : float > 0
        The optimizer's initial learning rate.
    steps : int in [20, 400]
        Initial horizon N (``scheduler.step()`` calls drawn).
    selected : sequence of str
        Schedules shown at first (labels as in the selection list).

    Examples
    --------
    >>> demo = schedule_explorer().set(chosen=("StepLR",), step_size=10)
    >>> print(demo.output.outputs[1]["text"], end="")
    StepLR(optimizer, step_size=10, gamma=0.1)
    """
    from .plots import plot_schedules
    from .schedules import SCHEDULES, torch_code, trace_fn

    base_lr = _validate.positive("base_lr", base_lr)
    steps = _validate.integer("steps", steps, low=20, high=400)
    unknown = set(selected) - set(_EXPLORER)
    if unknown:
        raise ValueError(f"selected must name schedules among {list(_EXPLORER)}, got {sorted(unknown)}")
    controls = {
        "chosen": W.SelectMultiple(options=list(_EXPLORER), value=tuple(selected), rows=8,
                                   description="schedules", style={"description_width": "initial"}),
        "steps": _int_slider("total steps N", steps, 20, 400, 10),
        "step_size": _int_slider("StepLR step_size", 30, 1, 200),
        "gamma": _float_slider("γ (Step/MultiStep)", 0.1, 0.05, 0.95, 0.05),
        "exp_gamma": _float_slider("γ (Exponential)", 0.97, 0.9, 0.999, 0.001, ".3f"),
        "T_max": _int_slider("T_max (Cosine)", steps, 5, 400, 5),
        "T_0": _int_slider("T_0 (Restarts)", 20, 5, 200, 5),
        "T_mult": _int_slider("T_mult (Restarts)", 2, 1, 3),
        "power": _float_slider("power (Polynomial)", 2.0, 0.25, 4.0, 0.25),
        "eta_min": _float_slider("eta_min", 0.0, 0.0, 0.5 * base_lr, base_lr / 100, ".3f"),
        "warmup": _int_slider("warmup steps", 10, 0, 100),
        "logy": W.Checkbox(value=False, description="log y axis"),
    }

    def render(chosen, logy, **values):
        if not chosen:
            raise ValueError("select at least one schedule")
        curves, code = {}, []
        for label in chosen:
            name, kwargs = _EXPLORER[label]
            kwargs = kwargs(values)
            curves[label] = trace_fn(SCHEDULES[name], values["steps"] + 1, base_lr=base_lr, **kwargs)
            code.append(torch_code(name, base_lr=base_lr, **kwargs))
        fig = Figure(figsize=(8, 3.6))
        plot_schedules(curves, ax=fig.add_subplot(), logy=logy,
                       title=f"base_lr = {base_lr}, N = {values['steps']}")
        return fig, "\n".join(code)

    def active(chosen, **_):
        return {"chosen", "logy", "steps"}.union(*(_EXPLORER_USES[label] for label in chosen))

    # The legend (outside the axes) and the y scale decide the margins; the sliders only move data.
    return FigureDemo(render, controls, title="Schedule explorer", active=active,
                      layout_key=lambda chosen, logy, **_: (chosen, logy))


def range_test_demo(model=None, optimizer=None, criterion=None, train_loader=None) -> FigureDemo:
    """The LR range test with sliders for start/end LR, iterations and smoothing.

    With no arguments it probes the course's MLP on the digits (SGD with momentum 0.9,
    batch 32). Each redraw reruns :func:`helpers.lr_finder.lr_range_test`, which restores
    the model and optimizer afterwards, so every run starts from the same weights.
    A custom ``model`` needs ``optimizer`` and ``train_loader`` (``criterion`` defaults
    to cross-entropy).

    >>> demo = range_test_demo()
    >>> demo.set(num_iters=50).renders
    2
    """
    import torch

    from .lr_finder import RULE_LABELS, lr_range_test

    if model is None:
        from .data import digits_loaders
        from .models import mlp

        model = mlp(seed=0)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        train_loader, _ = digits_loaders(batch_size=32, seed=0)
    if optimizer is None or train_loader is None:
        raise ValueError("optimizer and train_loader are required when a model is given")
    criterion = criterion or torch.nn.CrossEntropyLoss()
    controls = {
        "start_lr": log_slider("start_lr", 1e-6, 1e-8, 1e-3, steps_per_decade=2),
        "end_lr": log_slider("end_lr", 10.0, 1e-2, 100.0, steps_per_decade=2),
        "num_iters": _int_slider("iterations", 100, 10, 300, 10),
        "smooth": _float_slider("smoothing β", 0.98, 0.0, 0.99, 0.01),
    }

    def render(start_lr, end_lr, num_iters, smooth):
        if end_lr <= start_lr:
            raise ValueError("end_lr must be larger than start_lr")
        result = lr_range_test(model, optimizer, criterion, train_loader, start_lr=start_lr,
                               end_lr=end_lr, num_iters=num_iters, smooth=smooth, progress=False)
        fig = Figure(figsize=(7, 3.8))
        result.plot(ax=fig.add_subplot())
        found = ", ".join(f"{RULE_LABELS[k]} {v:.2g}" for k, v in result.suggestions().items()) or "none"
        return fig, f"suggestions: {found}"

    return FigureDemo(render, controls, title="LR range test")


def cyclical_demo(base_lr: float = 1e-3, max_lr: float = 0.1) -> FigureDemo:
    """Cyclical policies (triangular, triangular2, exp_range) and one-cycle: LR and momentum.

    ``mode``, the bounds, the half-cycle length and the number of cycles are sliders; for
    one-cycle the run is as long as the cyclical one (``cycles × 2 × step_size_up``) and
    ``pct_start`` sets where the peak is. The matching PyTorch line is shown below.
    ``base_lr`` and ``max_lr`` (> 0) are the initial bounds.

    >>> print(cyclical_demo().set(mode="triangular2").output.outputs[1]["text"], end="")
    CyclicLR(optimizer, base_lr=0.001, max_lr=0.1, step_size_up=50,
             step_size_down=None, mode='triangular2', gamma=1.0)
    """
    from .schedules import (cyclic_lr, cyclic_momentum, one_cycle_lr, one_cycle_momentum,
                            torch_code, trace_fn)

    _validate.positive("base_lr", base_lr)
    _validate.positive("max_lr", max_lr)
    controls = {
        "mode": W.Dropdown(options=["triangular", "triangular2", "exp_range", "one-cycle"],
                           value="triangular", description="mode"),
        "base_lr": log_slider("base_lr", base_lr, 1e-5, 1e-1, steps_per_decade=4),
        "max_lr": log_slider("max_lr", max_lr, 1e-3, 1.0, steps_per_decade=4),
        "step_size_up": _int_slider("step_size_up", 50, 5, 200, 5),
        "cycles": _int_slider("cycles", 3, 1, 6),
        "gamma": _float_slider("γ (exp_range)", 0.99, 0.95, 1.0, 0.001, ".3f"),
        "pct_start": _float_slider("pct_start (one-cycle)", 0.3, 0.05, 0.95, 0.05),
    }

    def render(mode, base_lr, max_lr, step_size_up, cycles, gamma, pct_start):
        total = 2 * step_size_up * cycles
        if mode == "one-cycle":
            kwargs = dict(max_lr=max_lr, total_steps=total, pct_start=pct_start,
                          div_factor=max_lr / base_lr)
            lrs = trace_fn(one_cycle_lr, total, **kwargs)
            moms = trace_fn(one_cycle_momentum, total, total_steps=total, pct_start=pct_start)
            code = torch_code("one_cycle_lr", **kwargs)
        else:
            kwargs = dict(base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up, mode=mode)
            if mode == "exp_range":  # the only mode that reads gamma
                kwargs["gamma"] = gamma
            lrs = trace_fn(cyclic_lr, total + 1, **kwargs)
            moms = trace_fn(cyclic_momentum, total + 1, step_size_up=step_size_up, mode=mode, gamma=gamma)
            code = torch_code("cyclic_lr", **kwargs)
        fig = Figure(figsize=(8, 4.2))
        ax_lr, ax_m = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        ax_lr.plot(lrs, color=color_for(mode))
        ax_lr.set(ylabel="learning rate", title=f"{mode}: {total} steps")
        ax_m.plot(moms, color="tab:orange")
        ax_m.set(xlabel="step (scheduler.step() calls, one per batch)", ylabel="momentum")
        for ax in (ax_lr, ax_m):
            ax.grid(alpha=0.3)
        return fig, code

    def active(mode, **_):
        only = {"exp_range": {"gamma"}, "one-cycle": {"pct_start"}}.get(mode, set())
        return {"mode", "base_lr", "max_lr", "step_size_up", "cycles"} | only

    # The y labels' width follows max_lr (and the titles the mode); the other sliders move data.
    return FigureDemo(render, controls, title="Cyclical learning rates", active=active,
                      layout_key=lambda mode, max_lr, **_: (mode, f"{max_lr:.1g}"))


_WARMUP_OPTIMIZERS = ("Adam", "RAdam")


def warmup_demo(peak_lr: float = 0.1, warmup_pct: int = 10, *, optimizer: str = "Adam", epochs: int = 2,
                seed: int = 0, device=None) -> FigureDemo:
    """Warmup, live: the learning-rate schedule and the training loss of a real run, side by side.

    Every setting retrains the course's MLP (64-128-128-10) on the digits, batch 32, for
    ``epochs`` epochs (45 steps each, a fraction of a second on a CPU) with Adam or RAdam
    (PyTorch's default betas) at a peak learning rate ``peak_lr``: linear warmup from 0
    over ``warmup_pct`` % of the steps, then linear decay to 0 at the last step. With
    "compare" ticked, the run without warmup at the same peak LR is drawn in grey. Runs
    are cached, so returning to a setting is instant.

    Parameters
    ----------
    peak_lr : float in [1e-3, 1]
        Initial value of the peak-LR slider (log scale, 4 positions per decade).
    warmup_pct : int in [0, 50]
        Initial warmup length, in percent of the training steps.
    optimizer : {"Adam", "RAdam"}
        Initial optimizer.
    epochs : int in [1, 5]
        Length of every run.
    seed : int >= 0
        Seed of the model's initialisation and of the batch order.
    device : None, str or torch.device
        Where to train (``None``: the CPU).

    Examples
    --------
    >>> demo = warmup_demo(peak_lr=0.1, warmup_pct=0)
    >>> demo.set(warmup_pct=20).renders
    2
    >>> print(demo.output.outputs[1]["text"], end="")  # doctest: +ELLIPSIS
    Adam, peak LR 0.1, warmup 20% (18 of 90 steps): validation accuracy ...
    >>> warmup_demo(warmup_pct=80)
    Traceback (most recent call last):
    ...
    ValueError: warmup_pct must be an integer in [0, 50], got 80
    """
    import torch

    from .data import _device, digits_loaders
    from .models import mlp
    from .plots import ema
    from .schedules import torch_scheduler
    from .training import fit

    _validate.number("peak_lr", peak_lr, low=1e-3, high=1.0)
    _validate.integer("warmup_pct", warmup_pct, low=0, high=50)
    _validate.choice("optimizer", optimizer, _WARMUP_OPTIMIZERS)
    epochs = _validate.integer("epochs", epochs, low=1, high=5)
    seed = _validate.integer("seed", seed, low=0)
    device = _device(device)
    cache: dict = {}

    def run(lr, pct, name):
        key = (round(lr, 12), pct, name)
        if key not in cache:
            torch.manual_seed(seed)
            train_loader, val_loader = digits_loaders(batch_size=32, seed=seed, device=device)
            total = epochs * len(train_loader)
            warmup = round(total * pct / 100)
            model = mlp(seed=seed).to(device)
            opt = getattr(torch.optim, name)(model.parameters(), lr=lr)
            sched = torch_scheduler("wsd_lr", opt, warmup_steps=warmup, stable_steps=0,
                                    decay_steps=total - warmup)
            history = fit(model, opt, train_loader, epochs=epochs, scheduler=sched,
                          val_loader=val_loader, progress=False)
            cache[key] = (history, warmup, total)
        return cache[key]

    def summary(history):
        if history.diverged:
            return f"diverged at step {history.diverged_at}"
        return (f"validation accuracy {history.final_val_acc:.1%}, "
                f"highest training loss {max(history.losses):.3g}")

    def render(peak_lr, warmup_pct, optimizer, compare):
        history, warmup, total = run(peak_lr, warmup_pct, optimizer)
        runs = [(f"warmup {warmup_pct}%", history, SCHEDULE_COLORS["linearwarmup"])]
        text = (f"{optimizer}, peak LR {peak_lr:.3g}, warmup {warmup_pct}% ({warmup} of {total} steps): "
                f"{summary(history)}")
        if compare and warmup_pct > 0:
            reference = run(peak_lr, 0, optimizer)[0]
            runs.insert(0, ("no warmup", reference, SCHEDULE_COLORS["constant"]))
            text += f"\n{optimizer}, peak LR {peak_lr:.3g}, no warmup: {summary(reference)}"
        fig = Figure(figsize=(9, 3.4))
        ax_lr, ax_loss = fig.subplots(1, 2)
        for label, h, color in runs:
            ax_lr.plot(h.lrs, color=color, label=label)
            loss = np.asarray(h.losses)
            ax_loss.plot(loss, color=color, alpha=0.25, lw=0.8)
            ax_loss.plot(ema(loss, 0.8), color=color, label=label)
            if h.diverged:
                ax_loss.axvline(h.diverged_at, color=color, ls=":", lw=1)
        ax_loss.axhline(np.log(10), color="0.3", ls="--", lw=1, label="chance: ln 10")
        ax_lr.set(xlabel="step", ylabel="learning rate", title=f"learning rate ({optimizer})")
        ax_loss.set(xlabel="step", ylabel="training loss (log scale)", yscale="log",
                    title="training loss (bold: moving average β = 0.8; faint: raw)")
        for ax in (ax_lr, ax_loss):
            ax.grid(alpha=0.3)
        legend_outside(ax_loss)
        return fig, text

    controls = {
        "peak_lr": log_slider("peak LR", peak_lr, 1e-3, 1.0, steps_per_decade=4, readout_format=".3g"),
        "warmup_pct": _int_slider("warmup (% of steps)", warmup_pct, 0, 50),
        "optimizer": W.Dropdown(options=list(_WARMUP_OPTIMIZERS), value=optimizer, description="optimizer"),
        "compare": W.Checkbox(value=True, description="compare with no warmup"),
    }
    return FigureDemo(render, controls, title="Warmup on the digits MLP: schedule and training loss")


def branched_sweep_demo(peak_lr: float = 0.02, warmup_steps: int = 20, *, min_lr_ratio: float = 0.1,
                        max_budgets: int = 8) -> FigureDemo:
    """Plan a branched WSD sweep: one stable run, a cooldown per budget, and what it saves.

    Sliders: the longest budget (100-2000 steps), how many evenly spaced budgets
    (``longest * k / n``), the cooldown's share of each budget (5-60 %, rounded to whole
    steps, at least one) and its shape. The left panel draws the stable run (warmup,
    then ``peak_lr``), each budget's cooldown branched off it (:func:`wsd_branch_lr`)
    and, dashed, the warmup + cosine run each budget would need otherwise (decaying to
    ``min_lr_ratio * peak_lr``). The right panel compares the cost in training steps:
    the stable run up to its last branch plus every cooldown, against the sum of the
    budgets. A cooldown that would start inside the warmup is explained, not drawn.

    Parameters
    ----------
    peak_lr : float > 0
        LR of the stable phase and peak of the cosine runs.
    warmup_steps : int in [0, 95]
        Warmup of every run (shorter than the shortest cooldown branch possible).
    min_lr_ratio : float in [0, 1]
        Final LR of the cosine runs, as a fraction of ``peak_lr``.
    max_budgets : int in [1, 12]
        Largest number of budgets the slider offers.

    Examples
    --------
    >>> demo = branched_sweep_demo().set(longest=400, n_budgets=2)
    >>> print(demo.output.outputs[1]["text"], end="")
    WSD sweep: 440 steps; one cosine run per budget: 600 steps
    """
    from .schedules import _WSD_SHAPES, linear_warmup_lr, warmup_cosine_lr, wsd_branch_lr

    peak_lr = _validate.positive("peak_lr", peak_lr)
    warmup_steps = _validate.integer("warmup_steps", warmup_steps, low=0, high=95)
    min_lr_ratio = _validate.number("min_lr_ratio", min_lr_ratio, low=0, high=1)
    max_budgets = _validate.integer("max_budgets", max_budgets, low=1, high=12)
    controls = {
        "longest": _int_slider("longest budget", 300, 100, 2000, 50),
        "n_budgets": _int_slider("budgets", min(3, max_budgets), 1, max_budgets),
        "cooldown_pct": _int_slider("cooldown %", 20, 5, 60, 5),
        "shape": W.Dropdown(options=list(_WSD_SHAPES), value="linear", description="shape"),
    }

    # One figure, built once and moved on every change: a new figure would rebuild every
    # tick and label, which costs more than drawing it.
    fig = Figure(figsize=(11, 3.4))
    ax, ax_cost = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    stable, = ax.plot([], [], color=color_for("constant"), lw=1, label="stable run")
    cosines = [ax.plot([], [], color=color_for("cosine"), ls="--", lw=0.8,
                       label=None if i else "cosine runs")[0] for i in range(max_budgets)]
    cooldowns = [ax.plot([], [], color=color_for("wsd"), lw=2,
                         label=None if i else "WSD cooldowns")[0] for i in range(max_budgets)]
    ax.set(xlabel="step", ylabel="learning rate", ylim=(-0.05 * peak_lr, 1.05 * peak_lr))
    legend_outside(ax)
    bars = ax_cost.bar(["WSD sweep", "cosine runs"], [1, 1], color=[color_for("wsd"), color_for("cosine")])
    ax_cost.set(ylabel="training steps", title="cost of the sweep")

    def budgets_of(longest, n_budgets):
        return [round(longest * (i + 1) / n_budgets) for i in range(n_budgets)]

    def cost_top(longest, n_budgets, **_):
        return 1.08 * sum(budgets_of(longest, n_budgets))  # the cosine runs never cost less

    def render(longest, n_budgets, cooldown_pct, shape):
        branches = {}  # budget -> (branch step, cooldown steps)
        for budget in budgets_of(longest, n_budgets):
            length = max(1, round(cooldown_pct / 100 * budget))
            branches[budget] = (budget - length, length)
        first, (branch, _) = next(iter(branches.items()))  # the smallest budget branches first
        if branch < warmup_steps:
            raise ValueError(f"a cooldown of {cooldown_pct}% of {first} steps would start inside "
                             f"the warmup of {warmup_steps} steps")
        s = np.arange(longest + 1)
        stable.set_data(s, [linear_warmup_lr(t, peak_lr, warmup_steps) for t in s])
        for line in cosines + cooldowns:  # budgets no longer chosen disappear
            line.set_data([], [])
        for (budget, (branch, length)), cosine, cooldown in zip(branches.items(), cosines, cooldowns):
            t = np.arange(budget + 1)
            cosine.set_data(t, [warmup_cosine_lr(u, peak_lr, warmup_steps, budget, min_lr_ratio * peak_lr)
                                for u in t])
            t = np.arange(branch, budget + 1)
            cooldown.set_data(t, [wsd_branch_lr(u, peak_lr, warmup_steps, branch, length, decay_type=shape)
                                  for u in t])
        ax.set_xlim(-0.05 * longest, 1.05 * longest)
        ax.set_title(f"budgets {list(branches)}")
        costs = (max(b for b, _ in branches.values()) + sum(c for _, c in branches.values()), sum(branches))
        for bar, steps in zip(bars, costs):
            bar.set_height(steps)
        ax_cost.set_ylim(0, cost_top(longest, n_budgets))
        return fig, f"WSD sweep: {costs[0]} steps; one cosine run per budget: {costs[1]} steps"

    return FigureDemo(render, controls, title="Plan a branched sweep",
                      # Only the cost axis' labels change the margins, with their digits.
                      layout_key=lambda **values: len(f"{cost_top(**values):.0f}"))


def _quick_width_sweeps() -> dict:
    """A small real study for :func:`isolation_demo` on its own: widths 32 and 128, one seed, 40 steps."""
    from .tuning import adam_for, powers_of_two, tabular_tensors, train_and_evaluate, width_mlp

    data = tabular_tensors(n_train=4000, n_val=1000)
    sweeps = {}
    for width in (32, 128):
        sweeps[f"width {width}"] = {lr: [train_and_evaluate(model := width_mlp(width), adam_for(model, lr), data,
                                                          steps=40)]
                                    for lr in powers_of_two(-3, -9)}
    return sweeps


def isolation_demo(sweeps: Mapping[str, Mapping[float, Sequence[float]]] | None = None, *,
                   shared_lr: float | None = None) -> FigureDemo:
    """Compare options at one shared learning rate, or each at its own best: the isolation plot.

    ``sweeps`` maps an option's name to its LR sweep ``{lr: [score per seed]}`` (lower is
    better; ``inf`` for a diverged run), every option on the same grid of learning rates.
    The left panel draws each option's mean score over the seeds against the learning
    rate (the band spans the seeds), a vertical line at the shared learning rate chosen
    with the slider, and a star at each option's best; the right panel compares the
    options at the shared learning rate and each at its own best. The text below names
    the winner of each comparison. ``None`` runs a small study first (widths 32 and 128,
    one seed, 40 steps), so that the demo works on its own.

    Parameters
    ----------
    sweeps : mapping of str to {lr: [scores]}, optional
        Two to six options, each with at least 3 learning rates, the same grid for all.
    shared_lr : float, optional
        Where the slider starts: a learning rate of the grid (default: its middle).

    Examples
    --------
    >>> demo = isolation_demo({"a": {0.1: [1.0], 0.01: [2.0], 0.001: [3.0]},
    ...                        "b": {0.1: [9.0], 0.01: [1.5], 0.001: [0.5]}}, shared_lr=0.1)
    >>> print(demo.output.outputs[1]["text"], end="")
    at lr = 2^-3.3: a wins by 8; each at its best: b wins by 0.5
    """
    if sweeps is None:
        sweeps = _quick_width_sweeps()
    if not 2 <= len(sweeps) <= 6:
        raise ValueError(f"sweeps must hold 2 to 6 options, got {len(sweeps)}")
    sweeps = {name: {float(lr): np.asarray(scores, float) for lr, scores in sweep.items()}
              for name, sweep in sweeps.items()}
    grid = sorted(next(iter(sweeps.values())))
    if len(grid) < 3 or grid[0] <= 0 or any(sorted(sweep) != grid for sweep in sweeps.values()):
        raise ValueError("every option of sweeps needs the same grid of at least 3 positive learning rates")
    if any(len(scores) == 0 for sweep in sweeps.values() for scores in sweep.values()):
        raise ValueError("every learning rate of sweeps needs at least one score")
    # A diverged run (inf or NaN) makes its learning rate's mean inf: never the best.
    scores = {name: [np.where(np.isfinite(sweep[lr]), sweep[lr], np.inf) for lr in grid]
              for name, sweep in sweeps.items()}
    means = {name: np.array([s.mean() for s in rows]) for name, rows in scores.items()}
    bands = {name: (np.array([s.min() for s in rows]), np.array([s.max() for s in rows]))
             for name, rows in scores.items()}
    if any(not np.isfinite(m).any() for m in means.values()):
        raise ValueError("an option of sweeps diverged at every learning rate")
    exponents = [round(float(np.log2(lr)), 1) for lr in grid]
    start = grid[len(grid) // 2] if shared_lr is None else float(shared_lr)
    if not any(np.isclose(start, lr) for lr in grid):
        raise ValueError(f"shared_lr must be one of the grid's learning rates {grid}, got {shared_lr!r}")
    controls = {"log2_lr": W.SelectionSlider(options=exponents, value=exponents[int(np.argmin(
        np.abs(np.array(grid) - start)))], description="shared lr = 2^")}

    fig = Figure(figsize=(11, 3.4))
    ax, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    finite_top = max(float(np.max(m[np.isfinite(m)])) for m in means.values())
    colors = {name: plt.cm.viridis(i / max(1, len(means) - 1) * 0.85) for i, name in enumerate(means)}
    for name, mean in means.items():
        low, high = bands[name]
        ax.fill_between(grid, np.minimum(low, finite_top * 1.1), np.minimum(high, finite_top * 1.1),
                        color=colors[name], alpha=0.2, lw=0)
        ax.plot(grid, np.minimum(mean, finite_top * 1.1), "o-", color=colors[name], ms=3, label=name)
        best = int(np.argmin(mean))
        ax.plot(grid[best], mean[best], "*", color=colors[name], ms=14, mec="k", mew=0.5)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="learning rate", ylabel="score (mean over seeds)")
    shared_line = ax.axvline(start, color="k", ls=":", lw=1.2)
    legend_outside(ax)
    names = list(means)
    x = np.arange(len(names))
    at_shared = ax_bar.bar(x - 0.2, [1] * len(names), 0.4, color="#bbbbbb", label="at the shared lr")
    ax_bar.bar(x + 0.2, [float(np.min(means[n])) for n in names], 0.4, color=[colors[n] for n in names],
               label="each at its best")
    ax_bar.set_xticks(x, names)
    ax_bar.set(ylabel="score", ylim=(0, finite_top * 1.15))
    ax_bar.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)

    def winner(scores):
        order = np.argsort(scores)
        gap = scores[order[1]] - scores[order[0]]
        return f"{names[order[0]]} wins by {gap:.2g}" if np.isfinite(gap) else f"{names[order[0]]} wins"

    def render(log2_lr):
        i = exponents.index(log2_lr)
        shared_line.set_xdata([grid[i], grid[i]])
        shared = np.array([means[n][i] for n in names])
        for bar, value in zip(at_shared, shared):
            bar.set_height(min(value, finite_top * 1.1))
        best = np.array([np.min(means[n]) for n in names])
        ax.set_title(f"shared learning rate 2^{log2_lr:g}")
        return fig, f"at lr = 2^{log2_lr:g}: {winner(shared)}; each at its best: {winner(best)}"

    return FigureDemo(render, controls, title="One shared learning rate, or each option at its best?",
                      layout_key=lambda **_: 0)
