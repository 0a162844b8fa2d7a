"""Ready :class:`helpers.audit.LRAudit` callbacks for the Hugging Face ``Trainer`` and Lightning.

Each callback attaches an audit to the run's optimizer when training starts, builds the
plan from the same scheduler settings, and at the end of training compares every param
group with it: :attr:`report` is one line per group, :attr:`mismatches` maps each group's
name to its :class:`helpers.audit.LRMismatch` (or ``None``). With ``strict=True`` a
mismatch raises ``AssertionError`` (for tests and CI); with ``verbose=True`` (default) the
report is printed. A scheduler that needs the run's metrics (``ReduceLROnPlateau``) has no
plan: the report says so and checks nothing.

* ``HFAuditCallback`` (a ``transformers.TrainerCallback``): the plan is
  ``transformers.get_scheduler`` with the run's ``TrainingArguments``
  (``lr_scheduler_type``, warmup, ``lr_scheduler_kwargs``) over ``state.max_steps``,
  exactly as ``Trainer.create_scheduler`` builds it; a resumed run is compared from its
  ``global_step`` on.
* ``LightningAuditCallback`` (a ``lightning.pytorch.Callback``, or
  ``pytorch_lightning.Callback`` if only that is installed): the plan is a copy of the
  scheduler returned by ``configure_optimizers``, taken when training starts and stepped
  once per optimizer step (``interval="step"``) or per epoch, every ``frequency``; or
  the ``plan`` you pass.

The classes are built on first use, so importing this module needs neither library.
:func:`scheduler_plan` (the copy-and-trace used by both) works on any scheduler.

Examples
--------
>>> import torch
>>> from torch.optim.lr_scheduler import StepLR
>>> w = torch.nn.Parameter(torch.zeros(1))
>>> opt = torch.optim.SGD([w], lr=1.0)
>>> sched = StepLR(opt, step_size=2, gamma=0.5)
>>> scheduler_plan(sched, opt, 5)
[[1.0, 1.0, 0.5, 0.5, 0.25]]
>>> sched.last_epoch, opt.param_groups[0]["lr"]  # the real ones are untouched
(0, 1.0)
"""
from __future__ import annotations

import copy
import warnings
from typing import Optional

import torch

from . import _validate
from .audit import LRAudit, unwrap_optimizer

__all__ = ["scheduler_plan", "HFAuditCallback", "LightningAuditCallback"]


class _Shadow(torch.optim.Optimizer):
    """An optimizer with the param groups' settings of another and a step that does nothing."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        groups = [{**copy.deepcopy({k: v for k, v in g.items() if k != "params"}),
                   "params": [torch.zeros(1, requires_grad=True)]} for g in optimizer.param_groups]
        super().__init__(groups, defaults={})

    def step(self, closure=None):  # noqa: D102 - nothing to update: only the LRs matter
        return None


def _trace(scheduler, shadow: torch.optim.Optimizer, steps: int, every: int) -> list[list[float]]:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError("scheduler must be stepped without arguments to have a plan; "
                         "ReduceLROnPlateau depends on the metrics of the run")
    plans = [[] for _ in shadow.param_groups]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the copy's optimizer never stepped: PyTorch's order warning
        for step in range(steps):
            for plan, group in zip(plans, shadow.param_groups):
                plan.append(float(group["lr"]))
            if (step + 1) % every == 0:
                shadow.step()
                scheduler.step()
    return plans


def scheduler_plan(scheduler, optimizer, steps: int, every: int = 1) -> list[list[float]]:
    """The LRs a copy of ``scheduler`` gives each param group over ``steps`` optimizer steps.

    The scheduler is deep-copied with ``optimizer`` replaced by a stand-in with the same
    param groups' settings, so its state (step count, base LRs, lambdas) carries over and
    the real scheduler and optimizer are left as they are.

    Parameters
    ----------
    scheduler : torch.optim.lr_scheduler.LRScheduler
        Built for ``optimizer``; stepped without arguments (not ``ReduceLROnPlateau``).
    optimizer : torch.optim.Optimizer, or a wrapper of one
        The optimizer the scheduler drives.
    steps : int
        Number of optimizer steps, ``>= 0``.
    every : int, default 1
        Optimizer steps per scheduler step, ``>= 1``.

    Returns
    -------
    list of list of float
        One list per param group: the LR of steps ``0 .. steps - 1``.
    """
    steps = _validate.integer("steps", steps, low=0)
    every = _validate.integer("every", every, low=1)
    optimizer = unwrap_optimizer(optimizer)
    shadow = _Shadow(optimizer)
    inner = getattr(scheduler, "scheduler", scheduler)  # accelerate's AcceleratedScheduler
    return _trace(copy.deepcopy(inner, memo={id(optimizer): shadow}), shadow, steps, every)


class _Run:
    """The part both callbacks share: attach, then compare every group and report."""

    def _audit_init(self, strict: bool, verbose: bool, rtol: Optional[float]) -> None:
        self.strict, self.verbose, self.rtol = bool(strict), bool(verbose), rtol
        self.audit: Optional[LRAudit] = None
        self.plans: list[list[float]] = []
        self.no_plan = ""  # why there is no plan (a scheduler driven by metrics), if so
        self.start = 0
        self.mismatches: dict = {}
        self.report = ""

    def _begin(self, optimizer, plans, start: int) -> None:
        """``plans``: one per group, or a function that builds them (a ValueError: no plan)."""
        self.audit, self.start = LRAudit(optimizer), start
        try:
            self.plans, self.no_plan = (plans() if callable(plans) else plans), ""
        except ValueError as error:
            self.plans, self.no_plan = [], str(error)

    def _finish(self) -> None:
        audit = self.audit
        audit.remove()
        if self.no_plan:
            self.report = f"LR audit: {audit.steps} optimizer steps recorded, not checked ({self.no_plan})"
            if self.verbose:
                print(self.report)
            return
        self.mismatches = {name: audit.compare(plan, group=index, rtol=self.rtol, start=self.start)
                           for index, (name, plan) in enumerate(zip(audit.names, self.plans))}
        lines = [f"LR audit, group {name}: " + ("matches the plan" if m is None else str(m))
                 for name, m in self.mismatches.items()]
        self.report = f"LR audit: {audit.steps} optimizer steps recorded\n" + "\n".join(lines)
        if self.verbose:
            print(self.report)
        if self.strict and any(m is not None for m in self.mismatches.values()):
            raise AssertionError(self.report)


def _hf_class():
    from transformers import TrainerCallback, get_scheduler

    class HFAuditCallback(_Run, TrainerCallback):
        """Audit a ``transformers.Trainer`` run against the plan of its ``TrainingArguments``.

        Parameters
        ----------
        strict : bool, default False
            Raise ``AssertionError`` (the report) at the end of training on any mismatch.
        verbose : bool, default True
            Print the report at the end of training.
        rtol : float, optional
            As for :meth:`helpers.audit.LRAudit.compare`.
        """

        def __init__(self, strict: bool = False, verbose: bool = True, rtol: Optional[float] = None) -> None:
            self._audit_init(strict, verbose, rtol)

        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            optimizer = unwrap_optimizer(optimizer)

            def plans():
                shadow = _Shadow(optimizer)
                scheduler = get_scheduler(args.lr_scheduler_type, optimizer=shadow,
                                          num_warmup_steps=args.get_warmup_steps(state.max_steps),
                                          num_training_steps=state.max_steps,
                                          scheduler_specific_kwargs=args.lr_scheduler_kwargs)
                return _trace(scheduler, shadow, state.max_steps, 1)

            self._begin(optimizer, plans, state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if self.audit is not None:
                self._finish()

    return HFAuditCallback


def _lightning_base():
    try:
        from lightning.pytorch import Callback
    except ImportError:
        from pytorch_lightning import Callback
    return Callback


def _lightning_class():
    Callback = _lightning_base()

    class LightningAuditCallback(_Run, Callback):
        """Audit a Lightning ``Trainer`` run against a copy of its configured scheduler.

        Parameters
        ----------
        plan : sequence of float, or callable, optional
            The plan for every param group (as for :meth:`helpers.audit.LRAudit.compare`);
            default: a copy of the first configured scheduler, taken at the start of
            training (:func:`scheduler_plan`), over ``trainer.estimated_stepping_batches``.
        strict, verbose, rtol
            As for ``HFAuditCallback``.
        """

        def __init__(self, plan=None, strict: bool = False, verbose: bool = True,
                     rtol: Optional[float] = None) -> None:
            self._audit_init(strict, verbose, rtol)
            self.plan = plan

        def on_train_start(self, trainer, pl_module):
            optimizer = unwrap_optimizer(trainer.optimizers[0])
            steps = int(trainer.estimated_stepping_batches)
            if self.plan is not None:
                plans = [self.plan] * len(optimizer.param_groups)
            elif not trainer.lr_scheduler_configs:
                plans = [[float(g["lr"])] * steps for g in optimizer.param_groups]  # no scheduler: constant
            else:
                config = trainer.lr_scheduler_configs[0]
                every = config.frequency
                if config.interval == "epoch":
                    every *= max(1, steps // max(1, trainer.max_epochs or 1))
                plans = lambda: scheduler_plan(config.scheduler, optimizer, steps, every)  # noqa: E731
            self._begin(optimizer, plans, trainer.global_step)

        def on_train_end(self, trainer, pl_module):
            if self.audit is not None:
                self._finish()

    return LightningAuditCallback


_BUILDERS = {"HFAuditCallback": _hf_class, "LightningAuditCallback": _lightning_class}
_BUILT: dict = {}


def __getattr__(name: str):
    if name in _BUILDERS:
        if name not in _BUILT:
            _BUILT[name] = _BUILDERS[name]()
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
