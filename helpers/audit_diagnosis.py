"""What :class:`helpers.audit.LRAudit` says about a trace: the tolerance rule, the first
mismatch, and the pattern that explains the whole trace (:class:`LRMismatch`).

Everything here works on plain arrays (``applied``: the LRs the steps used; ``planned``:
the plan from the step the audit's step 0 corresponds to), so it is tested without an
optimizer. Every search is linear in the number of steps: shifts and scheduler steps
per optimizer step are tried up to :data:`MAX_K`; a restart and skipped steps are found
by one pass each, at any step.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np
import torch

from . import _validate

__all__ = ["LRMismatch", "AuditSummary", "DEFAULT_RTOL", "tolerance"]

REASONS = ("ahead", "behind", "constant", "stepped too often", "fewer steps", "more steps",
           "unexplained", "no steps", "skipped", "restarted")
# A pattern is named only when it holds at this many steps or more: with fewer, a
# piecewise-constant plan (StepLR) matches too many patterns by coincidence.
MIN_CHECKED = 3
# Largest shift / scheduler steps per optimizer step tried (keeps the search linear);
# restarts and skipped steps are found at any distance by their own passes.
MAX_K = 128
# Relative tolerance for LRs held as Python floats (float64): a plan computed another
# way (closed form vs. chained multiplications) differs by a few ulps.
DEFAULT_RTOL = 1e-9
# For an LR held in a lower-precision tensor: this many units of its dtype's rounding
# (float32: 8 * 1.2e-7 ~ 1e-6), enough for a scheduler's chained float32 products.
DTYPE_ULPS = 8

Plan = Union[Sequence[float], np.ndarray, torch.Tensor, Callable[[int], float]]


def tolerance(rtol: Optional[float], eps: float = 0.0) -> float:
    """The relative tolerance :meth:`LRAudit.compare` and :meth:`LRAudit.plot` both use.

    ``rtol`` if given (``>= 0``); else ``max(DEFAULT_RTOL, DTYPE_ULPS * eps)`` where
    ``eps`` is the machine epsilon of the LR's dtype (0 for Python floats).

    Examples
    --------
    >>> tolerance(None), tolerance(None, eps=float(torch.finfo(torch.float32).eps)) < 1e-6, tolerance(0.0)
    (1e-09, True, 0.0)
    """
    if rtol is not None:
        return _validate.non_negative("rtol", rtol)
    return max(DEFAULT_RTOL, DTYPE_ULPS * eps)


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
        LR at step ``i`` is the plan's at ``k * i + offset``), ``"restarted"`` (from step
        ``k`` on, the applied LRs repeat the plan from its step ``offset``: 0 when the
        scheduler was re-created, 1 when the optimizer's state was loaded and the
        scheduler's was not, so the first resumed step still used the saved LR), ``"skipped"`` (the
        applied LRs are the plan with the steps in ``skipped`` left out), ``"fewer steps"``,
        ``"more steps"`` (the values agree but the lengths differ), ``"no steps"`` (no
        optimizer step was recorded), ``"unexplained"`` (none of these).
    k : int
        The shift, the number of scheduler steps per optimizer step, or the step of the
        restart; 0 if not used.
    ran : int
        Number of optimizer steps that ran (recorded).
    planned : int
        Number of planned LRs (equal to ``ran`` for a function).
    offset : int
        For ``"stepped too often"``: the applied LR at step ``i`` is the plan's at
        ``k * i + offset`` (``k - 1`` when the scheduler also stepped on the micro-batches
        before the first optimizer step); for ``"restarted"``, the plan step the restart
        went back to (0 or 1); else 0.
    skipped : tuple of int
        For ``"skipped"``: the plan's steps whose LR no step used.
    seen_skips : tuple of int
        Steps the audit saw the optimizer skip (a fused optimizer called by ``GradScaler``
        with inf/NaN gradients): ``j`` means "skipped after ``j`` recorded steps".
    processes : int
        Number of processes of the ``torch.distributed`` group when compared (1 if none).
    start : int
        The plan step the audit's step 0 was compared with (``compare(..., start=)``).

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
    skipped: tuple = field(default=(), repr=False)
    seen_skips: tuple = field(default=(), repr=False)
    processes: int = field(default=1, repr=False)
    start: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        _validate.choice("reason", self.reason, REASONS)

    @property
    def summary(self) -> str:
        """A few words for a plot title, e.g. ``"1 step ahead"``."""
        k, s = self.k, "" if self.k == 1 else "s"
        n = len(self.skipped)
        return {"ahead": f"{k} step{s} ahead", "behind": f"{k} step{s} behind",
                "constant": "lr never changed", "stepped too often": f"{k} scheduler steps per step",
                "fewer steps": "fewer steps than planned", "more steps": "more steps than planned",
                "unexplained": "no simple pattern", "no steps": "no step recorded",
                "restarted": f"restarted at step {k}",
                "skipped": f"{n} planned step{'' if n == 1 else 's'} skipped"}[self.reason]

    def __str__(self) -> str:
        text = f"step {self.step}: {self._values()} — {self._explanation()}"
        if self.ran != self.planned and self.reason not in ("fewer steps", "more steps", "no steps"):
            text += f" ({self.ran} steps ran, {self.planned} planned)"
        return text

    def _values(self) -> str:
        if self.reason == "no steps":
            return "no optimizer step recorded"
        if self.applied is None:
            return f"planned lr {_fmt(self.expected)}, no step ran"
        if self.expected is None:
            return f"nothing planned, applied {_fmt(self.applied)}"
        planned, applied = _fmt_pair(self.expected, self.applied)
        return f"planned lr {planned}, applied {applied}"

    def _explanation(self) -> str:
        return getattr(self, "_explain_" + self.reason.replace(" ", "_"))()

    def _explain_ahead(self) -> str:
        k, s = self.k, "" if self.k == 1 else "s"
        causes = ["was scheduler.step() called before optimizer.step()",
                  f"did GradScaler skip {k} step{s} while the scheduler kept stepping"]
        if self.step == 0:  # a late audit sees the plan ahead from its very first step
            causes.append(f"was the audit attached after {k} step{s} had run (then use "
                          f"compare(plan, start={self.start + k}))")
        return (f"the schedule is {k} step{s} ahead, every applied lr is the one planned {k} step{s} "
                f"later ({', '.join(causes[:-1])}, or {causes[-1]}?){self._seen()}")

    def _explain_behind(self) -> str:
        k, s = self.k, "" if self.k == 1 else "s"
        return (f"the schedule is {k} step{s} behind, every applied lr is the one planned {k} step{s} "
                f"earlier (was the plan recorded after scheduler.step() instead of before "
                f"optimizer.step(), or was the scheduler first stepped {k} step{s} late?)")

    def _explain_constant(self) -> str:
        return (f"the applied lr never changed, {_fmt(self.applied)} at all {self.ran} steps "
                f"(is scheduler.step() ever called, on a scheduler built for this optimizer?)")

    def _explain_stepped_too_often(self) -> str:
        k = self.k
        at = f"{k}*i" + (f" + {self.offset}" if self.offset else "")
        micro = "is scheduler.step() called once per micro-batch with gradient accumulation?"
        if self.processes == k:
            cause = (f"does each of the {k} processes step the scheduler? accelerate steps a prepared "
                     f"scheduler once per process per optimizer step: build it for {k}x the steps, "
                     f"or prepare it with split_batches=True; or {micro}")
        else:
            cause = (f"{micro} call it once per optimizer.step(); or do {k} processes each step a "
                     f"scheduler prepared by accelerate?")
        return (f"the schedule advances {k} steps per optimizer step, the applied lr at step i is "
                f"the one planned for step {at} ({cause})")

    def _explain_restarted(self) -> str:
        k, earlier = self.k, self.start + self.k - self.offset  # plan steps between applied and planned
        if self.offset == 1:
            return (f"the schedule went back to its step 1 at step {k}: the step before used the lr "
                    f"planned for it, and from there every applied lr is the one planned {earlier} steps "
                    f"earlier (was the run resumed with the optimizer's state_dict loaded but not the "
                    f"scheduler's? the optimizer keeps the saved lr for one step, then the scheduler, "
                    f"still at its step 0, takes over)")
        return (f"the schedule restarted at step {k}: from there every applied lr is the one planned "
                f"{earlier} steps earlier, from the plan's step 0 (was the run resumed without loading the "
                f"scheduler's state_dict, or the scheduler re-created mid-run?)")

    def _explain_skipped(self) -> str:
        where = _fmt_steps(self.skipped)
        n, s = len(self.skipped), "" if len(self.skipped) == 1 else "s"
        return (f"{n} planned step{s} never ran ({where}): every applied lr is the plan's with "
                f"th{'is step' if n == 1 else 'ese steps'} left out (did GradScaler skip optimizer "
                f"steps with inf/NaN gradients while the scheduler kept stepping? step the scheduler "
                f"only when the optimizer stepped){self._seen()}")

    def _explain_fewer_steps(self) -> str:
        return (f"only {self.ran} optimizer steps ran, {self.planned} planned (did GradScaler skip "
                f"steps with inf/NaN gradients, or did the loop stop early?){self._seen()}")

    def _explain_more_steps(self) -> str:
        return (f"{self.ran} optimizer steps ran, {self.planned} planned (does the loop run longer "
                f"than the schedule was built for, or did several runs share this audit?)")

    def _explain_no_steps(self) -> str:
        return ("the audit recorded no optimizer step, so nothing was checked (is it attached to the "
                "optimizer that trains, e.g. not to a copy or to one re-created later, did the loop "
                "run while the audit was active, or did GradScaler skip every step?)")

    def _explain_unexplained(self) -> str:
        return ("no simple pattern (a shift, a constant lr, several scheduler steps per optimizer "
                "step, a restart, skipped steps) explains the whole trace (compare audit.lrs() with "
                "the plan around this step: was the lr set by hand, or was the plan built with other "
                "settings?)")

    def _seen(self) -> str:
        if not self.seen_skips:
            return ""
        n = len(self.seen_skips)
        return (f"; the audit saw the optimizer skip {n} update{'' if n == 1 else 's'} (inf/NaN "
                f"gradients) just before recorded {_fmt_steps(self.seen_skips)}")


@dataclass(frozen=True)
class AuditSummary:
    """What :meth:`LRAudit.summary` returns: counts and the largest error of one group.

    Attributes
    ----------
    group : str
        The group's name (or its index as text).
    steps : int
        Optimizer steps recorded.
    mismatching : int
        Steps whose LR differs from the plan, plus steps with no planned value.
    max_rel_error : float
        Largest ``|applied - planned| / |planned|`` over the steps with a planned value
        (``inf`` where the plan is 0 and the applied LR is not; 0.0 with no step).
    worst_step : int or None
        The step of ``max_rel_error`` (``None`` when it is 0).
    first : LRMismatch or None
        What :meth:`LRAudit.compare` returns.
    rtol : float
        The relative tolerance used.
    """

    group: str
    steps: int
    mismatching: int
    max_rel_error: float
    worst_step: Optional[int]
    first: Optional[LRMismatch]
    rtol: float

    def __str__(self) -> str:
        head = f"LR audit, group {self.group}: {self.steps} steps, {self.mismatching} differ from the plan"
        if self.worst_step is not None:
            head += f", largest relative error {self.max_rel_error:.3g} at step {self.worst_step}"
        return head + (f" (rtol {self.rtol:g}); " + ("matches the plan" if self.first is None
                                                      else f"first mismatch: {self.first}"))


# ---------------------------------------------------------------------- plans
def _scalar(value):
    """A one-element tensor or array as a Python number; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (np.ndarray, np.generic)) and value.size == 1:
        return value.item()
    return value


def as_plan(expected, steps: int, start: int = 0) -> np.ndarray:
    """The planned LRs from plan step ``start`` on: a sequence sliced, a function at ``start ..``."""
    if callable(expected):
        return np.array([_validate.number(f"expected({i})", _scalar(expected(i)))
                         for i in range(start, start + steps)], dtype=float)
    if isinstance(expected, (str, bytes)) or not isinstance(expected, (Sequence, np.ndarray, torch.Tensor)):
        raise ValueError("expected must be a sequence of learning rates or a function step -> lr, "
                         f"got {type(expected).__name__}")
    return np.array([_validate.number(f"expected[{i}]", _scalar(v)) for i, v in enumerate(expected)],
                    dtype=float)[start:]


# ---------------------------------------------------------------------- matching
def _close(a, b, rtol: float, atol: float) -> np.ndarray:
    return np.abs(a - b) <= np.maximum(rtol * np.maximum(np.abs(a), np.abs(b)), atol)


def _atol(planned: np.ndarray, rtol: float) -> float:
    # Relative error is meaningless at an LR of exactly 0 (cosine, one-cycle ends).
    return rtol * 1e-3 * float(np.max(np.abs(planned))) if planned.size else 0.0


def mismatching_steps(applied: np.ndarray, planned: np.ndarray, rtol: float) -> np.ndarray:
    """Indices of applied steps that differ from the plan, or have no planned value."""
    n = min(len(applied), len(planned))
    ok = _close(applied[:n], planned[:n], rtol, _atol(planned, rtol))
    return np.concatenate([np.flatnonzero(~ok), np.arange(n, len(applied))]).astype(int)


def relative_errors(applied: np.ndarray, planned: np.ndarray) -> np.ndarray:
    """``|applied - planned| / |planned|`` over the overlap (0 where both are 0)."""
    n = min(len(applied), len(planned))
    diff, ref = np.abs(applied[:n] - planned[:n]), np.abs(planned[:n])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(diff == 0, 0.0, diff / ref)


def first_mismatch(applied: np.ndarray, planned: np.ndarray, rtol: float, *,
                   seen_skips: tuple = (), processes: int = 1, start: int = 0,
                   origin: Optional[np.ndarray] = None) -> Optional[LRMismatch]:
    """The first step that differs from the plan, with the pattern that explains the trace.

    ``planned`` starts at plan step ``start``; ``origin``, the plan from its step 0 (for
    ``start > 0``), lets a restart to the plan's beginning be named in an audit attached
    after a resume.
    """
    n, m = len(applied), len(planned)
    extra = dict(seen_skips=tuple(seen_skips), processes=processes, start=start)
    if n == 0:  # nothing recorded is never a pass
        return LRMismatch(0, float(planned[0]) if m else None, None, "no steps", 0, 0, m, **extra)
    overlap = min(n, m)
    atol = _atol(planned, rtol)
    ok = _close(applied[:overlap], planned[:overlap], rtol, atol)
    if not ok.all():
        step = int(np.argmin(ok))
        reason, k, offset, skipped = _diagnose(applied, planned, step, lambda a, b: _close(a, b, rtol, atol),
                                               origin if start else None)
        return LRMismatch(step, float(planned[step]), float(applied[step]), reason, k, n, m, offset,
                          skipped=skipped, **extra)
    if n != m:
        return LRMismatch(overlap, float(planned[overlap]) if m > n else None,
                          float(applied[overlap]) if n > m else None,
                          "fewer steps" if n < m else "more steps", 0, n, m, **extra)
    return None


def _diagnose(applied, planned, first: int, close, origin=None) -> tuple[str, int, int, tuple]:
    """The simplest pattern that explains the whole trace: (reason, k, offset, skipped)."""
    n, m = len(applied), len(planned)
    overlap = min(n, m)
    if n >= MIN_CHECKED and close(applied, applied[0]).all() and not close(planned[:overlap], planned[0]).all():
        return "constant", 0, 0, ()
    # A restart goes back to the plan's step 0 (scheduler re-created) or, after one step at
    # the lr the optimizer loaded, to its step 1 (the scheduler's state not loaded). In an
    # audit attached at a resume (``origin`` given) it may come at once.
    base, low = (planned, MIN_CHECKED) if origin is None else (origin, 0)
    restart = _restart(applied, base, first, close, low)
    if restart or (origin is not None and first == 0 and _holds(applied, base, close)):
        return "restarted", restart, 0, ()
    restart = _restart(applied, base[1:], first, close, low + 1) if len(base) > 1 else 0
    if restart:
        return "restarted", restart, 1, ()
    for k in range(1, min(max(n, m), MAX_K + 1)):
        if _holds(applied, planned[k:], close):  # applied[i] == planned[i + k]
            return "ahead", k, 0, ()
        if _holds(applied[k:], planned, close):  # applied[i + k] == planned[i]
            return "behind", k, 0, ()
        # applied[i] == planned[k * i + offset]: offset k - 1 when the scheduler also
        # stepped on the micro-batches before the first optimizer step.
        for offset in range(k if k > 1 else 0):
            if _holds(applied, planned[offset::k], close):
                return "stepped too often", k, offset, ()
    skipped = _skipped(applied, planned, close)
    if skipped:
        return "skipped", 0, 0, skipped
    return "unexplained", 0, 0, ()


def _holds(applied: np.ndarray, planned: np.ndarray, close) -> bool:
    count = min(len(applied), len(planned))
    return count >= MIN_CHECKED and bool(close(applied[:count], planned[:count]).all())


# Restart candidates verified in full (each one pass), nearest to the first mismatch first,
# after a vectorised filter has kept only the steps consistent with a restart there.
RESTART_CANDIDATES = 16


def _restart(applied, planned, first: int, close, low: int = MIN_CHECKED) -> int:
    """``r >= low`` such that applied[:r] == planned[:r] and applied[r:] == planned[:n - r], or 0.

    Named from ``r = MIN_CHECKED`` on: a restart after 1 or 2 steps cannot be told from a
    plan recorded 1 or 2 steps late ("behind"). A restart at ``r`` puts the plan's step 0
    at ``r``, its first change of value between ``r + c - 1`` and ``r + c`` and its step ``n - 1 - r`` at the last
    step: candidates must fit all three (one vectorised pass over ``r <= first``), so a
    plateau at the start of the plan (StepLR) leaves few to verify.
    """
    n = len(applied)
    if first < low or not len(planned):
        return 0
    r = np.arange(low, first + 1)
    keep = close(applied[r], planned[0])
    tail = n - 1 - r  # plan step of the last applied step
    keep &= (tail >= len(planned)) | close(applied[n - 1], planned[np.minimum(tail, len(planned) - 1)])
    changes = np.flatnonzero(~close(planned[1:], planned[:-1]))
    if changes.size:
        c = int(changes[0]) + 1  # the plan's first change of value
        for step in (c - 1, c):  # the change itself: the last step before it and the first after
            at = r + step
            keep &= (at >= n) | close(applied[np.minimum(at, n - 1)], planned[step])
    for candidate in r[keep][::-1][:RESTART_CANDIDATES]:
        if _holds(applied[candidate:], planned, close) or (n - candidate < MIN_CHECKED and
                                                           close(applied[candidate:], planned[:n - candidate]).all()):
            return int(candidate)
    return 0


def _skipped(applied, planned, close) -> tuple:
    """The plan steps left out if ``applied`` is the plan with a few steps removed, else ().

    One greedy pass: each applied LR is matched with the next planned LR equal to it.
    Named only if every applied LR is matched, at most half as many steps were left out
    as ran, and at least one was.
    """
    n, m = len(applied), len(planned)
    if n < MIN_CHECKED or m <= n:
        return ()
    skipped, j = [], 0
    for value in applied:
        while j < m and not close(value, planned[j]):
            skipped.append(j)
            j += 1
            if len(skipped) > n // 2:
                return ()
        if j == m:
            return ()
        j += 1
    return tuple(skipped)


# ---------------------------------------------------------------------- text
def _fmt(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}"


def _fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Both numbers with the fewest digits (6 at least) that show them different."""
    for digits in (6, 9, 12, 17):
        if _fmt(a, digits) != _fmt(b, digits):
            break
    return _fmt(a, digits), _fmt(b, digits)


def _fmt_steps(steps: tuple, most: int = 8) -> str:
    words = ", ".join(str(s) for s in steps[:most])
    more = f" and {len(steps) - most} more" if len(steps) > most else ""
    return f"step{'' if len(steps) == 1 else 's'} {words}{more}"
