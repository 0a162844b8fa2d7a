"""Seeding and device utilities used at the top of every notebook."""
from __future__ import annotations

import platform
import random
import sys

import numpy as np
import torch

from . import _validate

__all__ = ["seed_everything", "get_device", "environment_report"]


def seed_everything(seed: int = 0) -> int:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device).

    Parameters
    ----------
    seed : int, default 0
        Seed in ``[0, 2**32 - 1]`` (NumPy's range).

    Returns
    -------
    int
        The seed, so a notebook can print or store it.

    Examples
    --------
    >>> seed_everything(3)
    3
    >>> a = torch.rand(2); _ = seed_everything(3); torch.equal(a, torch.rand(2))
    True
    """
    seed = _validate.integer("seed", seed, low=0, high=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: the first CUDA GPU when there is one, else the CPU.

    Parameters
    ----------
    prefer : {None, "cuda", "cpu"}, default None
        ``"cpu"`` forces the CPU (handy to compare timings); ``None`` and
        ``"cuda"`` pick CUDA when available and fall back to the CPU otherwise.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> get_device("cpu")
    device(type='cpu')
    >>> get_device().type in {"cpu", "cuda"}
    True
    """
    _validate.choice("prefer", prefer, (None, "cuda", "cpu"))
    if prefer != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def environment_report() -> str:
    """One line describing where the notebook runs: torch, device, Python, Colab.

    Returns
    -------
    str
        For example ``"torch 2.13.0+cpu | device: cpu (2 threads) | Python 3.11.7 | Colab: no"``.

    Examples
    --------
    >>> environment_report().startswith("torch ")
    True
    """
    device = get_device()
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        threads = torch.get_num_threads()
        where = f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    colab = "yes" if "google.colab" in sys.modules else "no"
    return (f"torch {torch.__version__} | device: {where} | "
            f"Python {platform.python_version()} | Colab: {colab}")
