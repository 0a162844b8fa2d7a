"""Claims about training runs that hold on every seed, not just on the one you ran.

Chaotic training runs differ in their last digits between CPUs, and near an
instability in their story too. So the course states an outcome of training only
when it holds on *every* seed of a set, quotes numbers as ranges across seeds, and
ends each experiment with a one-line **verdict** computed from its data::

    verdict: lr = 0.1 ends with a lower training loss than lr = 0.001 (on all 5 seeds): True

The seed set can be shifted from outside, so the same notebook can be re-run on
other seeds: ``LR_COURSE_SEED_SHIFT=1`` makes :func:`seeds` return other seeds (and
:func:`helpers.setup` seed everything differently). ``python3 course.py seedcheck``
re-runs the notebooks that way and compares their verdicts.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from . import _validate

__all__ = ["SEED_SHIFT_ENV", "seed_shift", "seeds", "verdict", "seed_range"]

SEED_SHIFT_ENV = "LR_COURSE_SEED_SHIFT"
"""Environment variable that shifts every seed set of the course (an integer >= 0)."""

_STRIDE = 1000  # shifted seed sets never overlap for sets of fewer than 1000 seeds


def seed_shift() -> int:
    """The seed shift read from ``LR_COURSE_SEED_SHIFT`` (0 when unset).

    >>> seed_shift() >= 0
    True
    """
    raw = os.environ.get(SEED_SHIFT_ENV, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{SEED_SHIFT_ENV} must be an integer >= 0, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{SEED_SHIFT_ENV} must be an integer >= 0, got {value}")
    return value


def seeds(n: int = 5) -> list[int]:
    """The ``n`` seeds an experiment runs on: ``0 .. n-1``, shifted by ``1000 × seed_shift()``.

    Parameters
    ----------
    n : int in [1, 1000]
        How many seeds.

    Examples
    --------
    >>> import os
    >>> os.environ.pop("LR_COURSE_SEED_SHIFT", None) and None
    >>> seeds(3)
    [0, 1, 2]
    >>> os.environ["LR_COURSE_SEED_SHIFT"] = "2"; seeds(3)
    [2000, 2001, 2002]
    >>> del os.environ["LR_COURSE_SEED_SHIFT"]
    """
    n = _validate.integer("n", n, low=1, high=_STRIDE)
    start = _STRIDE * seed_shift()
    return list(range(start, start + n))


def verdict(claim: str, holds: bool | Iterable[bool]) -> bool:
    """Print ``verdict: <claim>: True|False`` and return the verdict.

    ``holds`` is one boolean, or one per seed (the claim must hold on *all* of them;
    the line then says on how many seeds it was tested). Verdict lines are what a
    notebook's prose may rely on: re-running with shifted seeds must print the same.

    Examples
    --------
    >>> verdict("2 + 2 = 4", True)
    verdict: 2 + 2 = 4: True
    True
    >>> verdict("the loss fell", [True, True, False])
    verdict: the loss fell (on all 3 seeds): False
    False
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"claim must be a non-empty string, got {claim!r}")
    if isinstance(holds, (bool, np.bool_)):
        ok, where = bool(holds), ""
    else:
        flags = [bool(h) for h in holds]
        if not flags:
            raise ValueError("holds must hold at least one boolean, got none")
        ok, where = all(flags), f" (on all {len(flags)} seeds)"
    print(f"verdict: {claim}{where}: {ok}")
    return ok


def seed_range(values: Sequence[float], fmt: str = "{:.3g}") -> str:
    """``"low–high"`` of ``values`` (one per seed), each end formatted with ``fmt``.

    >>> seed_range([0.951, 0.97, 0.962], "{:.1%}")
    '95.1–97.0%'
    >>> seed_range([2.0, 2.0])
    '2'
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("values must hold at least one number, got none")
    low, high = fmt.format(values.min()), fmt.format(values.max())
    if low == high:
        return low
    unit = ""
    if low.endswith("%") and high.endswith("%"):
        low, unit = low[:-1], "%"
        high = high[:-1]
    return f"{low}–{high}{unit}"
