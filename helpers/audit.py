"""Record the learning rates an optimizer really applied, and check them against a plan.

A schedule that looks right on paper can still be applied wrongly: ``scheduler.step()``
called before ``optimizer.step()``, once per micro-batch with gradient accumulation, once
per process, or never; steps that ``torch.amp.GradScaler`` skipped while the scheduler kept
stepping; a resume that restarted the schedule. :class:`LRAudit` watches one optimizer
through its own step hooks and records, for every optimizer step that updated the
parameters, the learning rate (and momentum or ``betas[0]``) of each param group as that
step used it. :meth:`LRAudit.compare` checks the record against the planned LRs and, at
the first mismatch, names the pattern that explains the whole trace (:class:`LRMismatch`);
:meth:`LRAudit.assert_matches` does the same as an ``assert``; :meth:`LRAudit.summary`
counts the mismatching steps; :meth:`LRAudit.plot` draws both. Ready callbacks for the
Hugging Face ``Trainer`` and for Lightning are in :mod:`helpers.audit_callbacks`.

Conventions (all exact):

* Steps are counted from 0 over the optimizer steps that updated the parameters while
  the audit was attached. ``GradScaler`` handles an overflow (inf/NaN gradients) in one
  of two ways, and neither is recorded: for most optimizers it does not call
  ``optimizer.step()`` at all; for those that unscale inside their own kernel
  (``_step_supports_amp_scaling``: fused Adam, AdamW, SGD, the default ``adamw_torch_fused``
  of the Hugging Face ``Trainer``) it does call it, with ``optimizer.found_inf`` set, and
  the kernel leaves the parameters unchanged. The audit keeps where it saw such skips
  (:attr:`LRAudit.skipped`). A step that raised is not recorded either.
* The values are read just before the step (step pre-hook) and kept once it has returned
  (step post-hook): the LR a step used, not the one a scheduler sets after it. Reading a
  tensor LR costs one ``.item()``; ``found_inf`` is kept as a tensor and read only when
  the record is read, so the audit adds no other device synchronisation per step.
* A plan is a sequence of LRs for plan steps ``0, 1, ...`` or a function ``step -> lr``.
  ``compare(plan, start=k)`` checks the audit's step ``i`` against plan step ``k + i``
  (an audit attached after ``k`` steps, or a run resumed at step ``k``).
* Two LRs match within a relative tolerance that follows the LR's dtype
  (:func:`helpers.audit_diagnosis.tolerance`: ``1e-9`` for Python floats, about ``1e-6``
  for a float32 tensor LR); :meth:`compare`, :meth:`summary` and :meth:`plot` share it.

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

from collections.abc import Mapping, Sequence
from typing import Optional, Union

import numpy as np
import torch

from . import _validate
from .audit_diagnosis import (AuditSummary, LRMismatch, Plan, as_plan, first_mismatch,
                              mismatching_steps, relative_errors, tolerance)

__all__ = ["LRAudit", "LRMismatch", "AuditSummary", "unwrap_optimizer"]

# Machine epsilon of the floating dtypes an LR tensor may have (the tolerance follows it).
_EPS = {dtype: float(torch.finfo(dtype).eps) for dtype in
        (torch.float64, torch.float32, torch.float16, torch.bfloat16)}
# A fused optimizer under GradScaler gets a ``found_inf`` tensor at every step; the audit
# reads them in batches of this many (one device synchronisation each), or when read.
SETTLE_EVERY = 1024
# How many ``.optimizer`` attributes deep a wrapper may hide the torch optimizer.
MAX_WRAPPING = 4


def unwrap_optimizer(optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside ``optimizer``: itself, or the one in its ``.optimizer``.

    accelerate's ``AcceleratedOptimizer`` passes ``isinstance(..., Optimizer)`` without having
    run ``Optimizer.__init__`` (it has no hooks of its own), and Lightning's
    ``LightningOptimizer`` is no ``Optimizer`` at all; both keep the real one in
    ``.optimizer``, which is the one that steps.

    Raises
    ------
    TypeError
        If neither ``optimizer`` nor a chain of ``.optimizer`` attributes leads to a
        ``torch.optim.Optimizer`` with step hooks.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from helpers.schedules import dummy_optimizer
    >>> opt = dummy_optimizer()
    >>> unwrap_optimizer(SimpleNamespace(optimizer=opt)) is opt
    True
    """
    current = optimizer
    for _ in range(MAX_WRAPPING):  # the innermost optimizer: Lightning's wrapper is an Optimizer too
        inner = getattr(current, "optimizer", None)
        if inner is None or inner is current:
            break
        current = inner
    if isinstance(current, torch.optim.Optimizer) and hasattr(current, "_optimizer_step_pre_hooks"):
        return current
    raise TypeError(
        "optimizer must be a torch.optim.Optimizer, or a wrapper whose .optimizer is one "
        "(accelerate's AcceleratedOptimizer, Lightning's LightningOptimizer), got "
        f"{type(optimizer).__name__}")


class LRAudit:
    """Record the LR (and momentum) of every param group at every optimizer step that ran.

    Attaches a step pre-hook and a step post-hook to the optimizer
    (``Optimizer.register_step_pre_hook`` / ``register_step_post_hook``) when built; they
    stay until :meth:`remove` or the end of a ``with`` block. Several audits of one
    optimizer are independent.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer, or a wrapper of one
        The optimizer to watch (any subclass; its ``param_groups`` need an ``"lr"``), or
        an object that wraps one in ``.optimizer`` (accelerate's ``AcceleratedOptimizer``,
        Lightning's ``LightningOptimizer``): the audit watches the one inside.
    names : sequence of str, optional
        A name per param group, usable wherever a group index is (``lrs("head")``).
        Without it a group's ``"name"`` key is used if it has one.

    Attributes
    ----------
    steps : int
        Number of optimizer steps recorded (steps that updated the parameters).
    skipped : list of int
        Steps the audit saw the optimizer skip (a fused optimizer under ``GradScaler``
        with inf/NaN gradients): ``j`` means "after ``j`` recorded steps". Skips of
        optimizers that ``GradScaler`` does not call at all are invisible here.
    active : bool
        Whether the hooks are still attached.
    optimizer : torch.optim.Optimizer
        The optimizer watched (the one inside a wrapper).

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

    def __init__(self, optimizer, names: Optional[Sequence[str]] = None) -> None:
        optimizer = unwrap_optimizer(optimizer)
        self._optimizer = optimizer
        self._names = None if names is None else self._check_names(names, len(optimizer.param_groups))
        self._lrs: list[tuple[float, ...]] = []
        self._momenta: list[tuple[Optional[float], ...]] = []
        self._found_inf: list[tuple[int, torch.Tensor]] = []  # (record index, tensor), read lazily
        self._skipped: list[int] = []
        self._eps: dict[int, float] = {}  # group -> machine epsilon of its tensor LR, if any
        self._pending = None  # values read before the step, kept once it has returned
        self._handles = [optimizer.register_step_pre_hook(self._before_step),
                         optimizer.register_step_post_hook(self._after_step)]

    @staticmethod
    def _check_names(names, count: int) -> tuple[str, ...]:
        if isinstance(names, str) or not isinstance(names, Sequence) or len(names) != count \
                or not all(isinstance(n, str) for n in names) or len(set(names)) != count:
            raise ValueError(f"names must be {count} distinct strings (one per param group), got {names!r}")
        return tuple(names)

    # ------------------------------------------------------------------ recording
    def _before_step(self, optimizer, args, kwargs) -> None:
        lrs = []
        for index, group in enumerate(optimizer.param_groups):
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                eps = _EPS.get(lr.dtype, 0.0)
                if eps > self._eps.get(index, 0.0):
                    self._eps[index] = eps
                lr = lr.item()
            lrs.append(float(lr))
        # Set by GradScaler around the step of an optimizer that unscales in its kernel.
        found_inf = getattr(optimizer, "found_inf", None)
        self._pending = (tuple(lrs), tuple(_momentum(g) for g in optimizer.param_groups), found_inf)

    def _after_step(self, optimizer, args, kwargs) -> None:
        # A step that raised never gets here: its pending values are dropped by the next step.
        if self._pending is None:
            return
        lrs, momenta, found_inf = self._pending
        self._pending = None
        if found_inf is not None:
            self._found_inf.append((len(self._lrs), found_inf.detach()))
        self._lrs.append(lrs)
        self._momenta.append(momenta)
        if len(self._found_inf) >= SETTLE_EVERY:  # bounded memory: one device read per SETTLE_EVERY steps
            self._settle()

    def _settle(self) -> None:
        """Drop the recorded steps whose ``found_inf`` was set (one device read for all)."""
        if not self._found_inf:
            return
        pending, self._found_inf = self._found_inf, []
        flags = torch.stack([t.reshape(()).float().cpu() for _, t in pending]).tolist()
        drop = [index for (index, _), flag in zip(pending, flags) if flag != 0]
        if not drop:
            return
        drop_set = set(drop)
        for count, index in enumerate(drop):  # "after j recorded steps", j in the kept numbering
            self._skipped.append(index - count)
        self._lrs = [v for i, v in enumerate(self._lrs) if i not in drop_set]
        self._momenta = [v for i, v in enumerate(self._momenta) if i not in drop_set]

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
        self._settle()
        return len(self._lrs)

    @property
    def skipped(self) -> list[int]:
        self._settle()
        return list(self._skipped)

    @property
    def active(self) -> bool:
        return bool(self._handles)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    @property
    def names(self) -> tuple[str, ...]:
        """The name of each param group: given, its ``"name"`` key, or its index as text."""
        if self._names is not None:
            return self._names
        return tuple(str(g.get("name", i)) for i, g in enumerate(self._optimizer.param_groups))

    def __repr__(self) -> str:
        state = "active" if self.active else "removed"
        return f"LRAudit(steps={self.steps}, groups={len(self._optimizer.param_groups)}, {state})"

    # ------------------------------------------------------------------ reading
    def lrs(self, group: Union[int, str] = 0) -> list[float]:
        """The LR of param group ``group`` at each step that ran, in order.

        Parameters
        ----------
        group : int or str, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``, or its
            name (:attr:`names`).

        Returns
        -------
        list of float
            One value per recorded step (see the class Notes for groups added later).

        Examples
        --------
        >>> import torch
        >>> w, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1)
        >>> audit = LRAudit(opt, names=["body", "head"])
        >>> opt.step(); opt.step()
        >>> audit.lrs(0), audit.lrs("head")
        ([0.1, 0.1], [0.01, 0.01])
        """
        group = self._group(group)
        self._settle()
        return [values[group] for values in self._lrs if group < len(values)]

    def momenta(self, group: Union[int, str] = 0) -> list[float]:
        """The momentum (``momentum``, or ``betas[0]`` for Adam-like optimizers) of a group per step.

        Parameters
        ----------
        group : int or str, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``, or its name.

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
        self._settle()
        return [values[group] for values in self._momenta if group < len(values) and values[group] is not None]

    def _group(self, group) -> int:
        if isinstance(group, str):
            names = self.names
            if group not in names:
                raise ValueError(f"group must be a param group index or one of the names {list(names)}, "
                                 f"got {group!r}")
            return names.index(group)
        return _validate.integer("group", group, low=0, high=len(self._optimizer.param_groups) - 1)

    # ------------------------------------------------------------------ checking
    def _arrays(self, expected: Plan, group, start) -> tuple[np.ndarray, np.ndarray, int]:
        index = self._group(group)
        start = _validate.integer("start", start, low=0)
        applied = np.asarray(self.lrs(index), dtype=float)
        return applied, as_plan(expected, len(applied), start), index

    def _rtol(self, rtol: Optional[float], group: int) -> float:
        return tolerance(rtol, self._eps.get(group, 0.0))

    def compare(self, expected: Plan, group: Union[int, str] = 0, rtol: Optional[float] = None,
                start: int = 0) -> Optional[LRMismatch]:
        """Check the applied LRs of one group against a plan; the first mismatch, or ``None``.

        Two LRs match when ``|applied - planned| <= rtol * max(|applied|, |planned|)``, or
        when they differ by at most ``rtol / 1000`` times the largest planned LR (schedules
        that end at zero). At the first mismatch the whole trace is tested against, in this
        order: a constant LR; a restart (from step ``r`` on, the plan again from its step
        0); the plan shifted ``k`` steps ahead or behind; the plan stepped ``k`` times per
        optimizer step (applied LR at step ``i`` equal to the plan's at ``k * i + offset``,
        ``0 <= offset < k``; with ``k`` processes in ``torch.distributed``, once per process
        is named first); the plan with a few steps left out (skipped steps, and where).
        A pattern is named only if it holds at every step where the plan has the value it
        predicts (at least 3 steps); otherwise the reason is ``"unexplained"``. No recorded
        step is a mismatch (``"no steps"``), never a pass.

        Parameters
        ----------
        expected : sequence of float, or callable
            The planned LRs of plan steps ``0, 1, ...`` (list, tuple, NumPy array or 1-D
            tensor of finite numbers), or a function ``step -> lr`` evaluated at plan steps
            ``start .. start + steps - 1``. With a sequence, its length must equal
            ``start + steps`` too.
        group : int or str, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``, or its name.
        rtol : float, optional
            Relative tolerance, ``>= 0`` (0: exact). Default: ``1e-9``, or about ``1e-6`` when
            the group's LR is a float32 tensor (:func:`helpers.audit_diagnosis.tolerance`).
        start : int, default 0
            The plan step of the audit's step 0, ``>= 0``: the number of optimizer steps that
            ran before the audit was attached (or before a resume).

        Returns
        -------
        LRMismatch or None
            ``None`` when at least one step was recorded and every applied LR matches.

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
        >>> LRAudit(dummy_optimizer()).compare([0.1]).reason
        'no steps'
        """
        applied, planned, index = self._arrays(expected, group, start)
        origin = as_plan(expected, len(applied), 0) if start and len(applied) else None
        return first_mismatch(applied, planned, self._rtol(rtol, index), seen_skips=tuple(self.skipped),
                              processes=_processes(), start=start, origin=origin)

    def assert_matches(self, expected: Plan, group: Union[int, str, None] = None,
                       rtol: Optional[float] = None, start: int = 0) -> None:
        """``assert`` that the applied LRs match the plan; the diagnosis is the message.

        Parameters
        ----------
        expected, rtol, start
            As for :meth:`compare`.
        group : int or str, optional
            The group to check; by default every group (the same plan for each).

        Raises
        ------
        AssertionError
            ``"LR audit, group <name>: <LRMismatch>"`` at the first group that differs.

        Examples
        --------
        >>> from helpers.schedules import dummy_optimizer
        >>> opt = dummy_optimizer(lr=0.1)
        >>> audit = LRAudit(opt)
        >>> opt.step(); opt.step()
        >>> audit.assert_matches([0.1, 0.1])
        >>> audit.assert_matches([0.1, 0.05])
        Traceback (most recent call last):
        ...
        AssertionError: LR audit, group 0: step 1: planned lr 0.05, applied 0.1 — no simple pattern ...
        """
        groups = range(len(self._optimizer.param_groups)) if group is None else [self._group(group)]
        for index in groups:
            mismatch = self.compare(expected, group=index, rtol=rtol, start=start)
            if mismatch is not None:
                raise AssertionError(f"LR audit, group {self.names[index]}: {mismatch}")

    def summary(self, expected: Plan, group: Union[int, str] = 0, rtol: Optional[float] = None,
                start: int = 0) -> AuditSummary:
        """Counts and the largest error of one group against a plan (:class:`AuditSummary`).

        Parameters are those of :meth:`compare`. ``str()`` of the result is one line.

        Examples
        --------
        >>> from helpers.schedules import dummy_optimizer
        >>> opt = dummy_optimizer(lr=0.1)
        >>> audit = LRAudit(opt)
        >>> for lr in (0.1, 0.1, 0.11):
        ...     opt.param_groups[0]["lr"] = lr
        ...     opt.step()
        >>> result = audit.summary([0.1, 0.1, 0.1])
        >>> result.mismatching, round(result.max_rel_error, 6), result.worst_step
        (1, 0.1, 2)
        """
        applied, planned, index = self._arrays(expected, group, start)
        rtol_used = self._rtol(rtol, index)
        errors = relative_errors(applied, planned)
        worst = int(np.argmax(errors)) if errors.size and errors.max() > 0 else None
        return AuditSummary(self.names[index], len(applied),
                            int(mismatching_steps(applied, planned, rtol_used).size),
                            float(errors.max()) if errors.size else 0.0, worst,
                            first_mismatch(applied, planned, rtol_used, seen_skips=tuple(self.skipped),
                                           processes=_processes(), start=start), rtol_used)

    def plot(self, expected: Optional[Plan] = None, group: Union[int, str] = 0, ax=None,
             rtol: Optional[float] = None, start: int = 0):
        """Plot the applied LRs (markers) against the planned ones (line), mismatches marked.

        Parameters
        ----------
        expected : sequence of float, or callable, optional
            The plan, as for :meth:`compare`; without it only the applied LRs are drawn.
        group : int or str, default 0
            Index of the param group, in ``[0, len(optimizer.param_groups) - 1]``, or its name.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into; a new figure is created if omitted.
        rtol, start
            As for :meth:`compare` (the same tolerance rule marks the mismatches).

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

        index = self._group(group)
        applied = np.asarray(self.lrs(index), dtype=float)
        planned = None if expected is None else self._arrays(expected, index, start)[1]
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 3.8))
        label = self.names[index]
        title = f"LR audit, group {label}: {len(applied)} steps"
        if planned is not None:
            ax.plot(np.arange(len(planned)), planned, color="C0", lw=1.5, label="planned lr")
        ax.plot(np.arange(len(applied)), applied, ls="none", marker="o", ms=4, color="C1", label="applied lr")
        if planned is not None:
            rtol_used = self._rtol(rtol, index)
            bad = mismatching_steps(applied, planned, rtol_used)
            if bad.size:
                ax.plot(bad, applied[bad], ls="none", marker="x", ms=9, mew=2, color="C3",
                        label=f"mismatch ({bad.size} step{'' if bad.size == 1 else 's'})")
            mismatch = first_mismatch(applied, planned, rtol_used, seen_skips=tuple(self.skipped),
                                      processes=_processes(), start=start)
            title = f"LR audit, group {label}: " + (
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


def _processes() -> int:
    """Processes in the default ``torch.distributed`` group (1 when there is none)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
