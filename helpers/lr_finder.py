"""Learning-rate range test ("LR finder") that leaves no trace.

The range test trains for a few steps while the learning rate grows from a tiny
to a huge value and records the loss; the useful learning rates are where the
loss falls fastest, well before it blows up. Smith (2017, "Cyclical Learning
Rates for Training Neural Networks", arXiv:1506.01186) raised the rate
*linearly* and plotted *accuracy*; this module implements the variant
popularised by fastai: an *exponential* sweep with a smoothed *loss* curve
(``step_mode="linear"`` gives Smith's schedule).

Conventions (all exact):

* Learning rate at iteration ``i = 0 .. num_iters - 1``:
  ``start_lr * (end_lr / start_lr) ** (i / (num_iters - 1))`` in ``"exp"``
  mode, ``start_lr + (end_lr - start_lr) * (i / (num_iters - 1))`` in
  ``"linear"`` mode; the last value is set to ``end_lr`` itself so the sweep
  ends exactly there despite floating-point round-off. Every parameter group
  gets the same rate, unless ``param_group`` names the only group to sweep
  (the others keep their own rates, as in discriminative fine-tuning).
* One batch per iteration. The recorded training loss at iteration ``i`` is
  the loss of the forward pass *before* the step taken with ``lrs[i]`` (as in
  fastai and torch-lr-finder); with ``val_loader`` it is the mean validation
  loss *after* that step.
* Smoothing is a bias-corrected exponential moving average:
  ``avg = smooth * avg + (1 - smooth) * loss`` and
  ``smoothed = avg / (1 - smooth ** (i + 1))``.
* The test stops early once the smoothed loss exceeds ``diverge_th`` times the
  best smoothed loss so far (that point is recorded; the check needs a
  positive best loss), or at the first non-finite loss (that point is *not*
  recorded, so the curves never hold NaN or inf and no step is taken with it).
* ``val_batches=k`` evaluates only the first ``k`` batches of ``val_loader``
  after each step (weighted mean over those batches).
* ``runs=n`` repeats the sweep ``n`` times over the same learning-rate grid,
  each run starting from the same model and optimizer state. Run 0 is exactly
  the single-run test. Run ``k >= 1`` first re-seeds the global generators
  (torch CPU, CUDA when in use, Python's ``random``, NumPy) with a seed derived
  from a hash of the torch CPU generator's state at call time and ``k`` (see
  ``_run_seed``), then skips the first ``k`` batches of ``train_loader``: a
  shuffling ``DataLoader`` draws a new permutation for every epoch of every
  run (and dropout new masks), and a fixed-order loader starts ``k`` batches
  later. Seeding before the call therefore reproduces every run. The recorded
  curves are, per step, the median over the runs that reached that step.

Whatever happens (normal end, divergence, an exception from the model, the
criterion or the loader, or ``KeyboardInterrupt``), the model's parameters,
gradients and buffers, each module's train/eval flag, the optimizer's state
and every ``param_groups`` hyper-parameter, and the random number generators
(torch CPU and CUDA, Python's ``random``, NumPy's global state) are restored
bitwise to what they were before the call. Exceptions propagate after the
restore; ``KeyboardInterrupt`` (stopping a notebook cell) instead returns the
partial result with ``interrupted=True`` and a ``RuntimeWarning``. With
``runs > 1`` the same restoration also happens between runs.
"""
from __future__ import annotations

import copy
import hashlib
import math
import random
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from . import _validate
from .plots import RULE_COLORS, legend_outside

__all__ = ["lr_range_test", "RangeTestResult", "SuggestionError", "PITFALL_EXAMPLES", "mystery_range_tests"]

STEP_MODES = ("exp", "linear")
SUGGEST_METHODS = ("valley", "steepest", "minimum")
# How the rules appear in legends: "minimum" returns the minimum's LR divided by 10.
RULE_LABELS = {"valley": "valley", "steepest": "steepest", "minimum": "minimum/10"}
STOP_REASONS = ("completed", "diverged", "non-finite loss", "interrupted")
MIN_POINTS = 10  # fewer points than this make every suggestion a guess
MIN_RELATIVE_DROP = 0.01  # a descent smaller than 1 % is indistinguishable from noise

_INPUT_KEYS = ("input", "inputs", "x")
_TARGET_KEYS = ("target", "targets", "label", "labels", "y")

DeviceLike = Union[str, int, torch.device]


class SuggestionError(ValueError):
    """Raised when the recorded curve cannot support a learning-rate suggestion.

    ``reason`` is a short tag (``"too few points"`` or ``"no descent"``); the
    message says what to change.

    >>> flat = RangeTestResult(np.geomspace(1e-5, 1.0, 50), np.ones(50))
    >>> try:
    ...     flat.suggest()
    ... except SuggestionError as err:
    ...     print(err.reason)
    no descent
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(eq=False, repr=False)
class RangeTestResult:
    """Curves recorded by :func:`lr_range_test`, with suggestions and a plot.

    Parameters
    ----------
    lrs : array-like of float
        Learning rate of each recorded iteration, finite, > 0, strictly increasing.
    losses : array-like of float
        Smoothed loss at each recorded iteration (finite).
    raw_losses : array-like of float, optional
        Unsmoothed loss at each recorded iteration; defaults to ``losses``.
    step_mode : {"exp", "linear"}, default="exp"
        How the learning rate was swept; sets the x axis of ``"steepest"`` and
        of the plot (``log10(lr)`` for ``"exp"``, ``lr`` for ``"linear"``).
    num_iters : int, optional
        Planned number of iterations (>= ``len(lrs)``); defaults to ``len(lrs)``.
    stop_reason : {"completed", "diverged", "non-finite loss", "interrupted"}
        Why the test ended.
    stopped_at : int or None
        0-based iteration at which the test stopped early, ``None`` if it ran
        all ``num_iters``. After a divergence it is the last recorded point;
        after a non-finite loss or an interrupt it is the first unrecorded one.
    validation : bool, default=False
        Whether the losses are validation losses.
    run_losses : list of array-like, optional
        Smoothed loss curve of every run of a repeated test (``runs > 1``), each
        recorded on a prefix of ``lrs`` (runs that stop early are shorter);
        ``losses`` is then their per-step median. Defaults to ``[losses]``.
    run_raw_losses : list of array-like, optional
        Unsmoothed curve of every run, same lengths as ``run_losses``; defaults
        to ``[raw_losses]`` (or to ``run_losses`` when those are given).
    run_stop_reasons : list of str, optional
        Why each run ended (same choices as ``stop_reason``); defaults to
        ``stop_reason`` for every run.

    Examples
    --------
    >>> import numpy as np
    >>> lrs = np.geomspace(1e-5, 1.0, 101)
    >>> loss = 2.0 - np.tanh(2 * (np.log10(lrs) + 3))   # steepest at lr = 1e-3
    >>> result = RangeTestResult(lrs, loss)
    >>> float(result.suggest("steepest"))
    0.001
    >>> sorted(result.suggestions())
    ['minimum', 'steepest', 'valley']

    Several runs (as ``lr_range_test(..., runs=3)`` records them): ``losses``
    is the per-step median and ``suggest_interval`` spans the runs' suggestions.

    >>> curves = [2.0 - np.tanh(2 * (np.log10(lrs) + c)) for c in (2.8, 3.0, 3.2)]
    >>> multi = RangeTestResult(lrs, np.median(curves, axis=0), run_losses=curves)
    >>> multi.n_runs, [round(v, 6) for v in multi.suggest_interval("steepest")]
    (3, [0.000631, 0.001585])
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: Optional[np.ndarray] = None
    step_mode: str = "exp"
    num_iters: Optional[int] = None
    stop_reason: str = "completed"
    stopped_at: Optional[int] = None
    validation: bool = False
    run_losses: Optional[list] = None
    run_raw_losses: Optional[list] = None
    run_stop_reasons: Optional[list] = None

    def __post_init__(self) -> None:
        self.lrs = _as_curve("lrs", self.lrs)
        self.losses = _as_curve("losses", self.losses)
        raw = self.losses if self.raw_losses is None else self.raw_losses
        self.raw_losses = _as_curve("raw_losses", raw)
        n = len(self.lrs)
        if len(self.losses) != n or len(self.raw_losses) != n:
            raise ValueError(
                f"lrs, losses and raw_losses must have the same length, got "
                f"{n}, {len(self.losses)} and {len(self.raw_losses)}"
            )
        if n and (self.lrs[0] <= 0 or np.any(np.diff(self.lrs) <= 0)):
            raise ValueError("lrs must be > 0 and strictly increasing")
        _validate.choice("step_mode", self.step_mode, STEP_MODES)
        _validate.choice("stop_reason", self.stop_reason, STOP_REASONS)
        self.num_iters = n if self.num_iters is None else self.num_iters
        _validate.integer("num_iters", self.num_iters, low=max(n, 1))
        if self.stopped_at is not None:
            _validate.integer("stopped_at", self.stopped_at, low=0)
        self._check_runs(n)

    def _check_runs(self, n: int) -> None:
        if self.run_losses is None:
            self.run_losses = [self.losses]
            if self.run_raw_losses is None:
                self.run_raw_losses = [self.raw_losses]
        if isinstance(self.run_losses, np.ndarray) and self.run_losses.ndim == 2:
            self.run_losses = list(self.run_losses)
        if not isinstance(self.run_losses, (list, tuple)) or not self.run_losses:
            raise ValueError("run_losses must be a non-empty list of curves")
        self.run_losses = [_as_curve("run_losses", c) for c in self.run_losses]
        raws = self.run_losses if self.run_raw_losses is None else list(self.run_raw_losses)
        self.run_raw_losses = [_as_curve("run_raw_losses", c) for c in raws]
        runs = len(self.run_losses)
        if len(self.run_raw_losses) != runs:
            raise ValueError(f"run_raw_losses must hold one curve per run ({runs}), got {len(self.run_raw_losses)}")
        for k, (smooth, raw) in enumerate(zip(self.run_losses, self.run_raw_losses)):
            if len(smooth) != len(raw) or len(smooth) > n:
                raise ValueError(
                    f"run {k}: run_losses and run_raw_losses must have the same length, at most len(lrs) = {n}; "
                    f"got {len(smooth)} and {len(raw)}"
                )
        reasons = [self.stop_reason] * runs if self.run_stop_reasons is None else list(self.run_stop_reasons)
        if len(reasons) != runs:
            raise ValueError(f"run_stop_reasons must hold one reason per run ({runs}), got {len(reasons)}")
        for reason in reasons:
            _validate.choice("run_stop_reasons", reason, STOP_REASONS)
        self.run_stop_reasons = reasons

    @property
    def n_runs(self) -> int:
        """Number of runs recorded (``runs`` of :func:`lr_range_test`, fewer after an interrupt)."""
        return len(self.run_losses)

    def run_results(self) -> list:
        """One :class:`RangeTestResult` per run, on its own stretch of the learning-rate grid.

        Examples
        --------
        >>> import numpy as np
        >>> lrs = np.geomspace(1e-4, 1e-1, 4)
        >>> two = RangeTestResult(lrs, [4.0, 3.0, 2.5, 2.0], run_losses=[[4.0, 3.0, 2.0, 2.0], [4.0, 3.0, 3.0]],
        ...                       run_stop_reasons=["completed", "diverged"])
        >>> [(len(r.lrs), r.stop_reason, r.stopped_at) for r in two.run_results()]
        [(4, 'completed', None), (3, 'diverged', 2)]
        """
        out = []
        for smooth, raw, reason in zip(self.run_losses, self.run_raw_losses, self.run_stop_reasons):
            m = len(smooth)
            stopped_at = None if reason == "completed" else (m - 1 if reason == "diverged" else m)
            out.append(RangeTestResult(
                self.lrs[:m], smooth, raw, step_mode=self.step_mode, num_iters=self.num_iters,
                stop_reason=reason, stopped_at=None if stopped_at is None else max(stopped_at, 0),
                validation=self.validation,
            ))
        return out

    def suggest_interval(self, method: str = "valley", *, skip_start: Optional[int] = None,
                         skip_end: int = 5) -> tuple:
        """Range of one rule's suggestion over the runs: ``(min, max)``.

        Each run's own smoothed curve is given to :meth:`suggest` (same
        arguments); runs whose curve cannot support the rule are left out. With
        a single run both ends are ``suggest(method)``. A wide interval means the
        suggestion depends on the data order: prefer the low end, or run longer.

        Parameters
        ----------
        method : {"valley", "steepest", "minimum"}, default="valley"
            The rule, as in :meth:`suggest`.
        skip_start : int, optional
            Points ignored at the start of each run (>= 0); default ``num_iters // 10``.
        skip_end : int, default=5
            Points ignored at the end of each run (>= 0).

        Returns
        -------
        tuple of float
            ``(low, high)``, the smallest and largest suggestion over the runs.

        Raises
        ------
        SuggestionError
            If no run supports the rule; ``reason`` is the runs' common reason
            (the first run's if they differ) and the message lists each run's.

        Examples
        --------
        >>> import numpy as np
        >>> lrs = np.geomspace(1e-5, 1.0, 101)
        >>> curves = [2.0 - np.tanh(2 * (np.log10(lrs) + c)) for c in (2.5, 3.0)] + [np.ones(101)]
        >>> result = RangeTestResult(lrs, np.median(curves, axis=0), run_losses=curves)
        >>> low, high = result.suggest_interval("minimum")   # the flat third run is skipped
        >>> bool(low <= high)
        True
        >>> RangeTestResult(lrs, np.ones(101), run_losses=[np.ones(101)] * 2).suggest_interval()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        helpers.lr_finder.SuggestionError: no run supports a 'valley' suggestion: run 0: the smoothed loss ...
        """
        _validate.choice("method", method, SUGGEST_METHODS)
        found, errors = [], []
        for k, run in enumerate(self.run_results()):
            try:
                found.append(run.suggest(method, skip_start=skip_start, skip_end=skip_end))
            except SuggestionError as err:
                errors.append((k, err))
        if not found:
            reasons = {err.reason for _, err in errors}
            reason = errors[0][1].reason if len(reasons) > 1 else reasons.pop()
            details = "; ".join(f"run {k}: {err}" for k, err in errors)
            raise SuggestionError(f"no run supports a {method!r} suggestion: {details}", reason)
        return min(found), max(found)

    @property
    def diverged(self) -> bool:
        """True if the test stopped because the loss blew up or became non-finite."""
        return self.stop_reason in ("diverged", "non-finite loss")

    @property
    def interrupted(self) -> bool:
        """True if the test was stopped by ``KeyboardInterrupt``."""
        return self.stop_reason == "interrupted"

    def suggest(self, method: str = "valley", *, skip_start: Optional[int] = None, skip_end: int = 5) -> float:
        """Suggest a learning rate from the smoothed loss curve.

        As in fastai's ``lr_find``, the first ``num_iters // 10`` points (the
        moving average is still warming up) and the last ``skip_end`` points
        (the blow-up) are ignored.

        Parameters
        ----------
        method : {"valley", "steepest", "minimum"}, default="valley"
            ``"valley"``: fastai's rule. Find the longest strictly decreasing
            subsequence of the smoothed loss (not necessarily contiguous),
            ending at ``max_end`` with length ``L``; with
            ``max_start = max_end - L`` and ``sections = (max_end - max_start) / 3``
            return the LR at ``max_start + int(sections) + int(sections / 2)``
            (clipped into the curve). Since ``int(L / 3) + int(L / 6)`` is
            ``L / 2`` or at most 1.5 points less, this is the *midpoint by
            index* of the stretch: in an exponential sweep the middle in log-LR
            (the geometric mean of its end LRs), not a point a given fraction of
            the way down in loss. The stretch usually starts in the flat region,
            where the smoothed loss creeps down, so the pick tends to lie near the
            start of the steep descent: a conservative rule.
            ``"steepest"``: the LR where ``numpy.gradient`` of the smoothed loss
            against ``log10(lr)`` (``"exp"`` mode) or ``lr`` (``"linear"``) is
            most negative. ``"minimum"``: the LR of the lowest smoothed loss,
            divided by 10.
        skip_start : int, optional
            Points ignored at the start (>= 0); default ``num_iters // 10``.
        skip_end : int, default=5
            Points ignored at the end (>= 0).

        Returns
        -------
        float
            The suggested learning rate.

        Raises
        ------
        SuggestionError
            If fewer than 10 points remain or the smoothed loss does not fall by
            at least 1 % of its level; the message says what to change.

        Examples
        --------
        >>> import numpy as np
        >>> lrs = np.geomspace(1e-4, 1.0, 60)
        >>> loss = np.where(lrs < 0.1, 1.0 - 0.1 * np.log10(lrs / 1e-4), 9.0)
        >>> result = RangeTestResult(lrs, loss)   # falls until lr = 0.1, then jumps up
        >>> 0.005 < result.suggest("minimum") < 0.01
        True
        >>> RangeTestResult(lrs, np.ones(60)).suggest()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        helpers.lr_finder.SuggestionError: the smoothed loss does not decrease: ... Widen the sweep ...
        """
        _validate.choice("method", method, SUGGEST_METHODS)
        skip_start = self.num_iters // 10 if skip_start is None else skip_start
        _validate.integer("skip_start", skip_start, low=0)
        _validate.integer("skip_end", skip_end, low=0)
        lrs, losses = self._window(skip_start, skip_end)
        if method == "valley":
            idx = _valley_index(losses)
        elif method == "steepest":
            x = np.log10(lrs) if self.step_mode == "exp" else lrs
            idx = int(np.argmin(np.gradient(losses, x)))
        else:
            return float(lrs[int(np.argmin(losses))] / 10)
        return float(lrs[idx])

    def suggestions(self) -> dict:
        """All suggestions that can be made, as ``{method: lr}``.

        The keys are the rule names of :meth:`suggest` (``"valley"``,
        ``"steepest"``, ``"minimum"``); the value under ``"minimum"`` is already
        divided by 10 (printed summaries and legends call it ``minimum/10``).

        Examples
        --------
        >>> import numpy as np
        >>> RangeTestResult(np.geomspace(1e-4, 1.0, 5), np.ones(5)).suggestions()
        {}
        """
        out = {}
        for method in SUGGEST_METHODS:
            try:
                out[method] = self.suggest(method)
            except SuggestionError:
                pass
        return out

    def plot(self, ax=None, suggestions: Sequence[str] = SUGGEST_METHODS):
        """Plot loss against learning rate and mark the suggestions.

        The raw loss is drawn faint, the smoothed loss bold; each suggestion is
        a dashed vertical line plus a marker on the smoothed curve, with its
        value in the legend. A suggestion that cannot be made is listed in the
        legend as unavailable, with the reason. With several runs the curves are
        the per-step medians, a faint band spans the runs' smoothed curves
        (min to max at each step), and each rule's :meth:`suggest_interval` is
        a shaded span in the rule's colour.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw into; a new figure is created if omitted.
        suggestions : sequence of {"valley", "steepest", "minimum"}
            Suggestions to mark; pass ``()`` for none.

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> lrs = np.geomspace(1e-5, 1.0, 101)
        >>> ax = RangeTestResult(lrs, 2.0 - np.tanh(np.log10(lrs) + 3)).plot()
        >>> ax.get_xscale(), ax.get_xlabel()
        ('log', 'learning rate')
        >>> curves = [2.0 - np.tanh(np.log10(lrs) + c) for c in (2.5, 3.0, 3.5)]
        >>> ax = RangeTestResult(lrs, np.median(curves, axis=0), run_losses=curves).plot()
        >>> len(ax.collections), len(ax.patches)   # the band, and one span per rule
        (1, 3)
        """
        import matplotlib.pyplot as plt

        if isinstance(suggestions, str):
            suggestions = (suggestions,)
        for method in suggestions:
            _validate.choice("suggestions", method, SUGGEST_METHODS)
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 4.2))
        several = self.n_runs > 1
        median = f" (median of {self.n_runs} runs)" if several else ""
        ax.plot(self.lrs, self.raw_losses, color="C0", alpha=0.3, lw=1, label="raw loss" + median)
        ax.plot(self.lrs, self.losses, color="C0", lw=2, label="smoothed loss" + median)
        if several:
            low, high = self._band()
            ax.fill_between(self.lrs, low, high, color="C0", alpha=0.15, lw=0,
                            label=f"smoothed loss, range of {self.n_runs} runs")
        markers = {"valley": "o", "steepest": "s", "minimum": "^"}
        for method in suggestions:
            color, marker = RULE_COLORS[method], markers[method]
            if several:
                try:
                    a, b = self.suggest_interval(method)
                    ax.axvspan(a, b, color=color, alpha=0.15, lw=0,
                               label=f"{RULE_LABELS[method]} over runs: {a:.2e} to {b:.2e}")
                except SuggestionError:
                    pass
            try:
                lr = self.suggest(method)
            except SuggestionError as err:
                ax.plot([], [], " ", label=f"{RULE_LABELS[method]}: unavailable ({err.reason})")
                continue
            ax.axvline(lr, color=color, ls="--", lw=1)
            ax.plot([lr], [self._loss_at(lr)], marker=marker, color=color, ms=8, ls="none",
                    label=f"{RULE_LABELS[method]}: {lr:.2e}")
        if self.step_mode == "exp":
            ax.set_xscale("log")
        self._clip_y(ax)
        ax.set_xlabel("learning rate")
        ax.set_ylabel(("validation" if self.validation else "training") + " loss")
        ax.set_title(f"LR range test ({self._status()})")
        legend_outside(ax)
        return ax

    def _clip_y(self, ax) -> None:
        """Zoom on the informative part: the exploding tail would flatten everything else."""
        finite = np.asarray(self.losses)[np.isfinite(self.losses)]
        if finite.size < 2:
            return
        raw = np.asarray(self.raw_losses)[np.isfinite(self.raw_losses)]
        # The smoothed curve lags the raw one: keep the raw minimum in view too.
        low, first = min(finite.min(), raw.min() if raw.size else np.inf), finite[0]
        if self.n_runs > 1:
            band = self._band()[0]
            if np.isfinite(band).any():
                low = min(low, float(np.nanmin(band)))
        top = max(first, low) + 0.5 * abs(first - low) + 1e-12
        ax.set_ylim(low - 0.1 * (top - low), top)

    def __repr__(self) -> str:
        if len(self.lrs):
            span = f"lr {self.lrs[0]:.3g} -> {self.lrs[-1]:.3g}"
        else:
            span = "no points recorded"
        found = self.suggestions()  # keys are rule names; the "minimum" rule's value is minimum/10
        sugg = ", ".join(f"{RULE_LABELS[k]}={v:.3g}" for k, v in found.items()) or "none (see .suggest())"
        runs = f"median of {self.n_runs} runs, " if self.n_runs > 1 else ""
        return (
            f"RangeTestResult({runs}{self.step_mode} sweep, {len(self.lrs)}/{self.num_iters} points, {span}, "
            f"{self._status()}; suggestions: {sugg})"
        )

    # -- internals -----------------------------------------------------------
    def _status(self) -> str:
        if self.stop_reason == "completed":
            return "completed"
        return f"{self.stop_reason} at iteration {self.stopped_at}"

    def _band(self):
        """Per-step min and max of the runs' smoothed curves (over the runs that reached the step)."""
        return _per_step(self.run_losses, len(self.lrs), np.min), _per_step(self.run_losses, len(self.lrs), np.max)

    def _window(self, skip_start: int, skip_end: int):
        n = len(self.lrs)
        stop = max(n - skip_end, 0)
        lrs, losses = self.lrs[skip_start:stop], self.losses[skip_start:stop]
        if len(lrs) < MIN_POINTS:
            raise SuggestionError(
                f"too few points to suggest a learning rate: {n} recorded, {len(lrs)} left after skipping "
                f"the first {skip_start} and the last {skip_end} (need {MIN_POINTS}). Run more iterations "
                f"(num_iters), or, if the test diverged early, lower end_lr.",
                "too few points",
            )
        low = int(np.argmin(losses))
        peak = float(np.max(losses[: low + 1]))
        drop = (peak - float(losses[low])) / max(abs(peak), abs(float(losses[low])), np.finfo(float).tiny)
        if drop < MIN_RELATIVE_DROP:
            raise SuggestionError(
                f"the smoothed loss does not decrease: its largest drop is {drop:.2%} of its level "
                f"(< {MIN_RELATIVE_DROP:.0%}). Widen the sweep (lower start_lr, raise end_lr), run more "
                f"iterations, or check that the model can learn at all.",
                "no descent",
            )
        return lrs, losses

    def _loss_at(self, lr: float) -> float:
        if self.step_mode == "exp":
            return float(np.interp(np.log10(lr), np.log10(self.lrs), self.losses))
        return float(np.interp(lr, self.lrs, self.losses))


def _as_curve(name: str, values) -> np.ndarray:
    arr = np.array(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _per_step(curves, n: int, reduce=np.median) -> np.ndarray:
    """``reduce`` over the curves at each step ``0 .. n - 1``, using the curves long enough to have it."""
    out = np.empty(n)
    for i in range(n):
        values = [c[i] for c in curves if len(c) > i]
        out[i] = reduce(values) if values else np.nan
    return out


def _valley_index(losses: np.ndarray) -> int:
    """fastai's ``valley`` rule, vectorised over the inner loop.

    Returns the index halfway (up to 1.5 points before the middle) along the longest
    strictly decreasing subsequence, ``max_start + int(L / 3) + int(L / 6)`` with
    ``max_start = max_end - L``: the middle of that stretch by index (in log-LR for an
    exponential sweep), not a fixed fraction of the loss drop.
    """
    n = len(losses)
    lds = np.ones(n, dtype=np.int64)  # longest decreasing subsequence ending at i
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
    max_end = int(np.argmax(lds))  # first index with the longest run, as in fastai
    max_start = max_end - int(lds[max_end])
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return min(max(idx, 0), n - 1)  # fastai would wrap -1 to the last point


# -- the test --------------------------------------------------------------------
def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: Callable[[Any, Any], torch.Tensor],
    train_loader: Iterable,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iters: int = 100,
    step_mode: str = "exp",
    smooth: float = 0.98,
    diverge_th: float = 4.0,
    val_loader: Optional[Iterable] = None,
    device: Optional[DeviceLike] = None,
    progress: bool = True,
    runs: int = 1,
    param_group: Optional[int] = None,
    val_batches: Optional[int] = None,
) -> RangeTestResult:
    """Run a learning-rate range test and restore everything it touched.

    See the module docstring for the exact schedule, smoothing and stopping
    rules.

    Parameters
    ----------
    model : torch.nn.Module
        Model to probe (at least one parameter). It is called as ``model(inputs)``,
        after ``model.train()``; its own modes are restored afterwards.
    optimizer : torch.optim.Optimizer
        Optimizer over the model's parameters; its hyper-parameters other than
        ``lr`` are used as they are.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar tensor.
    train_loader : iterable
        Re-iterable source of batches (a ``DataLoader``, a list, ...), each a
        pair ``(inputs, targets)`` or a dict with one input key (``"input"``,
        ``"inputs"``, ``"x"``) and one target key (``"target"``, ``"targets"``,
        ``"label"``, ``"labels"``, ``"y"``). Tensors, also inside tuples, lists
        and dicts, are moved to ``device``. It is iterated again as often as
        needed to supply ``num_iters`` batches.
    start_lr : float, default=1e-7
        First learning rate, > 0.
    end_lr : float, default=10.0
        Last learning rate, > ``start_lr``.
    num_iters : int, default=100
        Number of iterations (one batch each), >= 2.
    step_mode : {"exp", "linear"}, default="exp"
        Geometric or arithmetic sweep.
    smooth : float, default=0.98
        Beta of the bias-corrected moving average, in [0, 1); 0 disables smoothing.
    diverge_th : float, default=4.0
        Stop once the smoothed loss exceeds ``diverge_th`` times its best value; > 1.
    val_loader : iterable, optional
        If given, the recorded loss is the batch-size-weighted mean of
        ``criterion`` over this loader (its first ``val_batches`` batches if
        that is given) after each step (model in eval mode, no gradients).
        Same batch formats as ``train_loader``; must be re-iterable.
    device : str, int or torch.device, optional
        Where to run. ``None`` uses the device of the model's first parameter.
        Otherwise the model (and the optimizer state) is moved there for the
        test and put back exactly afterwards.
    progress : bool, default=True
        Show a ``tqdm.auto`` progress bar with the current lr and smoothed loss.
    runs : int, default=1
        Number of sweeps, >= 1, each from the same model and optimizer state
        (restored between runs) over the same learning rates but with a
        different data order: run ``k >= 1`` re-seeds the global generators
        from the call-time torch RNG state and ``k``, then skips ``k`` batches
        (module docstring). ``train_loader`` must then be re-iterable (not a
        one-shot iterator). The result's ``losses``/``raw_losses`` are the
        per-step medians over the runs that reached each step,
        ``run_losses``/``run_raw_losses`` every run's curves, and
        ``suggest_interval(method)`` the spread of a rule over the runs. Costs
        ``runs`` times one test; ``runs=1`` is the plain test.
    param_group : int, optional
        Index of the only parameter group to sweep, in
        ``[0, len(optimizer.param_groups) - 1]``; the other groups train with
        their own learning rates meanwhile (discriminative fine-tuning: probe the
        head while the backbone keeps its small rate). ``None`` (default) sweeps
        every group with the same rate.
    val_batches : int, optional
        With ``val_loader`` only: evaluate on its first ``val_batches`` batches
        (>= 1) after each step instead of all of them (a cheaper, noisier
        validation-loss test; all are used if it has fewer). Use a loader that
        does not shuffle, so every step sees the same batches.

    Returns
    -------
    RangeTestResult
        ``lrs``, ``losses`` (smoothed), ``raw_losses``, ``stop_reason``,
        ``diverged``, ``interrupted``, ``stopped_at``, plus ``suggest()``,
        ``suggestions()`` and ``plot()``; with several runs also
        ``run_losses``, ``run_raw_losses``, ``run_stop_reasons`` and
        ``suggest_interval()``. For several runs ``stop_reason`` and
        ``stopped_at`` are those of the run that recorded most points (the
        first such), except that an interrupt is always reported, at the
        iteration of the run it stopped.

    Raises
    ------
    ValueError
        For an invalid argument (the message names it) or a batch in an
        unsupported format. Any exception from the model, criterion or loader
        propagates once the state has been restored.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(512, 4)
    >>> y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    >>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    >>> model = nn.Linear(4, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> before = model.weight.detach().clone()
    >>> result = lr_range_test(model, opt, nn.MSELoss(), loader, start_lr=1e-4, end_lr=10.0,
    ...                        num_iters=60, progress=False)
    >>> torch.equal(model.weight, before), opt.param_groups[0]["lr"], opt.state_dict()["state"]
    (True, 0.1, {})
    >>> result.diverged, 1e-3 < result.suggest("valley") < 1.0
    (True, True)

    Three runs with different batch orders, a median curve and the spread of a rule:

    >>> state = torch.get_rng_state()
    >>> result = lr_range_test(model, opt, nn.MSELoss(), loader, start_lr=1e-4, end_lr=10.0,
    ...                        num_iters=60, runs=3, progress=False)
    >>> result.n_runs, torch.equal(torch.get_rng_state(), state), torch.equal(model.weight, before)
    (3, True, True)
    >>> low, high = result.suggest_interval("valley")   # the rule's spread over the 3 runs
    >>> bool(0 < low <= high), len(result.run_losses), result.losses.shape == result.raw_losses.shape
    (True, 3, True)

    Sweep only the second parameter group (the first keeps lr=1e-3), and a
    validation-loss test on the first 2 batches of a validation loader:

    >>> body, head = nn.Linear(4, 8), nn.Linear(8, 1)
    >>> net = nn.Sequential(body, nn.ReLU(), head)
    >>> opt2 = torch.optim.SGD([{"params": body.parameters(), "lr": 1e-3}, {"params": head.parameters()}], lr=0.1)
    >>> val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:128], y[:128]), batch_size=32)
    >>> result = lr_range_test(net, opt2, nn.MSELoss(), loader, num_iters=20, param_group=1,
    ...                        val_loader=val, val_batches=2, progress=False)
    >>> result.validation, len(result.lrs) > 0, [g["lr"] for g in opt2.param_groups]
    (True, True, [0.001, 0.1])
    """
    device = _check_arguments(
        model, optimizer, criterion, train_loader, start_lr, end_lr, num_iters,
        step_mode, smooth, diverge_th, val_loader, device, progress,
    )
    _check_new_arguments(optimizer, train_loader, val_loader, runs, param_group, val_batches)
    lrs = _sweep(start_lr, end_lr, num_iters, step_mode)
    batch_device = next(model.parameters()).device if device is None else device
    snapshot = _Snapshot(model, optimizer, batch_device)
    records = []
    try:
        for k in range(runs):
            records.append(_Record())  # first, so that an interrupt from here on lands on this run
            if k:
                snapshot.restore()  # every run starts from the same state
                _reseed(_run_seed(snapshot.rng.torch, k), cuda=snapshot.rng.cuda is not None)
            _prepare(model, optimizer, device)
            desc = "LR range test" if runs == 1 else f"LR range test (run {k + 1}/{runs})"
            _run(model, optimizer, criterion, train_loader, val_loader, lrs, smooth, diverge_th, batch_device,
                 progress, records[-1], param_group=param_group, val_batches=val_batches, skip=k, desc=desc)
    except KeyboardInterrupt:
        records[-1].interrupt()
    finally:
        snapshot.restore()
    last = records[-1]
    if last.reason == "interrupted":
        where = f" of run {len(records)}/{runs}" if runs > 1 else ""
        warnings.warn(
            f"lr_range_test interrupted at iteration {last.stopped_at}{where}; the model and optimizer were "
            "restored and the partial result is returned",
            RuntimeWarning,
            stacklevel=2,
        )
    if runs == 1:
        return RangeTestResult(
            lrs=last.lrs, losses=last.losses, raw_losses=last.raw, step_mode=step_mode,
            num_iters=num_iters, stop_reason=last.reason, stopped_at=last.stopped_at,
            validation=val_loader is not None,
        )
    return _combine(records, lrs, step_mode, num_iters, val_loader is not None)


def _combine(records: list, lrs: list, step_mode: str, num_iters: int, validation: bool) -> RangeTestResult:
    """Median curves over the runs, plus every run's curves."""
    n = max(len(r.losses) for r in records)
    longest = next(r for r in records if len(r.losses) == n)
    summary = records[-1] if records[-1].reason == "interrupted" else longest
    smoothed = [np.array(r.losses, dtype=float) for r in records]
    raw = [np.array(r.raw, dtype=float) for r in records]
    return RangeTestResult(
        lrs=lrs[:n], losses=_per_step(smoothed, n), raw_losses=_per_step(raw, n), step_mode=step_mode,
        num_iters=num_iters, stop_reason=summary.reason, stopped_at=summary.stopped_at, validation=validation,
        run_losses=smoothed, run_raw_losses=raw, run_stop_reasons=[r.reason for r in records],
    )


def _run_seed(torch_state: torch.Tensor, k: int) -> int:
    """Seed of run ``k``: 63 bits of BLAKE2b over the call-time torch CPU RNG state and ``k``."""
    digest = hashlib.blake2b(torch_state.numpy().tobytes() + k.to_bytes(8, "little"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _reseed(seed: int, cuda: bool) -> None:
    """Seed the global generators of one run (CUDA only if the test captured its state)."""
    torch.default_generator.manual_seed(seed)  # not torch.manual_seed: that would queue a lazy CUDA seed
    if cuda:
        torch.cuda.manual_seed_all(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _sweep(start_lr: float, end_lr: float, num_iters: int, step_mode: str) -> list:
    last = num_iters - 1
    if step_mode == "exp":
        lrs = [start_lr * (end_lr / start_lr) ** (i / last) for i in range(num_iters)]
    else:
        lrs = [start_lr + (end_lr - start_lr) * (i / last) for i in range(num_iters)]
    lrs[-1] = end_lr
    return lrs


class _Record:
    """Growing curves plus why and where the test stopped."""

    def __init__(self) -> None:
        self.lrs, self.losses, self.raw = [], [], []
        self.reason, self.stopped_at = "completed", None

    def stop(self, reason: str, at: int) -> None:
        self.reason, self.stopped_at = reason, at

    def interrupt(self) -> None:
        n = min(len(self.lrs), len(self.raw), len(self.losses))  # the signal may land between appends
        del self.lrs[n:], self.raw[n:], self.losses[n:]
        self.stop("interrupted", n)


def _run(model, optimizer, criterion, train_loader, val_loader, lrs, smooth, diverge_th, device, progress, record,
         *, param_group=None, val_batches=None, skip=0, desc="LR range test"):
    batches = _cycle(train_loader, "train_loader")
    bar = None
    try:
        for _ in range(skip):  # a different starting batch for each run
            next(batches)
        bar = _progress_bar(len(lrs), desc) if progress else None
        avg, best = 0.0, math.inf
        for i, lr in enumerate(lrs):
            _set_lr(optimizer, lr, param_group)
            inputs, targets = _split_batch(next(batches), "train_loader")
            loss = _train_step(model, optimizer, criterion, _to(inputs, device), _to(targets, device))
            if val_loader is not None and math.isfinite(loss):
                loss = _evaluate(model, criterion, val_loader, device, val_batches)
            if not math.isfinite(loss):
                record.stop("non-finite loss", i)
                return
            avg = smooth * avg + (1 - smooth) * loss
            smoothed = avg / (1 - smooth ** (i + 1))
            record.lrs.append(lr)
            record.raw.append(loss)
            record.losses.append(smoothed)
            if bar is not None:
                bar.set_postfix(lr=f"{lr:.2e}", loss=f"{smoothed:.4g}", refresh=False)
                bar.update()
            if best > 0 and smoothed > diverge_th * best:
                record.stop("diverged", i)
                return
            best = min(best, smoothed)
    finally:
        batches.close()  # shuts down DataLoader workers now, not at garbage collection
        if bar is not None:
            bar.close()


def _progress_bar(total: int, desc: str = "LR range test"):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _prepare(model: nn.Module, optimizer: torch.optim.Optimizer, device: Optional[torch.device]) -> None:
    """Start from no gradients, in train mode, on ``device`` if one was given."""
    for p in model.parameters():
        p.grad = None  # the originals are kept by the snapshot and put back afterwards
    if device is not None and any(t.device != device for t in _tensors(model)):
        model.to(device)
        _move_optimizer_state(optimizer)
    model.train()


def _move_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    # Mirrors Optimizer.load_state_dict: "step" stays on the CPU unless the group is capturable or fused.
    for group in optimizer.param_groups:
        on_param_device = group.get("capturable", False) or group.get("fused", False)
        for p in group["params"]:
            state = optimizer.state.get(p)
            for key, value in (state or {}).items():
                if torch.is_tensor(value) and value.device != p.device and (key != "step" or on_param_device):
                    state[key] = value.to(p.device)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float, param_group: Optional[int] = None) -> None:
    groups = optimizer.param_groups if param_group is None else [optimizer.param_groups[param_group]]
    for group in groups:
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(lr)  # tensor LRs (capturable optimizers) must stay the same object
        else:
            group["lr"] = lr


def _train_step(model, optimizer, criterion, inputs, targets) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss = _scalar(criterion(model(inputs), targets))
    loss.backward()
    value = loss.item()  # after backward, so the GPU is not idled by an early sync
    if math.isfinite(value):
        optimizer.step()
    return value


def _evaluate(model, criterion, val_loader, device, val_batches: Optional[int] = None) -> float:
    model.eval()
    total = weight = 0.0
    with torch.no_grad():
        for count, batch in enumerate(val_loader, 1):
            inputs, targets = _split_batch(batch, "val_loader")
            n = _batch_size(targets)
            total += _scalar(criterion(model(_to(inputs, device)), _to(targets, device))).item() * n
            weight += n
            if count == val_batches:
                break  # before asking the loader for one more batch
    model.train()
    if weight == 0:
        raise ValueError("val_loader yielded no batches; pass a re-iterable loader such as a DataLoader or a list")
    return total / weight


def _scalar(loss) -> torch.Tensor:
    if not torch.is_tensor(loss) or loss.numel() != 1:
        found = f"shape {tuple(loss.shape)}" if torch.is_tensor(loss) else type(loss).__name__
        raise ValueError(f"criterion must return a scalar tensor, got {found}")
    return loss


def _batch_size(targets) -> int:
    return int(targets.shape[0]) if torch.is_tensor(targets) and targets.dim() > 0 else 1


def _cycle(loader: Iterable, name: str) -> Iterator:
    """Yield batches forever, re-iterating ``loader`` whenever it runs out."""
    count = 0
    while True:
        before = count
        for batch in loader:
            count += 1
            yield batch
        if count == before:
            raise ValueError(f"{name} yielded no batches")
        if isinstance(loader, Iterator):
            raise ValueError(
                f"{name} was exhausted after {count} batches and cannot be restarted (it is an iterator); "
                f"pass a re-iterable such as a DataLoader or a list, or use num_iters <= {count}"
            )


def _split_batch(batch, name: str):
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        inputs = [k for k in _INPUT_KEYS if k in batch]
        targets = [k for k in _TARGET_KEYS if k in batch]
        if len(inputs) == 1 and len(targets) == 1:
            return batch[inputs[0]], batch[targets[0]]
        found = f"a dict with keys {sorted(map(str, batch))}"
    elif isinstance(batch, (tuple, list)):
        found = f"a {type(batch).__name__} of length {len(batch)}"
    else:
        found = f"a {type(batch).__name__}"
    raise ValueError(
        f"{name} must yield (inputs, targets) pairs or dicts with exactly one input key "
        f"{_INPUT_KEYS} and one target key {_TARGET_KEYS}; got {found}"
    )


def _to(obj, device: Optional[torch.device]):
    if device is None:
        return obj
    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, Mapping):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


# -- argument checks ---------------------------------------------------------------
def _check_arguments(
    model, optimizer, criterion, train_loader, start_lr, end_lr, num_iters,
    step_mode, smooth, diverge_th, val_loader, device, progress,
) -> Optional[torch.device]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    first = next(model.parameters(), None)
    if first is None:
        raise ValueError("model must have at least one parameter")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not callable(criterion):
        raise ValueError(f"criterion must be callable, got {type(criterion).__name__}")
    _check_loader("train_loader", train_loader)
    if val_loader is not None:
        _check_loader("val_loader", val_loader)
    start_lr = _validate.positive("start_lr", start_lr)
    _validate.positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr ({start_lr!r}), got {end_lr!r}")
    _validate.integer("num_iters", num_iters, low=2)
    _validate.choice("step_mode", step_mode, STEP_MODES)
    _validate.number("smooth", smooth, low=0, high=1, high_open=True)
    _validate.number("diverge_th", diverge_th, low=1, low_open=True)
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    return None if device is None else _check_device(device)


def _check_new_arguments(optimizer, train_loader, val_loader, runs, param_group, val_batches) -> None:
    _validate.integer("runs", runs, low=1)
    if runs > 1 and isinstance(train_loader, Iterator):
        raise ValueError(
            f"runs > 1 needs a re-iterable train_loader (a DataLoader, a list, ...), got a one-shot "
            f"{type(train_loader).__name__}; pass runs=1 or a re-iterable loader"
        )
    if param_group is not None:
        _validate.integer("param_group", param_group, low=0, high=len(optimizer.param_groups) - 1)
    if val_batches is not None:
        if val_loader is None:
            raise ValueError(f"val_batches needs a val_loader (it limits the validation batches), got "
                             f"val_batches={val_batches!r} and val_loader=None")
        _validate.integer("val_batches", val_batches, low=1)


def _check_loader(name: str, loader) -> None:
    if not isinstance(loader, Iterable):
        raise ValueError(f"{name} must be an iterable of batches (e.g. a DataLoader), got {type(loader).__name__}")
    try:
        empty = len(loader) == 0
    except TypeError:  # iterable-style datasets have no length
        empty = False
    if empty:
        raise ValueError(f"{name} must not be empty")


def _check_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None, a torch.device or a device string, got {device!r}") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} is not available: CUDA is not available")
        if dev.index is None:  # compare equal to tensors' "cuda:N" devices
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


# -- exact restoration ---------------------------------------------------------------
def _tensors(model: nn.Module):
    for module in model.modules():
        for slots in (module._parameters, module._buffers):
            yield from (t for t in slots.values() if t is not None)


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True)


class _Snapshot:
    """One CPU copy of everything the test changes, put back bitwise by ``restore``.

    Original tensor objects are reinstated and their values copied back, so
    references held elsewhere (the optimizer's to the parameters, a user's to
    a buffer) stay valid, also after a device round trip. ``restore`` can be
    called several times (between the runs of a repeated test): it puts the
    optimizer's original per-parameter state dicts back with their saved
    contents and hands out fresh copies of non-tensor values, so nothing a run
    mutates can leak into the saved state.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        self.model = model
        self.optimizer = optimizer
        self.training = [(m, m.training) for m in model.modules()]
        self.slots, self.tensors = [], {}
        for module in model.modules():
            for kind in ("_parameters", "_buffers"):
                for name, t in getattr(module, kind).items():
                    if t is None:
                        continue
                    self.slots.append((getattr(module, kind), name, t))
                    if id(t) not in self.tensors:  # shared (tied) tensors are copied once
                        grad = t.grad if t.is_leaf else None  # .grad of a non-leaf buffer is meaningless
                        self.tensors[id(t)] = (t, t.data, grad, _cpu_copy(t))
        self.state_values = []  # (tensor, copy) for tensors held by the optimizer
        self.state = {p: (s, {k: self._keep(v) for k, v in s.items()}) for p, s in optimizer.state.items()}
        self.groups = [{k: v if k == "params" else self._keep(v) for k, v in g.items()} for g in optimizer.param_groups]
        self.rng = _RngState(device)

    def _keep(self, value):
        if torch.is_tensor(value):
            self.state_values.append((value, _cpu_copy(value)))
            return value
        return copy.deepcopy(value)

    def restore(self) -> None:
        with torch.no_grad():
            for slots, name, t in self.slots:
                slots[name] = t
            for t, data, grad, saved in self.tensors.values():
                if t.is_leaf:
                    t.grad = None  # a stale grad on another device would block the next line
                t.data = data  # reattach the original storage (undoes a device move)
                data.copy_(saved)
                if t.is_leaf:
                    t.grad = grad
            for t, saved in self.state_values:
                t.copy_(saved)
        for module, flag in self.training:
            module.training = flag
        self.optimizer.state.clear()
        for p, (original, saved) in self.state.items():
            original.clear()
            original.update(_fresh(saved))
            self.optimizer.state[p] = original
        for group, saved in zip(self.optimizer.param_groups, self.groups):
            group.clear()
            group.update(_fresh(saved))
        self.rng.restore()


def _fresh(saved: dict) -> dict:
    """``saved`` with its non-tensor values deep-copied (tensors and the params list are the originals)."""
    return {k: v if k == "params" or torch.is_tensor(v) else copy.deepcopy(v) for k, v in saved.items()}


class _RngState:
    """Global random states: torch CPU, CUDA (when in use), Python and NumPy."""

    def __init__(self, device: torch.device) -> None:
        self.torch = torch.get_rng_state()
        # Reading CUDA states would initialise CUDA; skip it when nothing uses CUDA.
        use_cuda = torch.cuda.is_available() and (torch.cuda.is_initialized() or device.type == "cuda")
        self.cuda = torch.cuda.get_rng_state_all() if use_cuda else None
        self.python = random.getstate()
        self.numpy = np.random.get_state()

    def restore(self) -> None:
        torch.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)
        random.setstate(self.python)
        np.random.set_state(self.numpy)


# -- exercises: range tests to diagnose ------------------------------------------------------------
PITFALL_EXAMPLES = {
    "end_lr too low": {"end_lr": 0.1},
    "no smoothing": {"smooth": 0.0},
    "too few iterations": {"num_iters": 20},
    "start_lr too high": {"start_lr": 1e-2},
}
"""Four one-change range tests (``lr_range_test`` keyword arguments, otherwise the defaults),
named by the pitfall each shows; the default of :func:`mystery_range_tests`."""


def mystery_range_tests(make_run: Callable[[], tuple], criterion: Callable, settings: Optional[Mapping] = None, *,
                        key: int, labels: Optional[Sequence[str]] = None) -> dict:
    """Run one range test per setting and return the curves under shuffled labels.

    For a diagnosis exercise: the learner sees curves ``"A"``, ``"B"``, ... but not
    which setting made which, since the labels are assigned by a permutation drawn
    from ``numpy.random.default_rng(key)`` (the same on every machine, so a grader
    who knows ``key`` knows the answer). Every test starts from a fresh
    ``make_run()`` and runs ``lr_range_test`` with its defaults, changed only by
    that setting's keyword arguments.

    Parameters
    ----------
    make_run : callable
        Called once per setting with no arguments; returns ``(model, optimizer,
        train_loader)`` (further items, such as a validation loader, are ignored).
    criterion : callable
        The loss, as for :func:`lr_range_test`.
    settings : mapping of str to dict, optional
        ``{name: lr_range_test keyword arguments}``, 1 to 26 entries; default
        :data:`PITFALL_EXAMPLES`.
    key : int >= 0
        Seeds the label permutation (not the training runs: seed those in ``make_run``).
    labels : sequence of str, optional
        Distinct labels, one per setting; default ``"A"``, ``"B"``, ...

    Returns
    -------
    dict
        ``{label: RangeTestResult}`` in label order.

    Raises
    ------
    ValueError
        For a ``make_run`` that is not callable, empty or non-dict settings, a
        negative or non-integer ``key``, or labels that are not distinct strings,
        one per setting.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> def make_run():
    ...     torch.manual_seed(0)
    ...     model = nn.Linear(4, 2)
    ...     data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
    ...     return model, torch.optim.SGD(model.parameters(), lr=1e-3), data
    >>> curves = mystery_range_tests(make_run, nn.CrossEntropyLoss(),
    ...                              {"short": {"num_iters": 12}, "long": {"num_iters": 40}}, key=0)
    >>> sorted(curves), sorted(c.num_iters for c in curves.values())
    (['A', 'B'], [12, 40])
    """
    if not callable(make_run):
        raise ValueError(f"make_run must be a callable returning (model, optimizer, train_loader), got {make_run!r}")
    settings = PITFALL_EXAMPLES if settings is None else settings
    if not isinstance(settings, Mapping) or not 1 <= len(settings) <= 26:
        raise ValueError(f"settings must be a mapping with 1 to 26 entries, got {settings!r}")
    for name, kwargs in settings.items():
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"settings[{name!r}] must be a dict of lr_range_test arguments, got {kwargs!r}")
    key = _validate.integer("key", key, low=0)
    labels = [chr(ord("A") + i) for i in range(len(settings))] if labels is None else list(labels)
    if (len(labels) != len(settings) or len(set(labels)) != len(labels)
            or not all(isinstance(label, str) and label for label in labels)):
        raise ValueError(f"labels must be {len(settings)} distinct non-empty strings, got {labels!r}")
    order = np.random.default_rng(key).permutation(len(settings))
    names = list(settings)
    curves = {}
    for label, index in zip(labels, order):
        model, optimizer, train_loader = tuple(make_run())[:3]
        curves[label] = lr_range_test(model, optimizer, criterion, train_loader, progress=False,
                                      **dict(settings[names[index]]))
    return curves
