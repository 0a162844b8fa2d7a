"""Shared code for the learning-rate course.

Submodules: ``schedules`` (closed forms of every schedule, checked against PyTorch),
``lr_finder`` (the LR range test), ``training`` (a small training loop), ``data``
(offline datasets), ``models`` (the tiny networks of the notebooks), ``plots``,
``widgets`` (interactive demos), ``quiz`` (quick checks), ``quadratic`` (gradient
descent on quadratics) and ``feedback`` (checking an exercise against a reference).
"""
from .utils import environment_report, get_device, seed_everything

__version__ = "0.1.0"
REPOSITORY = "https://github.com/lr-course/learning-rate-strategies"

__all__ = ["environment_report", "get_device", "seed_everything", "setup", "REPOSITORY"]


def setup(seed: int = 0):
    """Seed everything, print where the notebook runs, and return the device to use.

    Called by the first code cell of every notebook. In a notebook it also switches
    matplotlib to inline figures.
    """
    _inline_figures()
    seed_everything(seed)
    print(environment_report())
    return get_device()


def _inline_figures() -> None:
    """``%matplotlib inline``: figures returned by ``helpers.plots`` display as images."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to display into
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")
