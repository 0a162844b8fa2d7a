"""Record the learning rates an optimizer really applied, and check them against a plan.

A schedule that looks right on paper can still be applied wrongly: ``scheduler.step()``
called before ``optimizer.step()``, once per micro-batch with gradient accumulation, or
never; steps that ``torch.amp.GradScaler`` skipped while the scheduler kept stepping.
:class:`LRAudit` watches one optimizer through its own step hooks and records, for every
``optimizer.step()`` that ran, the learning rate (and momentum or ``betas[0]``) of each
param group as that step used it. :meth:`LRAudit.compare` checks the record against the
planned LRs and, at the first mismatch, names the pattern that explains the whole trace
(:class:`LRMismatch`); :meth:`LRAudit.plot` draws both.

Conventions (all exact):

* Steps are counted from 0 over the ``optimizer.step()`` calls that ran while the audit was
  attached. A step that ``GradScaler`` skips (inf/NaN gradients) never calls
  ``optimizer.step()``, so it is not recorded; neither is a step that raised.
* The values are read just before the step (step pre-hook) and kept once it has returned
  (step post-hook): the LR a step used, not the one a scheduler sets after it.
* A plan is a sequence of LRs for steps ``0, 1, ...`` or a function ``step -> lr``
  (evaluated at the steps that ran).

Examples
--------
>>> from torch.optim.lr_scheduler import StepLR
>>> from helpers.schedules import dummy_optimizer
>>> opt = dummy_optimizer(lr=0.1)
>>> sched = StepLR(opt, step_size=2, gamma=0.5)
>>> with LRAudit(opt) as audit:
...     for _ in range(5):
...         opt.step()
...         sched.step()
>>> audit.lrs()
[0.1, 0.1, 0.05, 0.05, 0.025]
>>> after_step = [0.1, 0.05, 0.05, 0.025, 0.025]  # LRs read after each scheduler.step()
>>> print(audit.compare(after_step))
step 1: planned lr 0.05, applied 0.1 — the schedule is 1 step behind, every applied lr is the \
one planned 1 step earlier (was the plan recorded after scheduler.step() instead of before \
optimizer.step(), or was the scheduler first stepped 1 step late?)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch

from . import _validate

__all__ = ["LRAudit", "LRMismatch"]

REASONS = ("ahead", "behind", "constant", "stepped too often", "fewer steps", "more steps",
           "unexplained")
# A pattern is named only when it holds at this many steps or more: with fewer, a
# piecewise-constant plan (StepLR) matches too many patterns by coincidence.
MIN_CHECKED = 3
# Largest shift / scheduler steps per optimizer step tried; keeps compare() linear in
# the number of steps (GradScaler skips and accumulation factors are far smaller).
MAX_K = 128

Plan = Union[Sequence[float], np.ndarray, torch.Tensor, Callable[[int], float]]


@dataclass(frozen=True)
class LRMismatch:
    """The first step whose applied LR differs from the plan, returned by :meth:`LRAudit.compare`.

    ``str()`` gives a one-line explanation that names the mistake when a simple pattern
    explains the whole trace, and asks the question that leads to the fix.

    Attributes
    ----------
    step : int
        Index (from 0) of the first mismatching step among the steps that ran.
    expected : float or None
        The planned LR at ``step``; ``None`` when more steps ran than were planned.
    applied : float or None
        The LR that step used; ``None`` when fewer steps ran than were planned.
    reason : str
        One of ``"ahead"``, ``"behind"`` (the applied LRs are the plan shifted by ``k``
        steps), ``"constant"`` (the LR never changed), ``"stepped too often"`` (applied
        LR at step ``i`` is the plan's at ``k * i + offset``), ``"fewer steps"``, ``"more steps"``
        (the values agree but the lengths differ), ``"unexplained"`` (none of these).
    k : int
        The shift or the number of scheduler steps per optimizer step; 0 if not used.
    ran : int
        Number of optimizer steps that ran (recorded).
    planned : int
        Number of planned LRs (equal to ``ran`` for a function).
    offset : int
        For ``"stepped too often"``: the applied LR at step ``i`` is the plan's at
        ``k * i + offset`` (``k - 1`` when the scheduler also stepped on the micro-batches
        before the first optimizer step); else 0.

    Examples
    --------
    >>> print(LRMismatch(step=3, expected=0.1, applied=None, reason="fewer steps", ran=3, planned=5))
    step 3: planned lr 0.1, no step ran — only 3 optimizer steps ran, 5 planned (did GradScaler \
skip steps with inf/NaN gradients, or did the loop stop early?)
    """

    step: int
    expected: Optional[float]
    applied: Optional[float]
    reason: str
    k: int = 0
    ran: int = 0
    planned: int = 0
    offset: int = 0

    def __post_init__(self) -> None:
        _validate.choice("reason", self.reason, REASONS)

    @property
    def summary(self) -> str:
        """A few words for a plot title, e.g. ``"1 step ahead"``."""
        k, s = self.k, "" if self.k == 1 else "s"
        return {"ahead": f"{k} step{s} ahead", "behind": f"{k} step{s} behind",
                "constant": "lr never changed", "stepped too often": f"{k} scheduler steps per step",
                "fewer steps": "fewer steps than planned", "more steps": "more steps than planned",
                "unexplained": "no simple pattern"}[self.reason]

    def __str__(self) -> str:
        text = f"step {self.step}: {self._values()} — {self._explanation()}"
        if self.ran != self.planned and self.reason not in ("fewer steps", "more steps"):
            text += f" ({self.ran} steps ran, {self.planned} planned)"
        return text

    def _values(self) -> str:
        if self.applied is None:
            return f"planned lr {_fmt(self.expected)}, no step ran"
        if self.expected is None:
            return f"nothing planned, applied {_fmt(self.applied)}"
        planned, applied = _fmt_pair(self.expected, self.applied)
        return f"planned lr {planned}, applied {applied}"

    def _explanation(self) -> str:
        k, s = self.k, "" if self.k == 1 else "s"
        if self.reason == "ahead":
            return (f"the schedule is {k} step{s} ahead, every applied lr is the one planned {k} step{s} "
                    f"later (was scheduler.step() called before optimizer.step(), or did GradScaler "
                    f"skip {k} step{s} while the scheduler kept stepping?)")
        if self.reason == "behind":
            return (f"the schedule is {k} step{s} behind, every applied lr is the one planned {k} step{s} "
                    f"earlier (was the plan recorded after scheduler.step() instead of before "
                    f"optimizer.step(), or was the scheduler first stepped {k} step{s} late?)")
        if self.reason == "constant":
            return (f"the applied lr never changed, {_fmt(self.applied)} at all {self.ran} steps "
                    f"(is scheduler.step() ever called, on a scheduler built for this optimizer?)")
        if self.reason == "stepped too often":
            at = f"{k}*i" + (f" + {self.offset}" if self.offset else "")
            return (f"the schedule advances {k} steps per optimizer step, the applied lr at step i is "
                    f"the one planned for step {at} (is scheduler.step() called once per micro-batch "
                    f"with gradient accumulation? call it once per optimizer.step())")
        if self.reason == "fewer steps":
            return (f"only {self.ran} optimizer steps ran, {self.planned} planned (did GradScaler skip "
                    f"steps with inf/NaN gradients, or did the loop stop early?)")
        if self.reason == "more steps":
            return (f"{self.ran} optimizer steps ran, {self.planned} planned (does the loop run longer "
                    f"than the schedule was built for, or did several runs share this audit?)")
        return ("no simple pattern (a shift, a constant lr, several scheduler steps per optimizer "
                "step) explains the whole trace (compare audit.lrs() with the plan around this step: "
                "was the lr set by hand, or was the plan built with other settings?)")


class LRAudit:
    """Record the LR (and momentum) of every param group at every optimizer step that ran.

    Attaches a step pre-hook and a step post-hook to ``optimizer``
    (``Optimizer.register_step_pre_hook`` / ``register_step_post_hook``) when built; they
    stay until :meth:`remove` or the end of a ``with`` block. Several audits of one
    optimizer are independent.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer to watch (any subclass; its ``param_groups`` need an ``"lr"``).

    Attributes
    ----------
    steps : int
        Number of optimizer steps recorded (steps that ran while attached).
    active : bool
        Whether the hooks are still attached.

    Notes
    -----
    A param group added later with ``add_param_group`` has values only for the steps
    after it was added, so its step 0 is its first step.

    Examples
    --------
    >>> import torch
    >>> from torch.optim.lr_scheduler import OneCycleLR
    >>> from helpers.schedules import dummy_optimizer, trace
    >>> opt = dummy_optimizer(lr=0.1)  # SGD(momentum=0.9) over a parameter without gradient
    >>> sched = OneCycleLR(opt, max_lr=1.0, total_steps=10)
    >>> with LRAudit(opt) as audit:
    ...     for _ in range(10):
    ...         opt.step()
    ...         sched.step()
    >>> audit.steps, round(max(audit.lrs()), 6), round(min(audit.momenta()), 6)
    (10, 1.0, 0.85)
    >>> plan = trace(OneCycleLR(dummy_optimizer(lr=0.1), max_lr=1.0, total_steps=10), 10)
    >>> audit.compare(plan) is None
    True
    >>> audit.active
    False
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self._optimizer = optimizer
        self._lrs: list[tuple[float, ...]] = []
        self._momenta: list[tuple[Optional[float], ...]] = []
        self._pending = None  # values read before the step, kept once it has returned
        self._handles = [optimizer.register_step_pre_hook(self._before_step),
                         optimizer.register_step_post_hook(self._after_step)]

    # ------------------------------------------------------------------ recording
    def _before_step(self, optimizer, args, kwargs) -> None:
        groups = optimizer.param_groups
        self._pending = (tuple(float(g["lr"]) for g in groups), tuple(_momentum(g) for g in groups))

    def _after_step(self, optimizer, args, kwargs) -> None:
        # A step that raised never gets here: its pending values are dropped by the next step.
        if self._pending is not None:
            self._lrs.append(self._pending[0])
            self._momenta.append(self._pending[1])
            self._pending = None

    def remove(self) -> None:
        """Detach the hooks (calling it again does nothing); what was recorded stays readable.

        Examples
        --------
        >>> from helpers.schedules import dummy_optimizer
        >>> opt = dummy_optimizer()
        >>> audit = LRAudit(opt)
        >>> opt.step(); audit.remove(); audit.remove(); opt.step()
        >>> audit.steps, audit.active
        (1, False)
        """
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._pending = None

    def __enter__(self) -> "LRAudit":
        return self

    def __exit__(self, *exc_info) -> bool:
        self.remove()
        return False  # never swallow the exception of the with block

    @property
    def steps(self) -> int:
        return len(self._lrs)

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def __repr__(self) -> str:
        state = "active" if self.active else "removed"
        return f"LRAudit(steps={self.steps}, groups={len(self._optimizer.param_groups)}, {state})"

    # ------------------------------------------------------------------ reading
    def lrs(self, group: int = 0) -> list[float]:
        """The LR of param group ``group`` at each step that ran, in order.

        Parameters
        ----------
        group : int, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``.

        Returns
        -------
        list of float
            One value per recorded step (see the class Notes for groups added later).

        Examples
        --------
        >>> import torch
        >>> w, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1)
        >>> audit = LRAudit(opt)
        >>> opt.step(); opt.step()
        >>> audit.lrs(0), audit.lrs(1)
        ([0.1, 0.1], [0.01, 0.01])
        """
        group = self._group(group)
        return [values[group] for values in self._lrs if group < len(values)]

    def momenta(self, group: int = 0) -> list[float]:
        """The momentum (``momentum``, or ``betas[0]`` for Adam-like optimizers) of a group per step.

        Parameters
        ----------
        group : int, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``.

        Returns
        -------
        list of float
            One value per recorded step; empty for an optimizer without momentum (Adagrad).

        Examples
        --------
        >>> import torch
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], betas=(0.8, 0.99))
        >>> audit = LRAudit(opt)
        >>> opt.step()
        >>> audit.momenta()
        [0.8]
        """
        group = self._group(group)
        return [values[group] for values in self._momenta if group < len(values) and values[group] is not None]

    def _group(self, group) -> int:
        return _validate.integer("group", group, low=0, high=len(self._optimizer.param_groups) - 1)

    # ------------------------------------------------------------------ checking
    def compare(self, expected: Plan, group: int = 0, rtol: float = 1e-9) -> Optional[LRMismatch]:
        """Check the applied LRs of one group against a plan; the first mismatch, or ``None``.

        Two LRs match when ``|applied - planned| <= rtol * max(|applied|, |planned|)``, or
        when they differ by at most ``rtol / 1000`` times the largest planned LR (schedules
        that end at zero). At the first mismatch the whole trace is tested against, in this
        order: a constant LR; the plan shifted ``k`` steps ahead or behind (``k = 1, 2, ...``);
        the plan stepped ``k`` times per optimizer step (applied LR at step ``i`` equal to
        the plan's at ``k * i + offset``, ``0 <= offset < k``). A pattern is named only if it holds
        at every step where the plan has the value it predicts (at least 3 steps); otherwise
        the reason is ``"unexplained"``.

        Parameters
        ----------
        expected : sequence of float, or callable
            The planned LRs of steps ``0, 1, ...`` (list, tuple, NumPy array or 1-D tensor
            of finite numbers), or a function ``step -> lr`` evaluated at every step that ran.
            With a sequence, its length must equal :attr:`steps` too.
        group : int, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``.
        rtol : float, default 1e-9
            Relative tolerance, ``>= 0`` (0: exact).

        Returns
        -------
        LRMismatch or None
            ``None`` when every applied LR matches its planned value (vacuously for a
            function and no steps).

        Examples
        --------
        >>> from torch.optim.lr_scheduler import ExponentialLR
        >>> from helpers.schedules import dummy_optimizer, exponential_lr
        >>> opt = dummy_optimizer(lr=1.0)
        >>> sched = ExponentialLR(opt, gamma=0.5)
        >>> audit = LRAudit(opt)
        >>> for _ in range(6):
        ...     opt.step()
        ...     sched.step(); sched.step()  # stepped twice per optimizer step: a bug
        >>> mismatch = audit.compare(lambda step: exponential_lr(step, 1.0, gamma=0.5))
        >>> mismatch.step, mismatch.expected, mismatch.applied, mismatch.reason, mismatch.k
        (1, 0.5, 0.25, 'stepped too often', 2)
        >>> audit.compare([1.0, 0.5, 0.25, 0.125, 0.0625])
        LRMismatch(step=1, expected=0.5, applied=0.25, reason='stepped too often', k=2, ran=6, planned=5, offset=0)
        """
        applied = np.asarray(self.lrs(group), dtype=float)
        rtol = _validate.non_negative("rtol", rtol)
        return _first_mismatch(applied, _plan(expected, len(applied)), rtol)

    def plot(self, expected: Optional[Plan] = None, group: int = 0, ax=None):
        """Plot the applied LRs (markers) against the planned ones (line), mismatches marked.

        Parameters
        ----------
        expected : sequence of float, or callable, optional
            The plan, as for :meth:`compare`; without it only the applied LRs are drawn.
        group : int, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into; a new figure is created if omitted.

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from helpers.schedules import dummy_optimizer
        >>> opt = dummy_optimizer(lr=0.1)
        >>> audit = LRAudit(opt)
        >>> for _ in range(4):
        ...     opt.step()
        >>> ax = audit.plot([0.1, 0.1, 0.05, 0.05])
        >>> [line.get_label() for line in ax.get_lines()]
        ['planned lr', 'applied lr', 'mismatch (2 steps)']
        >>> ax.get_title()
        'LR audit, group 0: first mismatch at step 2 (lr never changed)'
        """
        import matplotlib.pyplot as plt

        from .plots import legend_outside  # imported here: recording needs no matplotlib

        applied = np.asarray(self.lrs(group), dtype=float)
        planned = None if expected is None else _plan(expected, len(applied))
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 3.8))
        title = f"LR audit, group {group}: {len(applied)} steps"
        if planned is not None:
            ax.plot(np.arange(len(planned)), planned, color="C0", lw=1.5, label="planned lr")
        ax.plot(np.arange(len(applied)), applied, ls="none", marker="o", ms=4, color="C1", label="applied lr")
        if planned is not None:
            bad = _mismatching_steps(applied, planned, rtol=1e-9)
            if bad.size:
                ax.plot(bad, applied[bad], ls="none", marker="x", ms=9, mew=2, color="C3",
                        label=f"mismatch ({bad.size} step{'' if bad.size == 1 else 's'})")
            mismatch = _first_mismatch(applied, planned, rtol=1e-9)
            title = f"LR audit, group {group}: " + (
                "matches the plan" if mismatch is None
                else f"first mismatch at step {mismatch.step} ({mismatch.summary})")
        ax.set(xlabel="optimizer step (steps that ran)", ylabel="learning rate", title=title)
        ax.grid(alpha=0.3)
        legend_outside(ax)
        return ax


# ---------------------------------------------------------------------- helpers
def _momentum(group: Mapping) -> Optional[float]:
    if "betas" in group:
        return float(group["betas"][0])
    if "momentum" in group:
        return float(group["momentum"])
    return None


def _scalar(value):
    """A one-element tensor or array as a Python number; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (np.ndarray, np.generic)) and value.size == 1:
        return value.item()
    return value


def _plan(expected, steps: int) -> np.ndarray:
    """The planned LRs as a float array: a sequence as given, a function at ``0 .. steps - 1``."""
    if callable(expected):
        return np.array([_validate.number(f"expected({i})", _scalar(expected(i))) for i in range(steps)],
                        dtype=float)
    if isinstance(expected, (str, bytes)) or not isinstance(expected, (Sequence, np.ndarray, torch.Tensor)):
        raise ValueError("expected must be a sequence of learning rates or a function step -> lr, "
                         f"got {type(expected).__name__}")
    return np.array([_validate.number(f"expected[{i}]", _scalar(v)) for i, v in enumerate(expected)],
                    dtype=float)


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    return np.abs(a - b) <= np.maximum(rtol * np.maximum(np.abs(a), np.abs(b)), atol)


def _atol(planned: np.ndarray, rtol: float) -> float:
    # Relative error is meaningless at an LR of exactly 0 (cosine, one-cycle ends).
    return rtol * 1e-3 * float(np.max(np.abs(planned))) if planned.size else 0.0


def _mismatching_steps(applied: np.ndarray, planned: np.ndarray, rtol: float) -> np.ndarray:
    """Indices of applied steps that differ from the plan, or have no planned value."""
    n = min(len(applied), len(planned))
    ok = _close(applied[:n], planned[:n], rtol, _atol(planned, rtol))
    return np.concatenate([np.flatnonzero(~ok), np.arange(n, len(applied))]).astype(int)


def _first_mismatch(applied: np.ndarray, planned: np.ndarray, rtol: float) -> Optional[LRMismatch]:
    n, m = len(applied), len(planned)
    overlap = min(n, m)
    atol = _atol(planned, rtol)
    ok = _close(applied[:overlap], planned[:overlap], rtol, atol)
    if not ok.all():
        step = int(np.argmin(ok))
        reason, k, offset = _diagnose(applied, planned, lambda a, b: _close(a, b, rtol, atol))
        return LRMismatch(step, float(planned[step]), float(applied[step]), reason, k, n, m, offset)
    if n != m:
        return LRMismatch(overlap, float(planned[overlap]) if m > n else None,
                          float(applied[overlap]) if n > m else None,
                          "fewer steps" if n < m else "more steps", 0, n, m)
    return None


def _diagnose(applied: np.ndarray, planned: np.ndarray, close) -> tuple[str, int, int]:
    """The simplest pattern that explains the whole trace: (reason, k, offset)."""
    n, m = len(applied), len(planned)
    overlap = min(n, m)
    if n >= MIN_CHECKED and close(applied, applied[0]).all() and not close(planned[:overlap], planned[0]).all():
        return "constant", 0, 0
    for k in range(1, min(max(n, m), MAX_K + 1)):
        if _holds(applied, planned[k:], close):  # applied[i] == planned[i + k]
            return "ahead", k, 0
        if _holds(applied[k:], planned, close):  # applied[i + k] == planned[i]
            return "behind", k, 0
        # applied[i] == planned[k * i + offset]: offset k - 1 when the scheduler also
        # stepped on the micro-batches before the first optimizer step.
        for offset in range(k if k > 1 else 0):
            if _holds(applied, planned[offset::k], close):
                return "stepped too often", k, offset
    return "unexplained", 0, 0


def _holds(applied: np.ndarray, planned: np.ndarray, close) -> bool:
    count = min(len(applied), len(planned))
    return count >= MIN_CHECKED and bool(close(applied[:count], planned[:count]).all())


def _fmt(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}"


def _fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Both numbers with the fewest digits (6 at least) that show them different."""
    for digits in (6, 9, 12, 17):
        if _fmt(a, digits) != _fmt(b, digits):
            break
    return _fmt(a, digits), _fmt(b, digits)
