"""Feedback on exercises in which learners write a learning-rate schedule.

:func:`compare_schedule` evaluates a learner's function ``f(step, **kwargs)``
and a reference over the same steps and says, in one sentence, where they first
differ; :func:`assert_schedule_matches` turns that sentence into an
``AssertionError`` for grading cells (and prints nothing on success).

The reference may be

* a function called like the learner's, e.g. ``helpers.schedules.step_lr``;
* a PyTorch scheduler class, e.g. ``torch.optim.lr_scheduler.StepLR``: it is
  built on a throwaway optimizer whose LR is ``kwargs["base_lr"]`` (1.0 if
  absent), with the other ``kwargs`` as its arguments (the schedule functions
  of this course use the PyTorch argument names);
* a fresh scheduler instance (not stepped yet), e.g. a ``SequentialLR``; it is
  stepped through the steps and cannot be reused.

Errors raised by the learner's function (``NotImplementedError`` from an
unfinished exercise, a ``TypeError``...) propagate unchanged.

For exercises that ask for a schedule *from the formula*, :func:`forbidden_uses`
lists what a learner's function borrows from ``torch.optim.lr_scheduler`` or
``helpers``, and :func:`without_references` makes those unusable while the
learner's function runs (so a roundabout import fails too).
"""
from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from ._validate import integer, number
from .schedules import dummy_optimizer, trace

__all__ = ["ScheduleComparison", "assert_schedule_matches", "compare_schedule", "forbidden_uses",
           "without_references"]


@dataclass(frozen=True)
class ScheduleComparison:
    """Outcome of :func:`compare_schedule`; true when every step matched.

    Attributes
    ----------
    ok : bool
        Every step matched.
    message : str
        One or two sentences for the learner.
    first_mismatch : tuple (step, expected, got) or None
        The first step that failed, the reference's value and the learner's
        return value (whatever its type).
    n_steps : int
        Number of steps compared.
    n_mismatches : int
        Number of steps that failed.

    Examples
    --------
    >>> from helpers.schedules import exponential_lr
    >>> result = compare_schedule(exponential_lr, exponential_lr, 5, base_lr=0.1, gamma=0.5)
    >>> result.ok, result.n_steps, str(result)
    (True, 5, 'All 5 steps match.')
    """

    ok: bool
    message: str
    first_mismatch: tuple[int, float, Any] | None
    n_steps: int
    n_mismatches: int

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message


def _steps(steps) -> list[int]:
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool):
        return list(range(integer("steps", steps, low=1)))
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
        raise ValueError(f"steps must be an integer >= 1 or an iterable of integers >= 0, got {steps!r}")
    out = sorted({integer("steps", s, low=0) for s in steps})
    if not out:
        raise ValueError("steps must contain at least one step, got an empty iterable")
    return out


def _scheduler_values(scheduler: LRScheduler, steps: list[int]) -> dict[int, float]:
    if scheduler.last_epoch != 0:
        raise ValueError(
            f"reference must be a fresh scheduler, but this one has been stepped {scheduler.last_epoch} times"
        )
    values = trace(scheduler, max(steps) + 1)
    return {s: values[s] for s in steps}


def _build(cls: type, kwargs: dict[str, Any]) -> LRScheduler:
    args = dict(kwargs)
    optimizer = dummy_optimizer(lr=args.get("base_lr", 1.0))
    if "base_lr" not in inspect.signature(cls).parameters:
        args.pop("base_lr", None)
    return cls(optimizer, **args)


def _reference_values(reference, steps: list[int], kwargs: dict[str, Any]) -> dict[int, float]:
    if isinstance(reference, LRScheduler):
        return _scheduler_values(reference, steps)
    if isinstance(reference, type) and issubclass(reference, LRScheduler):
        return _scheduler_values(_build(reference, kwargs), steps)
    if not callable(reference):
        raise ValueError(
            "reference must be a function f(step, **kwargs), a torch scheduler class "
            f"or a fresh torch scheduler, got {reference!r}"
        )
    return {s: float(reference(s, **kwargs)) for s in steps}


def _fmt(x: float) -> str:
    """Short but exact enough: 0.1 stays 0.1, 0.010000000000000002 becomes 0.01."""
    text = repr(float(x))
    return text if len(text) <= 12 else f"{x:.12g}"


def _close(got: float, expected: float, rtol: float, atol: float) -> bool:
    return abs(got - expected) <= max(rtol * abs(expected), atol)


def _bad_type(got) -> str | None:
    """Why ``got`` is not a usable learning rate, or None if it is one."""
    if isinstance(got, torch.Tensor):
        return "Your function returned a tensor: return a Python float (use .item())."
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        return f"Your function returned a {type(got).__name__}: return a float."
    if not math.isfinite(got):
        return "Your function returned a value that is not a finite number: look for a division by zero."
    return None


def _shifted(got: dict[int, float], expected: dict[int, float], shift: int, rtol: float, atol: float) -> bool:
    """The learner's values are the reference's ``shift`` steps later, wherever both exist."""
    pairs = [(g, expected[t + shift]) for t, g in got.items() if t + shift in expected]
    return len({e for _, e in pairs}) > 1 and all(_close(g, e, rtol, atol) for g, e in pairs)


def _hint(step: int, got: dict[int, float], expected: dict[int, float], rtol: float, atol: float) -> str:
    """A sentence on the likely cause of the first mismatch, or ``""``."""
    value = got[step]
    if value < 0:
        return "A learning rate is never negative."
    if _shifted(got, expected, 1, rtol, atol):
        return "Your values are the expected ones one step later: your schedule runs one step early."
    if _shifted(got, expected, -1, rtol, atol):
        return "Your values are the expected ones one step earlier: your schedule runs one step late."
    if len(set(got.values())) == 1 and len(set(expected.values())) > 1:
        return "Your function returns the same value at every step: does it use step?"
    if _close(value, expected[step], 1e-5, atol):
        return "The values are close but not equal: look for a rounded constant or an approximate formula."
    if step == 0:
        return "Step 0 is the LR right after the scheduler is built, before any scheduler.step() call."
    return ""


def compare_schedule(
    learner_fn: Callable[..., float],
    reference,
    steps,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    **kwargs: Any,
) -> ScheduleComparison:
    """Compare a learner's schedule with a reference, step by step.

    Step ``s`` matches when ``|got - expected| <= max(rtol * |expected|, atol)``.

    Parameters
    ----------
    learner_fn : callable
        Called as ``learner_fn(step, **kwargs)``; must return a finite real number.
        Exceptions it raises propagate unchanged.
    reference : callable, torch scheduler class or fresh torch scheduler
        See the module docstring.
    steps : int or iterable of int
        ``N`` (``>= 1``) means ``range(N)``; otherwise the steps to check, each
        ``>= 0`` (checked in increasing order, repeats once).
    rtol : float, default 1e-9
        Relative tolerance, ``>= 0``.
    atol : float, default 1e-12
        Absolute tolerance, ``>= 0`` (matters near an LR of zero).
    **kwargs
        Arguments of the schedule, passed to both.

    Returns
    -------
    ScheduleComparison
        True-like when all steps match; ``str()`` of it is the message.

    Examples
    --------
    >>> from helpers.schedules import step_lr
    >>> def early(step, base_lr, step_size, gamma=0.1):
    ...     return base_lr * gamma ** ((step + 1) // step_size)
    >>> result = compare_schedule(early, step_lr, 100, base_lr=0.1, step_size=30)
    >>> result.ok, result.first_mismatch
    (False, (29, 0.1, 0.010000000000000002))
    >>> print(result.message)  # doctest: +NORMALIZE_WHITESPACE
    First difference at step 29: expected 0.1, got 0.01 (3 of 100 steps differ).
    Your values are the expected ones one step later: your schedule runs one step early.
    >>> bool(compare_schedule(step_lr, step_lr, 100, base_lr=0.1, step_size=30))
    True
    """
    rtol = number("rtol", rtol, low=0)
    atol = number("atol", atol, low=0)
    step_list = _steps(steps)
    expected = _reference_values(reference, step_list, kwargs)
    returned = {s: learner_fn(s, **kwargs) for s in step_list}
    values = {s: float(v) for s, v in returned.items() if _bad_type(v) is None}
    bad = [s for s in step_list if s not in values or not _close(values[s], expected[s], rtol, atol)]
    n = len(step_list)
    if not bad:
        return ScheduleComparison(True, f"All {n} steps match.", None, n, 0)
    s = bad[0]
    got = returned[s]
    problem = _bad_type(got) or _hint(s, values, expected, rtol, atol)
    shown = _fmt(got) if s in values else repr(got)
    message = (
        f"First difference at step {s}: expected {_fmt(expected[s])}, got {shown} "
        f"({len(bad)} of {n} steps differ)."
    )
    if problem:
        message += " " + problem
    return ScheduleComparison(False, message, (s, expected[s], got), n, len(bad))


def assert_schedule_matches(learner_fn: Callable[..., float], reference, steps, **kwargs: Any) -> None:
    """Raise ``AssertionError`` with :func:`compare_schedule`'s message unless all steps match.

    For grading cells: silent on success; exceptions from ``learner_fn``
    (e.g. ``NotImplementedError`` from an unfinished exercise) propagate.

    Parameters
    ----------
    learner_fn, reference, steps, **kwargs
        As in :func:`compare_schedule` (``rtol`` and ``atol`` included).

    Raises
    ------
    AssertionError
        When some step differs; the message says where and how.

    Examples
    --------
    >>> from helpers.schedules import exponential_lr
    >>> assert_schedule_matches(exponential_lr, exponential_lr, 10, base_lr=0.1, gamma=0.9)
    >>> def constant(step, base_lr, gamma):
    ...     return base_lr
    >>> assert_schedule_matches(constant, exponential_lr, 10, base_lr=0.1, gamma=0.9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: First difference at step 1: expected 0.09, got 0.1 (9 of 10 steps differ). Your function ...
    """
    result = compare_schedule(learner_fn, reference, steps, **kwargs)
    if not result.ok:
        raise AssertionError(result.message)


_BANNED = ("lr_scheduler", "helpers")


def forbidden_uses(fn: Callable, banned: Iterable[str] = _BANNED) -> list[str]:
    """Names through which ``fn`` uses a module whose dotted name contains a part in ``banned``.

    Looks at every global and attribute name in ``fn``'s code (nested functions
    included) and follows plain functions it calls, so ``StepLR``, an alias of it,
    ``torch.optim.lr_scheduler.StepLR`` or a helper of the learner's that calls
    ``helpers.schedules.step_lr`` are all found. Returns a sorted list (empty: clean).

    >>> import math
    >>> from torch.optim.lr_scheduler import StepLR
    >>> forbidden_uses(lambda s: 0.1 * math.cos(s))
    []
    >>> forbidden_uses(lambda s: StepLR)
    ['StepLR']
    """
    banned, found, seen = set(banned), set(), set()
    stack = [fn]
    while stack:
        func = stack.pop()
        if id(func) in seen:
            continue
        seen.add(id(func))
        # What the function's names refer to: its globals, and the variables it closes over.
        scope = dict(func.__globals__)
        scope.update((n, c.cell_contents) for n, c in zip(func.__code__.co_freevars, func.__closure__ or ())
                     if c.cell_contents is not None)
        codes = [func.__code__]
        while codes:
            code = codes.pop()
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
            for name in code.co_names + code.co_freevars:
                obj = scope.get(name)
                home = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", "")
                if banned & set(name.split(".") + (home or "").split(".")):
                    found.add(name)
                elif isinstance(obj, types.FunctionType):
                    stack.append(obj)
    return sorted(found)


@contextlib.contextmanager
def without_references(namespace: dict | None = None) -> Iterator[None]:
    """Within the block, every PyTorch scheduler and every ``helpers.schedules`` schedule raises.

    Building any ``torch.optim.lr_scheduler`` scheduler, or calling a function of
    ``helpers.schedules.SCHEDULES``, raises ``AssertionError``; names in
    ``namespace`` (e.g. a notebook's ``globals()``) bound to those functions are
    replaced as well. Everything is put back on exit.

    >>> import helpers.schedules
    >>> with without_references():
    ...     helpers.schedules.step_lr(0, 0.1, step_size=3)
    Traceback (most recent call last):
    ...
    AssertionError: this exercise must not use torch.optim.lr_scheduler or helpers
    >>> from helpers.schedules import step_lr  # an alias: pass the namespace that holds it
    >>> with without_references(globals()):
    ...     step_lr(0, 0.1, step_size=3)
    Traceback (most recent call last):
    ...
    AssertionError: this exercise must not use torch.optim.lr_scheduler or helpers
    >>> step_lr(0, 0.1, step_size=3)
    0.1
    """
    from . import schedules

    def refuse(*args, **kwargs):
        raise AssertionError("this exercise must not use torch.optim.lr_scheduler or helpers")

    originals = [(LRScheduler, "__init__", LRScheduler.__init__)]
    originals += [(schedules, name, fn) for name, fn in schedules.SCHEDULES.items()]
    references = {id(fn) for _, _, fn in originals}
    aliases = {k: v for k, v in (namespace or {}).items() if id(v) in references}
    try:
        for owner, name, _ in originals:
            setattr(owner, name, refuse)
        if namespace is not None:
            namespace.update(dict.fromkeys(aliases, refuse))
        yield
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)
        if namespace is not None:
            namespace.update(aliases)
