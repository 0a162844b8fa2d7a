"""Argument checks shared by the public functions of ``helpers``.

Each check raises ``ValueError`` with a message that names the parameter, the
allowed range and the value received, e.g.
``lr must be a finite number > 0, got -0.1``.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable

import numpy as np

# Checked first: an isinstance test against the abstract numbers.Real/Integral is
# several times slower, and schedules are evaluated step by step in live demos.
_REALS = (int, float, np.integer, np.floating)
_INTEGERS = (int, np.integer)


def _is_number(value) -> bool:
    if isinstance(value, _REALS):
        return not isinstance(value, bool)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    if isinstance(value, _INTEGERS):
        return not isinstance(value, bool)
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def number(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """Return ``float(value)`` if it is a finite real in the given range, else raise ``ValueError``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open`` is true.
    """
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{_range(low, high, low_open, high_open)}, got {value!r}")
    if (low is not None and (value < low or (low_open and value == low))) or (
        high is not None and (value > high or (high_open and value == high))
    ):
        raise ValueError(f"{name} must be a finite number{_range(low, high, low_open, high_open)}, got {value!r}")
    return float(value)


def positive(name: str, value) -> float:
    """A finite number > 0 (learning rates, factors)."""
    return number(name, value, low=0, low_open=True)


def non_negative(name: str, value) -> float:
    """A finite number >= 0."""
    return number(name, value, low=0)


def integer(name: str, value, *, low=None, high=None) -> int:
    """Return ``int(value)`` if it is an integer (``bool`` excluded) in ``[low, high]``."""
    if not _is_integer(value):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value!r}")
    return int(value)


def choice(name: str, value, allowed: Iterable[str]) -> str:
    """``value`` must be one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _range(low, high, low_open=False, high_open=False) -> str:
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f" in {left}{low}, {high}{right}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""
