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

A verdict can also say **how close it came to failing**: pass ``margin=`` (see
:func:`margin_below` and :func:`margin_above`). The margin is not printed (the line
must read the same on every seed); it is appended, with the claim, to the file named
by ``LR_COURSE_VERDICT_LOG`` when that is set, which is how
``python3 course.py seedcheck --shifts 0-19`` builds its table of worst-shift margins.
"""
from __future__ import annotations

import json
import math
import os
from typing import Iterable, Sequence

import numpy as np

from . import _validate

__all__ = ["SEED_SHIFT_ENV", "VERDICT_LOG_ENV", "seed_shift", "seeds", "verdict", "seed_range",
           "margin_below", "margin_above"]

SEED_SHIFT_ENV = "LR_COURSE_SEED_SHIFT"
"""Environment variable that shifts every seed set of the course (an integer >= 0)."""

VERDICT_LOG_ENV = "LR_COURSE_VERDICT_LOG"
"""Environment variable naming a file to which every verdict appends one JSON line."""

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


def verdict(claim: str, holds: bool | Iterable[bool], *, margin: float | None = None) -> bool:
    """Print ``verdict: <claim>: True|False`` and return the verdict.

    ``holds`` is one boolean, or one per seed (the claim must hold on *all* of them;
    the line then says on how many seeds it was tested). Verdict lines are what a
    notebook's prose may rely on: re-running with shifted seeds must print the same.

    ``margin`` (optional) is how far the measured quantity stayed from its threshold
    at the worst seed, as a fraction of the threshold: positive when the claim held
    with room (0.25 = 25 % of the way clear), negative when it failed. Compute it with
    :func:`margin_below` / :func:`margin_above`. It is never printed; it is logged (see
    ``LR_COURSE_VERDICT_LOG``) so that a sweep over many seed shifts can report how
    close each claim came to flipping.

    Examples
    --------
    >>> verdict("2 + 2 = 4", True)
    verdict: 2 + 2 = 4: True
    True
    >>> verdict("the loss fell", [True, True, False])
    verdict: the loss fell (on all 3 seeds): False
    False
    >>> verdict("cosine ends lower", [True, True], margin=margin_below([0.1, 0.2], [0.4, 0.3]))
    verdict: cosine ends lower (on all 2 seeds): True
    True
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"claim must be a non-empty string, got {claim!r}")
    if isinstance(holds, (bool, np.bool_)):
        ok, where, n = bool(holds), "", 1
    else:
        flags = [bool(h) for h in holds]
        if not flags:
            raise ValueError("holds must hold at least one boolean, got none")
        ok, where, n = all(flags), f" (on all {len(flags)} seeds)", len(flags)
    if margin is not None:
        margin = float(margin)
        if math.isnan(margin):
            raise ValueError("margin must be a number (or None), got nan")
    print(f"verdict: {claim}{where}: {ok}")
    log = os.environ.get(VERDICT_LOG_ENV, "").strip()
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"claim": f"{claim}{where}", "holds": ok, "seeds": n,
                                "margin": margin}) + "\n")
    return ok


def _relative_room(room: np.ndarray, limits: np.ndarray) -> float:
    scale = np.where(np.abs(limits) > 0, np.abs(limits), 1.0)  # absolute room where the limit is 0
    return float(np.min(room / scale))


def _pair(values, limits) -> tuple[np.ndarray, np.ndarray]:
    v = np.atleast_1d(np.asarray(values, dtype=float))
    lim = np.broadcast_to(np.atleast_1d(np.asarray(limits, dtype=float)), v.shape)
    if v.size == 0:
        raise ValueError("values must hold at least one number, got none")
    return v, lim


def margin_below(values, limits) -> float:
    """Worst relative room of ``values`` under ``limits``: ``min((limit - v) / |limit|)``.

    ``limits`` is one number or one per value (per seed). Positive when every value is
    below its limit, negative when one is not. Where a limit is 0 the room is absolute.
    Use it for claims such as "A ends below B on every seed" (``margin_below(a, b)``)
    or "the loss stays under 0.1" (``margin_below(losses, 0.1)``).

    >>> round(margin_below([0.8, 0.5], 1.0), 3)
    0.2
    >>> round(margin_below([1.2], [1.0]), 3)
    -0.2
    """
    v, lim = _pair(values, limits)
    return _relative_room(lim - v, lim)


def margin_above(values, limits) -> float:
    """Worst relative room of ``values`` over ``limits``: ``min((v - limit) / |limit|)``.

    The mirror of :func:`margin_below`, for claims such as "accuracy stays above 90 %".

    >>> round(margin_above([0.95, 0.99], 0.9), 3)
    0.056
    """
    v, lim = _pair(values, limits)
    return _relative_room(v - lim, lim)


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
