"""Learning-rate schedules as pure functions, equal to their PyTorch and transformers versions.

Every schedule is a plain function ``f(step, base_lr, ...) -> float``:

* ``step`` is the number of ``scheduler.step()`` calls made so far (0 is the LR
  right after the scheduler is built, the LR of the first optimizer step);
* ``base_lr`` is the optimizer's initial LR (``lr=`` of the optimizer);
* the other parameters carry the names and defaults of the PyTorch class, so
  ``step_lr(s, 0.1, step_size=30)`` is the LR that
  ``StepLR(SGD(params, lr=0.1), step_size=30)`` has after ``s`` calls.

PyTorch schedules, equal to ``optimizer.param_groups[0]["lr"]`` for every
``step >= 0`` (past ``T_max`` / ``total_iters`` too; ``step < total_steps``
for one-cycle) to within 1e-9 relative (1e-12 x ``base_lr`` absolute near zero):
:func:`step_lr`, :func:`multistep_lr`, :func:`exponential_lr`, :func:`linear_lr`,
:func:`polynomial_lr`, :func:`cosine_annealing_lr`,
:func:`cosine_annealing_warm_restarts_lr`, :func:`cyclic_lr`, :func:`one_cycle_lr`
(momentum: :func:`one_cycle_momentum`, :func:`cyclic_momentum`). The one
exception is PyTorch's own rounding drift in ``CosineAnnealingLR`` (see
:func:`cosine_annealing_lr`).

Schedules PyTorch lacks, equal to the Hugging Face ``transformers.optimization``
definitions: :func:`warmup_cosine_lr`, :func:`inverse_sqrt_lr`, :func:`wsd_lr`
(and :func:`wsd_branch_lr`, the same schedule parametrised by the step where
its cooldown branches off the stable phase); and two warmups: :func:`linear_warmup_lr`, :func:`exponential_warmup_lr`.

Linear decay to zero needs no function of its own: it is
``linear_lr(step, base_lr, start_factor=1.0, end_factor=0.0, total_iters=N)``
or, the same numbers, ``polynomial_lr(step, base_lr, total_iters=N, power=1.0)``.

Glue: :func:`torch_scheduler` builds the matching ``torch.optim.lr_scheduler``
object, :func:`torch_code` the matching line of code, :func:`trace` records the
LRs of any torch scheduler, :func:`trace_fn` those of a pure function,
:func:`compose` chains phases (warmup, then any decay), :func:`dummy_optimizer`
gives an optimizer that is safe to step, and :data:`SCHEDULES` maps each
schedule's name to its function.

The closed forms follow the arithmetic of the reference implementations
operation by operation where that is cheap, so most values agree to the last
bit; PyTorch's recursive schedulers (``CosineAnnealingLR``, ``LinearLR``,
``PolynomialLR``, ``ExponentialLR``) accumulate rounding errors of their own.
"""
from __future__ import annotations

import inspect
import math
import numbers
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    StepLR,
)

from ._validate import choice, integer, non_negative, number, positive

__all__ = [
    "SCHEDULES",
    "compose",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts_lr",
    "cyclic_lr",
    "cyclic_momentum",
    "dummy_optimizer",
    "exponential_lr",
    "exponential_warmup_lr",
    "inverse_sqrt_lr",
    "linear_lr",
    "linear_warmup_lr",
    "multistep_lr",
    "one_cycle_lr",
    "one_cycle_momentum",
    "polynomial_lr",
    "step_lr",
    "torch_code",
    "torch_scheduler",
    "trace",
    "trace_fn",
    "warmup_cosine_lr",
    "wsd_branch_lr",
    "wsd_lr",
]

_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
_ANNEAL = ("cos", "linear")
_WSD_SHAPES = ("linear", "cosine", "1-sqrt")


# --------------------------------------------------------------------------- checks
def _step(step) -> int:
    return integer("step", step, low=0)


def _lr(name: str, value) -> float:
    return positive(name, value)


def _momentum(name: str, value) -> float:
    return number(name, value, low=0, high=1)


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _milestones(milestones) -> tuple[int, ...]:
    values = None
    if not isinstance(milestones, (str, bytes)) and isinstance(milestones, Iterable):
        values = tuple(milestones)
    ok = (
        values is not None
        and all(isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 0 for m in values)
        and all(a <= b for a, b in zip(values, values[1:]))
    )
    if not ok:
        raise ValueError(f"milestones must be a list of non-decreasing integers >= 0, got {milestones!r}")
    return tuple(int(m) for m in values)


def _min_lr(min_lr, base_lr: float) -> float:
    return number("min_lr", min_lr, low=0, high=base_lr)


# --------------------------------------------------------------------------- PyTorch schedules
def step_lr(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """LR of ``StepLR``: multiplied by ``gamma`` every ``step_size`` steps.

    ``base_lr * gamma ** (step // step_size)``: the first drop happens *at*
    step ``step_size``, i.e. after ``step_size`` calls of ``scheduler.step()``.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Initial LR, ``> 0``.
    step_size : int
        Steps between two drops, ``>= 1``.
    gamma : float, default 0.1
        Factor applied at each drop, ``> 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> [step_lr(s, 0.1, step_size=2) for s in range(5)]
    [0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.0010000000000000002]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    step_size = integer("step_size", step_size, low=1)
    gamma = positive("gamma", gamma)
    return base_lr * gamma ** (step // step_size)


def multistep_lr(step: int, base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> float:
    """LR of ``MultiStepLR``: multiplied by ``gamma`` at each milestone.

    ``base_lr * gamma ** (number of milestones <= step)``. A milestone listed
    twice counts twice, as in PyTorch (which keeps a ``Counter``); a milestone
    of 0 already applies at step 0.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Initial LR, ``> 0``.
    milestones : sequence of int
        Non-decreasing integers ``>= 0`` (repeats allowed); may be empty.
    gamma : float, default 0.1
        Factor applied at each milestone, ``> 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> [multistep_lr(s, 1.0, milestones=[2, 4, 4], gamma=0.5) for s in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.125, 0.125]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    milestones = _milestones(milestones)
    gamma = positive("gamma", gamma)
    return base_lr * gamma ** bisect_right(milestones, step)


def exponential_lr(step: int, base_lr: float, gamma: float) -> float:
    """LR of ``ExponentialLR``: ``base_lr * gamma ** step``.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Initial LR, ``> 0``.
    gamma : float
        Factor per step, ``> 0`` (``> 1`` grows, as in an LR range test).

    Returns
    -------
    float

    Examples
    --------
    >>> [exponential_lr(s, 1.0, gamma=0.5) for s in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    gamma = positive("gamma", gamma)
    return base_lr * gamma**step


def linear_lr(
    step: int,
    base_lr: float,
    start_factor: float = 1 / 3,
    end_factor: float = 1.0,
    total_iters: int = 5,
) -> float:
    """LR of ``LinearLR``: the factor moves linearly from ``start_factor`` to ``end_factor``.

    ``base_lr * (start_factor + (end_factor - start_factor) * min(step, total_iters) / total_iters)``;
    it stays at ``base_lr * end_factor`` from ``total_iters`` on. With
    ``start_factor=1.0, end_factor=0.0`` it is linear decay to zero.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Initial LR, ``> 0``.
    start_factor : float, default 1/3
        Factor at step 0, in ``(0, 1]`` (PyTorch's range).
    end_factor : float, default 1.0
        Factor from ``total_iters`` on, in ``[0, 1]``.
    total_iters : int, default 5
        Steps of the linear change, ``>= 1``.

    Returns
    -------
    float

    Examples
    --------
    >>> [linear_lr(s, 1.0, start_factor=0.25, total_iters=3) for s in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    start_factor = number("start_factor", start_factor, low=0, high=1, low_open=True)
    end_factor = number("end_factor", end_factor, low=0, high=1)
    total_iters = integer("total_iters", total_iters, low=1)
    return base_lr * (start_factor + (end_factor - start_factor) * min(total_iters, step) / total_iters)


def polynomial_lr(step: int, base_lr: float, total_iters: int = 5, power: float = 1.0) -> float:
    """LR of ``PolynomialLR``: ``base_lr * (1 - min(step, total_iters) / total_iters) ** power``.

    Reaches 0 at ``total_iters`` and stays there. ``power=1`` is linear decay to zero.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Initial LR, ``> 0``.
    total_iters : int, default 5
        Steps of the decay, ``>= 1``.
    power : float, default 1.0
        Exponent, ``> 0`` (``< 1`` stays high longer, ``> 1`` drops faster).

    Returns
    -------
    float

    Examples
    --------
    >>> [polynomial_lr(s, 1.0, total_iters=4, power=2.0) for s in range(6)]
    [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    total_iters = integer("total_iters", total_iters, low=1)
    power = positive("power", power)
    return base_lr * (1.0 - min(total_iters, step) / total_iters) ** power


def cosine_annealing_lr(step: int, base_lr: float, T_max: int, eta_min: float = 0.0) -> float:
    """LR of ``CosineAnnealingLR``: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * step / T_max)) / 2``.

    It reaches ``eta_min`` at ``T_max`` and, since PyTorch keeps following the
    cosine, climbs back to ``base_lr`` at ``2 * T_max``: a period of
    ``2 * T_max`` with no jump (unlike warm restarts). PyTorch computes it
    recursively; this closed form is the function that recursion tracks. The
    recursion accumulates rounding errors while the LR climbs back (past
    ``T_max``) when ``eta_min > 0``: beyond ``T_max`` of about 10 000 they
    exceed 1e-9 relative (about 1e-8 at ``T_max = 20 000`` with ``eta_min``
    near ``base_lr``); the value returned here is the exact one.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Initial (maximum) LR, ``> 0``.
    T_max : int
        Steps from ``base_lr`` down to ``eta_min``, ``>= 1``.
    eta_min : float, default 0.0
        Lowest LR, ``>= 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> [round(cosine_annealing_lr(s, 1.0, T_max=4), 4) for s in range(9)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.1464, 0.5, 0.8536, 1.0]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    T_max = integer("T_max", T_max, low=1)
    eta_min = non_negative("eta_min", eta_min)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max)) / 2


def _restart_position(step: int, T_0: int, T_mult: int) -> tuple[int, int]:
    """``(T_cur, T_i)``: steps since the last restart and length of the current cycle."""
    if T_mult == 1:
        return step % T_0, T_0
    t_i = T_0
    while step >= t_i:  # cycle lengths grow geometrically: O(log step) iterations
        step -= t_i
        t_i *= T_mult
    return step, t_i


def cosine_annealing_warm_restarts_lr(
    step: int, base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0
) -> float:
    """LR of ``CosineAnnealingWarmRestarts`` (SGDR), stepped with ``scheduler.step()``.

    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` where the
    cycles last ``T_i = T_0 * T_mult**i`` steps and ``T_cur`` counts the steps
    since the last restart; at a restart the LR jumps back to ``base_lr``.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far (no ``epoch`` argument), ``>= 0``.
    base_lr : float
        LR at each restart, ``> 0``.
    T_0 : int
        Length of the first cycle, ``>= 1``.
    T_mult : int, default 1
        Growth factor of the cycle length, an integer ``>= 1`` (as PyTorch requires).
    eta_min : float, default 0.0
        Lowest LR, ``>= 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> [cosine_annealing_warm_restarts_lr(s, 1.0, T_0=2, T_mult=2) for s in range(7)]
    [1.0, 0.5, 1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 1.0]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    T_0 = integer("T_0", T_0, low=1)
    T_mult = integer("T_mult", T_mult, low=1)
    eta_min = non_negative("eta_min", eta_min)
    t_cur, t_i = _restart_position(step, T_0, T_mult)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def _cyclic_position(step, step_size_up, step_size_down, mode, gamma) -> tuple[float, float]:
    """``(height, scale)`` of ``CyclicLR`` with PyTorch's float arithmetic.

    ``height`` goes 0 -> 1 -> 0 over a cycle; ``scale`` is the amplitude factor.
    """
    step = _step(step)
    up = integer("step_size_up", step_size_up, low=1)
    down = up if step_size_down is None else integer("step_size_down", step_size_down, low=1)
    mode = choice("mode", mode, _CYCLIC_MODES)
    gamma = positive("gamma", gamma)
    total_size = float(up) + float(down)
    step_ratio = up / total_size
    cycle = math.floor(1 + step / total_size)
    x = 1.0 + step / total_size - cycle
    height = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
    if mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 1 / (2.0 ** (cycle - 1))
    else:  # exp_range scales by iterations, not by cycle
        scale = gamma**step
    return height, scale


def cyclic_lr(
    step: int,
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> float:
    """LR of ``CyclicLR`` (Smith 2017), built with these ``base_lr`` and ``max_lr``.

    The LR rises linearly from ``base_lr`` to ``max_lr`` in ``step_size_up``
    steps and falls back in ``step_size_down`` steps; the rise and fall
    ``max_lr - base_lr`` is multiplied by 1 (``"triangular"``), by
    ``1 / 2**(cycle - 1)`` (``"triangular2"``, cycle = 1, 2, ...) or by
    ``gamma ** step`` (``"exp_range"``, the total step count, not the cycle).
    ``CyclicLR`` overwrites the optimizer's LR with ``base_lr`` when built, so
    the optimizer's own ``lr`` plays no part.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far (batches), ``>= 0``.
    base_lr : float
        Lower bound of the cycle, ``>= 0``.
    max_lr : float
        Upper bound of the cycle, ``>= 0``.
    step_size_up : int, default 2000
        Steps of the rise, ``>= 1``.
    step_size_down : int or None, default None
        Steps of the fall, ``>= 1``; ``None`` means ``step_size_up``.
    mode : {"triangular", "triangular2", "exp_range"}, default "triangular"
    gamma : float, default 1.0
        Base of the ``"exp_range"`` scaling, ``> 0`` (ignored by the other modes).

    Returns
    -------
    float

    Examples
    --------
    >>> [cyclic_lr(s, 0.0, 1.0, step_size_up=2, mode="triangular2") for s in range(9)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.25, 0.5, 0.25, 0.0]
    """
    base_lr = non_negative("base_lr", base_lr)
    max_lr = non_negative("max_lr", max_lr)
    height, scale = _cyclic_position(step, step_size_up, step_size_down, mode, gamma)
    return base_lr + (max_lr - base_lr) * height * scale


def cyclic_momentum(
    step: int,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> float:
    """Momentum that ``CyclicLR`` sets (``cycle_momentum=True``): the LR's mirror image.

    ``max_momentum - (max_momentum - base_momentum) * height * scale`` with the
    ``height`` and ``scale`` of :func:`cyclic_lr`: high momentum when the LR is
    low. It is written to ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam).

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    step_size_up, step_size_down, mode, gamma
        As in :func:`cyclic_lr`.
    base_momentum : float, default 0.8
        Momentum at the LR peak, in ``[0, 1]``.
    max_momentum : float, default 0.9
        Momentum at the LR trough, in ``[0, 1]``.

    Returns
    -------
    float

    Examples
    --------
    >>> [round(cyclic_momentum(s, step_size_up=2), 3) for s in range(5)]
    [0.9, 0.85, 0.8, 0.85, 0.9]
    """
    base_momentum = _momentum("base_momentum", base_momentum)
    max_momentum = _momentum("max_momentum", max_momentum)
    height, scale = _cyclic_position(step, step_size_up, step_size_down, mode, gamma)
    return max_momentum - (max_momentum - base_momentum) * height * scale


def _one_cycle_phase(step, total_steps, pct_start, anneal_strategy, three_phase) -> tuple[int, float, str]:
    """``(phase, pct, strategy)`` for step ``step`` with OneCycleLR's phase boundaries."""
    total_steps = integer("total_steps", total_steps, low=1)
    if not isinstance(step, numbers.Integral) or isinstance(step, bool) or not 0 <= step < total_steps:
        raise ValueError(
            f"step must be an integer in [0, total_steps - 1] = [0, {total_steps - 1}] "
            f"(OneCycleLR is defined for total_steps steps only), got {step!r}"
        )
    step = int(step)
    pct_start = number("pct_start", pct_start, low=0, high=1, low_open=True, high_open=True)
    anneal_strategy = choice("anneal_strategy", anneal_strategy, _ANNEAL)
    three_phase = _flag("three_phase", three_phase)
    if float(pct_start * total_steps) - 1 == 0:
        # PyTorch divides by zero here (a warm-up of exactly one step has no length).
        raise ValueError(
            f"pct_start * total_steps must not equal 1, got pct_start={pct_start!r}, total_steps={total_steps}"
        )
    # Phase ends as PyTorch computes them (fractional step indices).
    ends = [float(pct_start * total_steps) - 1]
    if three_phase:
        ends.append(float(2 * pct_start * total_steps) - 2)
    ends.append(total_steps - 1)
    start = 0.0
    for i, end in enumerate(ends):
        if step <= end or i == len(ends) - 1:
            return i, (step - start) / (end - start), anneal_strategy
        start = end
    raise AssertionError("unreachable")


def _anneal(strategy: str, start: float, end: float, pct: float) -> float:
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


def one_cycle_lr(
    step: int,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> float:
    """LR of ``OneCycleLR`` (Smith & Topin), for ``0 <= step < total_steps``.

    Rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of the run, then anneals to
    ``max_lr / (div_factor * final_div_factor)``. With ``three_phase=True`` it
    first comes back down to the start value symmetrically, then anneals to the
    minimum. The phases end at the fractional steps ``pct_start * total_steps - 1``
    (and ``2 * pct_start * total_steps - 2``) and ``total_steps - 1``, as in PyTorch.
    ``OneCycleLR`` overwrites the optimizer's LR, so there is no ``base_lr``.

    PyTorch still returns an extrapolated value after the ``total_steps``-th
    ``scheduler.step()`` call (it is never used for training, and with
    ``anneal_strategy="linear"`` it is negative) and raises only one call later;
    this function raises ``ValueError`` for every ``step >= total_steps``.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, in ``[0, total_steps - 1]``.
    max_lr : float
        Peak LR, ``> 0``.
    total_steps : int
        Length of the cycle, ``>= 1``.
    pct_start : float, default 0.3
        Fraction of the run spent rising, in ``(0, 1)``; ``pct_start * total_steps``
        must not be exactly 1 (PyTorch divides by zero there).
    anneal_strategy : {"cos", "linear"}, default "cos"
    div_factor : float, default 25.0
        ``max_lr / div_factor`` is the first LR, ``> 0``.
    final_div_factor : float, default 1e4
        The last LR is ``max_lr / (div_factor * final_div_factor)``, ``> 0``.
    three_phase : bool, default False

    Returns
    -------
    float

    Examples
    --------
    >>> [round(one_cycle_lr(s, 1.0, total_steps=10, anneal_strategy="linear"), 2) for s in range(10)]
    [0.04, 0.52, 1.0, 0.86, 0.71, 0.57, 0.43, 0.29, 0.14, 0.0]
    >>> one_cycle_lr(9, 1.0, total_steps=10)  # max_lr / (25 * 1e4)
    4e-06
    """
    max_lr = _lr("max_lr", max_lr)
    div_factor = positive("div_factor", div_factor)
    final_div_factor = positive("final_div_factor", final_div_factor)
    phase, pct, strategy = _one_cycle_phase(step, total_steps, pct_start, anneal_strategy, three_phase)
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    if three_phase:
        bounds = [(initial_lr, max_lr), (max_lr, initial_lr), (initial_lr, min_lr)]
    else:
        bounds = [(initial_lr, max_lr), (max_lr, min_lr)]
    return _anneal(strategy, *bounds[phase], pct)


def one_cycle_momentum(
    step: int,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    three_phase: bool = False,
) -> float:
    """Momentum that ``OneCycleLR`` sets (``cycle_momentum=True``), for ``0 <= step < total_steps``.

    Moves opposite to the LR: ``max_momentum`` -> ``base_momentum`` while the LR
    rises, back to ``max_momentum`` while it falls (and stays there during the
    third phase of ``three_phase=True``). PyTorch writes it to ``momentum``
    (SGD) or ``betas[0]`` (Adam).

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, in ``[0, total_steps - 1]``.
    total_steps, pct_start, anneal_strategy, three_phase
        As in :func:`one_cycle_lr`.
    base_momentum : float, default 0.85
        Momentum at the LR peak, in ``[0, 1]``.
    max_momentum : float, default 0.95
        Momentum at the start and the end, in ``[0, 1]``.

    Returns
    -------
    float

    Examples
    --------
    >>> [round(one_cycle_momentum(s, total_steps=10), 4) for s in (0, 2, 9)]
    [0.95, 0.85, 0.95]
    """
    base_momentum = _momentum("base_momentum", base_momentum)
    max_momentum = _momentum("max_momentum", max_momentum)
    phase, pct, strategy = _one_cycle_phase(step, total_steps, pct_start, anneal_strategy, three_phase)
    if three_phase:
        bounds = [(max_momentum, base_momentum), (base_momentum, max_momentum), (max_momentum, max_momentum)]
    else:
        bounds = [(max_momentum, base_momentum), (base_momentum, max_momentum)]
    return _anneal(strategy, *bounds[phase], pct)


# --------------------------------------------------------------------------- schedules PyTorch lacks
# Each is base_lr * factor(step); the factor functions mirror transformers'
# lambdas line by line so that a LambdaLR built on them gives the same floats.
def _warmup_cosine_factor(step: int, *, warmup_steps: int, total_steps: int, min_lr_rate: float) -> float:
    if step < warmup_steps:
        return float(step) / float(max(1, warmup_steps))
    progress = float(step - warmup_steps) / float(max(1, total_steps - warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0, factor)


def _inverse_sqrt_factor(step: int, *, warmup_steps: int, timescale: int) -> float:
    if step < warmup_steps:
        return float(step) / float(max(1, warmup_steps))
    shift = timescale - warmup_steps
    return 1.0 / math.sqrt((step + shift) / timescale)


def _wsd_factor(
    step: int,
    *,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    warmup_type: str,
    decay_type: str,
    min_lr_ratio: float,
) -> float:
    if step < warmup_steps:
        progress = float(step) / float(max(1, warmup_steps))
        if warmup_type == "linear":
            factor = progress
        elif warmup_type == "cosine":
            factor = 0.5 * (1.0 - math.cos(math.pi * progress))
        else:
            factor = 1.0 - math.sqrt(1.0 - progress)
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    if step < warmup_steps + stable_steps:
        return 1.0
    if step < warmup_steps + stable_steps + decay_steps:
        progress = float(step - warmup_steps - stable_steps) / float(max(1, decay_steps))
        if decay_type == "linear":
            factor = 1.0 - progress
        elif decay_type == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress))
        else:
            factor = 1.0 - math.sqrt(progress)
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    return min_lr_ratio


def _linear_warmup_factor(step: int, *, warmup_steps: int, start_factor: float) -> float:
    if step >= warmup_steps:
        return 1.0
    return start_factor + (1.0 - start_factor) * step / warmup_steps


def _exponential_warmup_factor(step: int, *, warmup_steps: int) -> float:
    if warmup_steps == 0:
        return 1.0
    return 1.0 - math.exp(-2.0 * step / warmup_steps)


def _warmup_cosine_args(base_lr, warmup_steps, total_steps, min_lr) -> dict[str, Any]:
    base_lr = _lr("base_lr", base_lr)
    total_steps = integer("total_steps", total_steps, low=1)
    warmup_steps = integer("warmup_steps", warmup_steps, low=0, high=total_steps)
    min_lr = _min_lr(min_lr, base_lr)
    return dict(warmup_steps=warmup_steps, total_steps=total_steps, min_lr_rate=min_lr / base_lr)


def warmup_cosine_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Linear warmup from 0, then cosine decay to ``min_lr`` at ``total_steps`` (transformers).

    Equal to ``transformers.get_cosine_with_min_lr_schedule_with_warmup(optimizer,
    num_warmup_steps=warmup_steps, num_training_steps=total_steps, min_lr=min_lr)``
    and, for ``min_lr=0``, to ``get_cosine_schedule_with_warmup``:
    ``base_lr * step / warmup_steps`` below ``warmup_steps`` (exactly 0 at step 0),
    then ``min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2`` with
    ``progress = (step - warmup_steps) / (total_steps - warmup_steps)``. Past
    ``total_steps`` the cosine continues and the LR rises again, as in
    transformers: stop at ``total_steps``.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Peak LR, ``> 0``.
    warmup_steps : int
        Steps of the linear warmup, in ``[0, total_steps]``.
    total_steps : int
        Step at which the LR reaches ``min_lr``, ``>= 1``.
    min_lr : float, default 0.0
        Final LR, in ``[0, base_lr]``.

    Returns
    -------
    float

    Examples
    --------
    >>> [round(warmup_cosine_lr(s, 1.0, warmup_steps=2, total_steps=6), 4) for s in range(7)]
    [0.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0]
    """
    step = _step(step)
    base_lr = _lr("base_lr", base_lr)
    args = _warmup_cosine_args(base_lr, warmup_steps, total_steps, min_lr)
    return base_lr * _warmup_cosine_factor(step, **args)


def _inverse_sqrt_args(base_lr, warmup_steps, timescale) -> dict[str, Any]:
    _lr("base_lr", base_lr)
    warmup_steps = integer("warmup_steps", warmup_steps, low=0)
    timescale = (warmup_steps or 10_000) if timescale is None else integer("timescale", timescale, low=1)
    return dict(warmup_steps=warmup_steps, timescale=timescale)


def inverse_sqrt_lr(step: int, base_lr: float, warmup_steps: int, timescale: int | None = None) -> float:
    """Linear warmup from 0, then ``base_lr / sqrt(...)`` decay (transformers' ``get_inverse_sqrt_schedule``).

    Below ``warmup_steps``: ``base_lr * step / warmup_steps``; then
    ``base_lr / sqrt((step + timescale - warmup_steps) / timescale)``, which is
    ``base_lr`` at ``warmup_steps`` and halves every time the shifted step
    quadruples. With ``timescale = warmup_steps`` (the default) it is
    ``base_lr * sqrt(warmup_steps / step)``, the decay of Vaswani et al. (2017)
    scaled to peak at ``base_lr``.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        Peak LR, ``> 0``.
    warmup_steps : int
        Steps of the linear warmup, ``>= 0``.
    timescale : int or None, default None
        ``>= 1``; ``None`` means ``warmup_steps``, or 10 000 if that is 0 (as in transformers).

    Returns
    -------
    float

    Examples
    --------
    >>> [inverse_sqrt_lr(s, 1.0, warmup_steps=4) for s in (0, 2, 4, 16, 64)]
    [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    step = _step(step)
    base_lr = _lr("base_lr", base_lr)
    args = _inverse_sqrt_args(base_lr, warmup_steps, timescale)
    return base_lr * _inverse_sqrt_factor(step, **args)


def _wsd_args(base_lr, warmup_steps, stable_steps, decay_steps, min_lr, warmup_type, decay_type) -> dict[str, Any]:
    base_lr = _lr("base_lr", base_lr)
    return dict(
        warmup_steps=integer("warmup_steps", warmup_steps, low=0),
        stable_steps=integer("stable_steps", stable_steps, low=0),
        decay_steps=integer("decay_steps", decay_steps, low=0),
        warmup_type=choice("warmup_type", warmup_type, _WSD_SHAPES),
        decay_type=choice("decay_type", decay_type, _WSD_SHAPES),
        min_lr_ratio=_min_lr(min_lr, base_lr) / base_lr,
    )


def wsd_lr(
    step: int,
    base_lr: float,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    min_lr: float = 0.0,
    warmup_type: str = "linear",
    decay_type: str = "linear",
) -> float:
    """Warmup-stable-decay (transformers' ``get_wsd_schedule``, ``min_lr_ratio = min_lr / base_lr``).

    Three phases: warmup from ``min_lr`` to ``base_lr`` (so step 0 is exactly
    ``min_lr``, 0 by default), ``stable_steps`` at ``base_lr``, then a decay
    ("cooldown") to ``min_lr``, which is held afterwards. Shapes, with ``p``
    going from 0 to 1 within the phase: warmup ``"linear"`` ``p``, ``"cosine"``
    ``(1 - cos(pi p)) / 2``, ``"1-sqrt"`` ``1 - sqrt(1 - p)``; decay
    ``"linear"`` ``1 - p``, ``"cosine"`` ``(1 + cos(pi p)) / 2``, ``"1-sqrt"``
    ``1 - sqrt(p)`` (Hägele et al. 2024). As in transformers, ``p`` is
    ``(step - start) / length``, so the LR reaches ``min_lr`` only at
    ``warmup_steps + stable_steps + decay_steps``, the first step after the
    decay. The default ``decay_type`` is ``"linear"`` here, whereas
    transformers' default is ``"cosine"``.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        LR of the stable phase, ``> 0``.
    warmup_steps, stable_steps, decay_steps : int
        Lengths of the three phases, each ``>= 0``.
    min_lr : float, default 0.0
        Start of the warmup and end of the decay, in ``[0, base_lr]``.
    warmup_type : {"linear", "cosine", "1-sqrt"}, default "linear"
    decay_type : {"linear", "cosine", "1-sqrt"}, default "linear"

    Returns
    -------
    float

    Examples
    --------
    >>> [wsd_lr(s, 1.0, warmup_steps=2, stable_steps=2, decay_steps=4) for s in range(10)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    step = _step(step)
    base_lr = _lr("base_lr", base_lr)
    args = _wsd_args(base_lr, warmup_steps, stable_steps, decay_steps, min_lr, warmup_type, decay_type)
    return base_lr * _wsd_factor(step, **args)


def wsd_branch_lr(
    step: int,
    base_lr: float,
    warmup_steps: int,
    branch_step: int,
    decay_steps: int,
    min_lr: float = 0.0,
    warmup_type: str = "linear",
    decay_type: str = "linear",
) -> float:
    """LR of a cooldown branched off a warmup-stable run at ``branch_step`` (a checkpoint).

    One warmup-stable run (warmup, then ``base_lr`` for ever) is trained once;
    a *branch* resumes from its checkpoint at ``branch_step`` and decays the LR
    over ``decay_steps`` steps, ending at step ``branch_step + decay_steps``.
    Before ``branch_step`` the branch *is* the stable run (same LRs, so the
    same checkpoint); from there on it is :func:`wsd_lr` with
    ``stable_steps = branch_step - warmup_steps``. One stable run branched at
    ``B - d`` for several budgets ``B`` gives a WSD run for every budget
    (Hägele et al. 2024), for the cost of the longest stable phase plus the
    cooldowns. ``step`` is global, counted from the start of the stable run:
    a branch resumed at ``branch_step`` continues at ``step = branch_step``.

    Parameters
    ----------
    step : int
        Global step (``scheduler.step()`` calls since the start of the stable run), ``>= 0``.
    base_lr : float
        LR of the stable phase, ``> 0``.
    warmup_steps : int
        Length of the warmup, ``>= 0``.
    branch_step : int
        Step of the checkpoint where the cooldown starts, ``>= warmup_steps``
        (a branch cannot start before the warmup has ended).
    decay_steps : int
        Length of the cooldown, ``>= 0``.
    min_lr, warmup_type, decay_type
        As in :func:`wsd_lr` (``min_lr`` in ``[0, base_lr]``; shapes
        ``"linear"``, ``"cosine"``, ``"1-sqrt"``).

    Returns
    -------
    float

    Examples
    --------
    >>> [wsd_branch_lr(s, 1.0, warmup_steps=2, branch_step=4, decay_steps=4) for s in range(10)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    >>> all(wsd_branch_lr(s, 0.1, 10, 80, 20, decay_type="1-sqrt")
    ...     == wsd_lr(s, 0.1, 10, 70, 20, decay_type="1-sqrt") for s in range(120))
    True
    """
    step = _step(step)
    base_lr = _lr("base_lr", base_lr)
    warmup_steps = integer("warmup_steps", warmup_steps, low=0)
    branch_step = integer("branch_step", branch_step, low=warmup_steps)
    args = _wsd_args(base_lr, warmup_steps, branch_step - warmup_steps, decay_steps, min_lr, warmup_type,
                     decay_type)
    return base_lr * _wsd_factor(step, **args)


def _linear_warmup_args(base_lr, warmup_steps, start_factor) -> dict[str, Any]:
    _lr("base_lr", base_lr)
    return dict(
        warmup_steps=integer("warmup_steps", warmup_steps, low=0),
        start_factor=number("start_factor", start_factor, low=0, high=1),
    )


def linear_warmup_lr(step: int, base_lr: float, warmup_steps: int, start_factor: float = 0.0) -> float:
    """Linear warmup from ``start_factor * base_lr`` to ``base_lr``, then constant.

    ``base_lr * (start_factor + (1 - start_factor) * min(step, warmup_steps) / warmup_steps)``
    (``base_lr`` throughout when ``warmup_steps`` is 0). With the default
    ``start_factor=0`` it is the warmup of transformers' schedules (0 at step 0,
    ``base_lr`` at ``warmup_steps``); with ``start_factor > 0`` it is
    ``LinearLR(optimizer, start_factor, end_factor=1.0, total_iters=warmup_steps)``.
    Goyal et al. (2017) warm up for 5 epochs; Ma & Yarats (2019) suggest
    ``warmup_steps = 2 / (1 - beta2)`` for Adam.

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        LR at the end of the warmup, ``> 0``.
    warmup_steps : int
        Length of the warmup, ``>= 0``.
    start_factor : float, default 0.0
        Fraction of ``base_lr`` at step 0, in ``[0, 1]``.

    Returns
    -------
    float

    Examples
    --------
    >>> [linear_warmup_lr(s, 1.0, warmup_steps=4) for s in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    step = _step(step)
    base_lr = _lr("base_lr", base_lr)
    args = _linear_warmup_args(base_lr, warmup_steps, start_factor)
    return base_lr * _linear_warmup_factor(step, **args)


def exponential_warmup_lr(step: int, base_lr: float, warmup_steps: int) -> float:
    """Exponential warmup: ``base_lr * (1 - exp(-2 * step / warmup_steps))``.

    Rises fast at first and slows down as it approaches ``base_lr``: 0 at step
    0, ``1 - e**-2 = 86.5 %`` of ``base_lr`` at ``warmup_steps``, 98.2 % at
    twice that; it never quite reaches ``base_lr`` (``base_lr`` throughout when
    ``warmup_steps`` is 0). This is the "untuned exponential warmup" of Ma &
    Yarats (2019), ``1 - exp(-(1 - beta2) * step)``, written with
    ``warmup_steps = 2 / (1 - beta2)`` so that it pairs with
    ``linear_warmup_lr(step, base_lr, warmup_steps)`` (their linear rule).

    Parameters
    ----------
    step : int
        Number of ``scheduler.step()`` calls so far, ``>= 0``.
    base_lr : float
        LR approached at the end of the warmup, ``> 0``.
    warmup_steps : int
        Twice the time constant of the exponential, ``>= 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> [round(exponential_warmup_lr(s, 1.0, warmup_steps=10), 3) for s in (0, 5, 10, 20)]
    [0.0, 0.632, 0.865, 0.982]
    """
    step, base_lr = _step(step), _lr("base_lr", base_lr)
    warmup_steps = integer("warmup_steps", warmup_steps, low=0)
    return base_lr * _exponential_warmup_factor(step, warmup_steps=warmup_steps)


SCHEDULES: dict[str, Callable[..., float]] = {
    f.__name__: f
    for f in (
        step_lr,
        multistep_lr,
        exponential_lr,
        linear_lr,
        polynomial_lr,
        cosine_annealing_lr,
        cosine_annealing_warm_restarts_lr,
        cyclic_lr,
        one_cycle_lr,
        warmup_cosine_lr,
        inverse_sqrt_lr,
        wsd_lr,
        linear_warmup_lr,
        exponential_warmup_lr,
    )
}
"""Every schedule function of this module by name, e.g. ``SCHEDULES["step_lr"] is step_lr``."""


# --------------------------------------------------------------------------- glue
_TORCH_CLASSES: dict[str, type] = {
    "step_lr": StepLR,
    "multistep_lr": MultiStepLR,
    "exponential_lr": ExponentialLR,
    "linear_lr": LinearLR,
    "polynomial_lr": PolynomialLR,
    "cosine_annealing_lr": CosineAnnealingLR,
    "cosine_annealing_warm_restarts_lr": CosineAnnealingWarmRestarts,
    "cyclic_lr": CyclicLR,
    "one_cycle_lr": OneCycleLR,
}
# Arguments of CyclicLR / OneCycleLR that the LR functions leave out.
_MOMENTUM_ARGS = ("cycle_momentum", "base_momentum", "max_momentum")


def _schedule(name) -> Callable[..., float]:
    return SCHEDULES[choice("name", name, SCHEDULES)]


def _full_args(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """All arguments of schedule ``name`` but ``step``, defaults filled in; validated."""
    fn = _schedule(name)
    params = list(inspect.signature(fn).parameters.values())[1:]
    known = {p.name for p in params}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"{name}() got unexpected arguments {unknown}; it takes {sorted(known)}")
    missing = [p.name for p in params if p.default is p.empty and p.name not in kwargs]
    if missing:
        raise TypeError(f"{name}() is missing the arguments {missing}")
    args = {p.name: _plain(kwargs.get(p.name, p.default)) for p in params}
    fn(0, **args)  # validates every argument, raising ValueError naming it
    return args


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ``int`` / ``float`` (PyTorch's checks and ``repr`` want those)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _momentum_args(name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Pop from ``extra`` the momentum arguments that CyclicLR / OneCycleLR also take."""
    if name not in ("cyclic_lr", "one_cycle_lr"):
        return {}
    out = {}
    for key in _MOMENTUM_ARGS:
        if key in extra:
            value = extra.pop(key)
            out[key] = _flag(key, value) if key == "cycle_momentum" else _momentum(key, value)
    return out


def _lambda_factor(name: str, args: dict[str, Any]) -> Callable[[int], float]:
    """The LR factor of a schedule PyTorch lacks, as a picklable function of the step."""
    args = dict(args)
    base_lr = args.pop("base_lr")
    if name == "warmup_cosine_lr":
        return partial(_warmup_cosine_factor, **_warmup_cosine_args(base_lr, **args))
    if name == "inverse_sqrt_lr":
        return partial(_inverse_sqrt_factor, **_inverse_sqrt_args(base_lr, **args))
    if name == "wsd_lr":
        return partial(_wsd_factor, **_wsd_args(base_lr, **args))
    if name == "linear_warmup_lr":
        return partial(_linear_warmup_factor, **_linear_warmup_args(base_lr, **args))
    return partial(_exponential_warmup_factor, **args)


def torch_scheduler(name: str, optimizer: Optimizer, **kwargs: Any) -> LRScheduler:
    """Build the ``torch.optim.lr_scheduler`` object that follows schedule ``name``.

    The PyTorch schedules give their own class (``"cosine_annealing_lr"`` ->
    ``CosineAnnealingLR``); the others give a ``LambdaLR`` whose factor is the
    same function as the pure one (transformers builds its schedules the same way).

    Parameters
    ----------
    name : str
        A key of :data:`SCHEDULES`, e.g. ``"cosine_annealing_lr"``.
    optimizer : torch.optim.Optimizer
        The optimizer whose LR the scheduler sets (every param group).
    **kwargs
        The arguments of the pure function, without ``step``. ``base_lr`` is
        optional (except for ``"cyclic_lr"``, where it is ``CyclicLR``'s own
        argument): if given it becomes the LR (and ``initial_lr``) of every param
        group, otherwise the optimizer's LR is the base LR (for
        ``warmup_cosine_lr`` and ``wsd_lr``, ``min_lr`` is taken relative to
        param group 0). ``"cyclic_lr"`` and ``"one_cycle_lr"`` also accept
        ``cycle_momentum``, ``base_momentum`` and ``max_momentum``, passed on
        to the class (PyTorch's defaults otherwise: the optimizer's momentum or
        ``betas[0]`` is cycled, so it needs one).

    Returns
    -------
    torch.optim.lr_scheduler.LRScheduler
        Fresh: the optimizer's LR is already the step-0 value.

    Raises
    ------
    ValueError
        For an unknown ``name`` or an invalid argument (the message names it).

    Examples
    --------
    >>> opt = dummy_optimizer(lr=0.1)
    >>> sched = torch_scheduler("step_lr", opt, step_size=2)
    >>> type(sched).__name__, trace(sched, 4) == trace_fn(step_lr, 4, base_lr=0.1, step_size=2)
    ('StepLR', True)
    >>> type(torch_scheduler("warmup_cosine_lr", dummy_optimizer(), warmup_steps=5, total_steps=50)).__name__
    'LambdaLR'
    """
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    extra = dict(kwargs)
    fn = _schedule(name)
    momentum = _momentum_args(name, extra)
    takes_base_lr = "base_lr" in inspect.signature(fn).parameters and name != "cyclic_lr"
    if takes_base_lr and "base_lr" not in extra:
        extra["base_lr"] = optimizer.param_groups[0]["lr"]
    args = _full_args(name, extra)
    if takes_base_lr and "base_lr" in kwargs:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = args["base_lr"]
    if name in _TORCH_CLASSES:
        if name != "cyclic_lr":
            args.pop("base_lr", None)
        return _TORCH_CLASSES[name](optimizer, **args, **momentum)
    if name == "linear_warmup_lr" and args["start_factor"] > 0 and args["warmup_steps"] > 0:
        return LinearLR(optimizer, start_factor=args["start_factor"], end_factor=1.0, total_iters=args["warmup_steps"])
    return LambdaLR(optimizer, _lambda_factor(name, args))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(float(f"{value:.12g}"))  # 9.999999999999999e-05 -> 0.0001
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)


def _call(func: str, args: Mapping[str, Any]) -> str:
    inner = ", ".join(["optimizer"] + [f"{k}={_fmt(v)}" for k, v in args.items()])
    return f"{func}({inner})"


def torch_code(name: str, **kwargs: Any) -> str:
    """The line of PyTorch (or transformers) code that builds schedule ``name`` with these arguments.

    PyTorch schedules give their class with every argument spelled out;
    ``warmup_cosine_lr``, ``inverse_sqrt_lr`` and ``wsd_lr`` give the
    ``transformers`` function; the two warmups give ``LinearLR`` or a
    ``LambdaLR``. ``base_lr`` is the optimizer's ``lr`` and so does not appear
    (except for ``CyclicLR``, which takes it). The line expects a variable
    ``optimizer`` and, for ``LambdaLR`` lines, ``import math``.

    Parameters
    ----------
    name : str
        A key of :data:`SCHEDULES`.
    **kwargs
        The arguments of the pure function, without ``step`` (``base_lr`` included where it has one).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For an unknown ``name`` or an invalid argument.

    Examples
    --------
    >>> torch_code("cosine_annealing_lr", base_lr=0.1, T_max=100)
    'CosineAnnealingLR(optimizer, T_max=100, eta_min=0.0)'
    >>> torch_code("warmup_cosine_lr", base_lr=0.1, warmup_steps=10, total_steps=100)
    'transformers.get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=10, num_training_steps=100)'
    >>> torch_code("linear_warmup_lr", base_lr=0.1, warmup_steps=5)
    'LambdaLR(optimizer, lambda step: min(1.0, step / 5))'
    """
    args = _full_args(name, kwargs)
    if name in _TORCH_CLASSES:
        if name != "cyclic_lr":
            args.pop("base_lr", None)
        return _call(_TORCH_CLASSES[name].__name__, args)
    base_lr = args.pop("base_lr")
    if name == "warmup_cosine_lr":
        hf = {"num_warmup_steps": args["warmup_steps"], "num_training_steps": args["total_steps"]}
        if args["min_lr"] == 0:
            return _call("transformers.get_cosine_schedule_with_warmup", hf)
        return _call("transformers.get_cosine_with_min_lr_schedule_with_warmup", {**hf, "min_lr": args["min_lr"]})
    if name == "inverse_sqrt_lr":
        hf = {"num_warmup_steps": args["warmup_steps"]}
        if args["timescale"] is not None:
            hf["timescale"] = args["timescale"]
        return _call("transformers.get_inverse_sqrt_schedule", hf)
    if name == "wsd_lr":
        hf = {
            "num_warmup_steps": args["warmup_steps"],
            "num_stable_steps": args["stable_steps"],
            "num_decay_steps": args["decay_steps"],
            "warmup_type": args["warmup_type"],
            "decay_type": args["decay_type"],
            "min_lr_ratio": args["min_lr"] / base_lr,
        }
        return _call("transformers.get_wsd_schedule", hf)
    warmup = args["warmup_steps"]
    if warmup == 0:
        return "LambdaLR(optimizer, lambda step: 1.0)"
    if name == "exponential_warmup_lr":
        return f"LambdaLR(optimizer, lambda step: 1.0 - math.exp(-2.0 * step / {warmup}))"
    if args["start_factor"] > 0:
        return _call("LinearLR", {"start_factor": args["start_factor"], "end_factor": 1.0, "total_iters": warmup})
    return f"LambdaLR(optimizer, lambda step: min(1.0, step / {warmup}))"


def dummy_optimizer(lr: float = 0.1, kind: str = "sgd") -> Optimizer:
    """An optimizer over one parameter that never gets a gradient, for looking at schedules.

    Stepping it changes nothing (parameters without ``.grad`` are skipped), so
    :func:`trace` can call ``optimizer.step()`` before each ``scheduler.step()``
    as PyTorch expects, without a warning and without a model.

    Parameters
    ----------
    lr : float, default 0.1
        The optimizer's LR (the schedules' ``base_lr``), ``>= 0``.
    kind : {"sgd", "adam"}, default "sgd"
        ``SGD(momentum=0.9)`` or ``Adam(betas=(0.9, 0.999))``; both have a momentum
        that ``CyclicLR`` / ``OneCycleLR`` can cycle (``momentum`` or ``betas[0]``).

    Returns
    -------
    torch.optim.Optimizer

    Examples
    --------
    >>> opt = dummy_optimizer(lr=0.5)
    >>> opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]
    (0.5, 0.9)
    """
    lr = non_negative("lr", lr)
    kind = choice("kind", kind, ("sgd", "adam"))
    params = [torch.nn.Parameter(torch.zeros(1))]
    if kind == "sgd":
        return SGD(params, lr=lr, momentum=0.9)
    return Adam(params, lr=lr, betas=(0.9, 0.999))


def _group_value(group: Mapping[str, Any], value: str) -> float:
    if value == "lr":
        return float(group["lr"])
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"])


def trace(scheduler: LRScheduler, steps: int, value: str = "lr") -> list[float]:
    """The LR (or momentum) of param group 0 now and after each of the next ``steps - 1`` steps.

    For a fresh scheduler this is steps ``0 .. steps - 1``, to compare with
    ``trace_fn(fn, steps, ...)``. Before each ``scheduler.step()`` it calls
    ``optimizer.step()``, which PyTorch expects (otherwise it warns); that is a
    no-op only if no parameter has a gradient, so it refuses an optimizer whose
    parameters have one: use :func:`dummy_optimizer`, or
    ``optimizer.zero_grad(set_to_none=True)`` first. The scheduler is advanced
    (``steps - 1`` calls): build a new one to train with.

    Parameters
    ----------
    scheduler : torch.optim.lr_scheduler.LRScheduler
        Any scheduler stepped without arguments (not ``ReduceLROnPlateau``).
    steps : int
        Number of values, ``>= 0``.
    value : {"lr", "momentum"}, default "lr"
        ``"momentum"`` reads ``momentum``, or ``betas[0]`` for Adam-like optimizers.

    Returns
    -------
    list of float

    Examples
    --------
    >>> from torch.optim.lr_scheduler import StepLR
    >>> trace(StepLR(dummy_optimizer(lr=1.0), step_size=2, gamma=0.5), 5)
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    if isinstance(scheduler, ReduceLROnPlateau) or not isinstance(scheduler, LRScheduler):
        raise ValueError(
            "scheduler must be a torch.optim.lr_scheduler scheduler stepped without arguments "
            f"(not ReduceLROnPlateau), got {type(scheduler).__name__}"
        )
    steps = integer("steps", steps, low=0)
    value = choice("value", value, ("lr", "momentum"))
    optimizer = scheduler.optimizer
    if any(p.grad is not None for g in optimizer.param_groups for p in g["params"]):
        raise ValueError(
            "scheduler: its optimizer has parameters with gradients, which trace would update; "
            "call optimizer.zero_grad(set_to_none=True) first or use dummy_optimizer()"
        )
    out = []
    for i in range(steps):
        if i:
            optimizer.step()
            scheduler.step()
        out.append(_group_value(optimizer.param_groups[0], value))
    return out


def trace_fn(fn: Callable[..., float], steps: int, **kwargs: Any) -> list[float]:
    """``[fn(step, **kwargs) for step in range(steps)]``, the pure counterpart of :func:`trace`.

    Parameters
    ----------
    fn : callable
        A schedule ``fn(step, **kwargs) -> float``, e.g. from :data:`SCHEDULES` or :func:`compose`.
    steps : int
        Number of values, ``>= 0``.
    **kwargs
        Passed to ``fn``.

    Returns
    -------
    list of float

    Examples
    --------
    >>> trace_fn(exponential_lr, 3, base_lr=1.0, gamma=0.5)
    [1.0, 0.5, 0.25]
    """
    steps = integer("steps", steps, low=0)
    return [fn(step, **kwargs) for step in range(steps)]


def compose(phases: Sequence[tuple[Callable[..., float], int | None, Mapping[str, Any]]]) -> Callable[[int], float]:
    """Chain schedules: each phase runs for its length, counting its steps from 0.

    ``phases`` is a list of ``(fn, length, kwargs)``; at global step ``s`` in
    phase ``i`` (which starts at ``start_i``, the sum of the earlier lengths)
    the LR is ``fn(s - start_i, **kwargs)``. The last phase goes on past its
    length (which may be ``None``). This is what ``SequentialLR`` does with
    ``milestones`` = the phase starts: each scheduler starts from its own step 0
    at its milestone.

    Parameters
    ----------
    phases : sequence of (callable, int or None, mapping)
        At least one phase; every length but the last is an integer ``>= 1``.

    Returns
    -------
    callable
        ``f(step) -> float`` for every integer ``step >= 0``.

    Examples
    --------
    Linear warmup for 10 steps, then a cosine over the remaining 90 steps, is
    exactly ``warmup_cosine_lr`` with ``total_steps=100``: the cosine's step 0
    is global step 10, where the warmup ends (no off-by-one).

    >>> f = compose([
    ...     (linear_warmup_lr, 10, dict(base_lr=0.1, warmup_steps=10)),
    ...     (cosine_annealing_lr, None, dict(base_lr=0.1, T_max=90)),
    ... ])
    >>> all(math.isclose(f(s), warmup_cosine_lr(s, 0.1, 10, 100), abs_tol=1e-15) for s in range(101))
    True
    >>> f(5), f(10)
    (0.05, 0.1)
    """
    if isinstance(phases, (str, bytes)) or not isinstance(phases, Sequence) or not phases:
        raise ValueError(f"phases must be a non-empty list of (fn, length, kwargs), got {phases!r}")
    starts, start, checked = [], 0, []
    for i, phase in enumerate(phases):
        if not isinstance(phase, tuple) or len(phase) != 3:
            raise ValueError(f"phases[{i}] must be a tuple (fn, length, kwargs), got {phase!r}")
        fn, length, kwargs = phase
        if not callable(fn):
            raise ValueError(f"phases[{i}]: fn must be callable, got {fn!r}")
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"phases[{i}]: kwargs must be a mapping, got {kwargs!r}")
        if i < len(phases) - 1 or length is not None:
            integer(f"phases[{i}] length", length, low=1)
        starts.append(start)
        start += length or 0
        checked.append((fn, dict(kwargs)))

    def schedule(step: int) -> float:
        step = _step(step)
        i = bisect_right(starts, step) - 1
        fn, kwargs = checked[i]
        return fn(step - starts[i], **kwargs)

    return schedule
