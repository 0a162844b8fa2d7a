"""Shared code for the learning-rate course.

Submodules: ``schedules`` (closed forms of every schedule, checked against PyTorch),
``lr_finder`` (the LR range test), ``training`` (a small training loop), ``data``
(offline datasets), ``models`` (the tiny networks of the notebooks), ``plots``,
``widgets`` (interactive demos), ``quiz`` (quick checks), ``quadratic`` (gradient
descent on quadratics), ``feedback`` (checking an exercise against a reference),
``evidence`` (seed sets and the verdict lines that back every claim about training),
``audit`` (recording and checking the LRs an optimizer applied) and ``distributed``
(a multi-process data-parallel run with the gloo backend, on the CPU).
"""
from .evidence import margin_above, margin_below, seed_range, seed_shift, seeds, verdict
from .utils import environment_report, get_device, seed_everything

__version__ = "0.1.0"
REPOSITORY = "https://github.com/lr-course/learning-rate-strategies"

__all__ = ["environment_report", "get_device", "seed_everything", "setup", "seeds", "seed_range",
           "seed_shift", "verdict", "margin_below", "margin_above", "REPOSITORY"]


def setup(seed: int = 0):
    """Seed everything, print where the notebook runs, and return the device to use.

    Called by the first code cell of every notebook. In a notebook it also switches
    matplotlib to inline figures; on the CPU it makes PyTorch use one thread.
    ``seed``: an integer in [0, 2**32 - 1]. With ``LR_COURSE_SEED_SHIFT=k`` in the
    environment the seed becomes ``seed + 1000 k`` (see :mod:`helpers.evidence`).

    >>> device = setup(seed=0)  # doctest: +ELLIPSIS
    torch ... | device: ... | Python ... | Colab: no
    >>> device.type in {"cpu", "cuda"}
    True
    """
    _inline_figures()
    device = get_device()
    if device.type == "cpu":
        # The course's models are tiny: extra threads only add overhead (a lot of it when
        # cores are busy), and one thread makes the numbers independent of the core count.
        import torch

        torch.set_num_threads(1)
    shift = seed_shift()
    seed_everything(seed + 1000 * shift)
    print(environment_report())
    if shift:
        print(f"seeds shifted by {1000 * shift} (LR_COURSE_SEED_SHIFT={shift})")
    return device


def _inline_figures() -> None:
    """``%matplotlib inline``: figures returned by ``helpers.plots`` display as images."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to display into
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")
