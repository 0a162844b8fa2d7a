"""Training loops that record what a learning-rate course plots.

:func:`fit` trains for a number of epochs, :func:`train_steps` for an exact
number of optimizer steps; both return a :class:`History` with the learning
rate, momentum and training loss of every step and the validation metrics of
every evaluation. A non-finite loss ends the run and is recorded
(``History.diverged``) rather than raised, so a learning-rate sweep can go on.

Conventions shared by both loops:

* batches are ``(inputs, targets)`` pairs, moved to the model's device;
* the loss defaults to ``nn.CrossEntropyLoss()``; sequence outputs of shape
  ``(N, L, C)`` with integer targets ``(N, L)`` are flattened to
  ``(N * L, C)`` and ``(N * L,)``, i.e. one classification per position,
  averaged over all positions;
* accuracy is recorded when the targets are class indices (integer tensors
  with one dimension fewer than the outputs), per position for sequences;
* the scheduler is always stepped *after* ``optimizer.step()``, the order
  PyTorch expects (so it never warns), and is not stepped on a step whose
  loss was non-finite.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm

from . import _validate

__all__ = ["History", "fit", "train_steps", "evaluate"]


@dataclass
class History:
    """What one training run recorded.

    Attributes
    ----------
    lrs, losses, momenta : list of float
        Per optimizer step: learning rate of parameter group 0 used by the
        step, training loss of the batch (before the update), and momentum
        (``momentum`` for SGD-like optimizers, ``betas[0]`` for Adam-like
        ones; empty if the optimizer has neither).
    epoch_train_loss : list of float
        Per complete pass over the training loader: mean training loss,
        weighted by the number of targets in each batch.
    val_loss, val_acc : list of float
        Per evaluation (every epoch in :func:`fit`): validation loss and
        accuracy in ``[0, 1]``; ``val_acc`` stays empty for regression.
    eval_steps : list of int
        Optimizer steps completed at each evaluation.
    diverged : bool
        ``True`` if a loss was non-finite; training stopped there.
    diverged_at : int or None
        0-based index of the first step not taken: the step whose training
        loss was non-finite (no update was made), or the step after a
        non-finite validation loss. It equals ``len(losses)``.

    Examples
    --------
    >>> h = History(val_acc=[0.5, 0.9, 0.95], eval_steps=[10, 20, 30])
    >>> h.final_val_acc, h.best_val_acc, h.steps_to(0.9), h.epochs_to(0.9), h.steps_to(0.99)
    (0.95, 0.95, 20, 2, None)
    """

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    momenta: list[float] = field(default_factory=list)
    epoch_train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    diverged: bool = False
    diverged_at: int | None = None

    @property
    def final_val_acc(self) -> float | None:
        """Validation accuracy of the last evaluation (``None`` without any)."""
        return self.val_acc[-1] if self.val_acc else None

    @property
    def best_val_acc(self) -> float | None:
        """Highest validation accuracy seen (``None`` without any)."""
        return max(self.val_acc) if self.val_acc else None

    def _first_eval_reaching(self, acc: float) -> int | None:
        acc = _validate.number("acc", acc, low=0, high=1)
        return next((i for i, a in enumerate(self.val_acc) if a >= acc), None)

    def steps_to(self, acc: float) -> int | None:
        """Optimizer steps done at the first evaluation with accuracy ``>= acc`` (``acc`` in [0, 1]).

        ``None`` if the run never got there. Accuracy is only measured at
        evaluations (epoch ends in :func:`fit`), so this is a multiple of
        the evaluation interval.
        """
        index = self._first_eval_reaching(acc)
        return None if index is None else self.eval_steps[index]

    def epochs_to(self, acc: float) -> int | None:
        """Number of epochs (1-based) until validation accuracy first reached ``acc``, else ``None``.

        Meaningful for :func:`fit`, which evaluates once per epoch.
        """
        index = self._first_eval_reaching(acc)
        return None if index is None else index + 1

    def as_dict(self) -> dict:
        """The recorded fields as a plain ``dict`` (lists copied), e.g. for ``json.dump``."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _check_model_optimizer(model, optimizer) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")


def _check_scheduler(scheduler, optimizer) -> None:
    if scheduler is None:
        return
    if not callable(getattr(scheduler, "step", None)):
        raise ValueError(f"scheduler must be None or an object with a step() method "
                         f"(a torch.optim.lr_scheduler scheduler), got {type(scheduler).__name__}")
    if getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("scheduler must be attached to the optimizer passed to this function")


def _criterion(criterion) -> Callable:
    if criterion is None:
        return nn.CrossEntropyLoss()
    if not callable(criterion):
        raise ValueError(f"criterion must be None or a callable loss, got {type(criterion).__name__}")
    return criterion


def _resolve_device(model: nn.Module, device) -> torch.device:
    param = next(model.parameters(), None)
    here = param.device if param is not None else torch.device("cpu")
    if device is None:
        return here
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None, a torch.device or a device string, got {device!r}") from err
    if device.type != here.type or (device.index is not None and device.index != here.index):
        raise ValueError(f"device must be the device of the model's parameters ({here}), got {device}; "
                         "move the model with model.to(device) before creating the optimizer")
    return device


def _unpack(batch, device: torch.device, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"{name} must yield (inputs, targets) pairs, got {type(batch).__name__}"
                         + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _align(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten per-position classification ``(N, L, C)``/``(N, L)`` to ``(N*L, C)``/``(N*L,)``."""
    if output.dim() == 3 and target.dim() == 2 and not target.is_floating_point():
        return output.reshape(-1, output.shape[-1]), target.reshape(-1)
    return output, target


def _is_classification(output: torch.Tensor, target: torch.Tensor) -> bool:
    return not target.is_floating_point() and output.dim() == target.dim() + 1


def _hyper(optimizer: torch.optim.Optimizer) -> tuple[float, float | None]:
    group = optimizer.param_groups[0]
    if "momentum" in group:
        momentum = group["momentum"]
    elif "betas" in group:
        momentum = group["betas"][0]
    else:
        momentum = None
    return float(group["lr"]), None if momentum is None else float(momentum)


def _cycle(loader: Iterable, name: str):
    """Yield ``(batch, end_of_pass)`` forever, restarting ``loader`` (and its shuffling) at each pass."""
    while True:
        iterator = iter(loader)
        batch = next(iterator, None)
        if batch is None:
            raise ValueError(f"{name} must yield at least one batch")
        for following in iterator:
            yield batch, False
            batch = following
        yield batch, True


def _length(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


class _Trainer:
    """One optimizer step at a time, with recording, divergence check and progress bar."""

    def __init__(self, model, optimizer, criterion, scheduler, device, history: History, bar,
                 loader_name: str) -> None:
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.scheduler, self.device, self.history, self.bar = scheduler, device, history, bar
        self.loader_name = loader_name
        self.pass_loss, self.pass_count = 0.0, 0

    def step(self, batch, step_scheduler: bool) -> bool:
        """Train on one batch; ``False`` if its loss was non-finite (nothing updated then)."""
        x, y = _unpack(batch, self.device, self.loader_name)
        lr, momentum = _hyper(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        output, target = _align(self.model(x), y)
        loss = self.criterion(output, target)
        value = float(loss.item())
        if not math.isfinite(value):
            self.diverge()
            return False
        loss.backward()
        self.optimizer.step()
        if step_scheduler:
            self.scheduler.step()
        h = self.history
        h.lrs.append(lr)
        h.losses.append(value)
        if momentum is not None:
            h.momenta.append(momentum)
        self.pass_loss += value * target.numel()
        self.pass_count += target.numel()
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{value:.4g}", lr=f"{lr:.3g}", refresh=False)
        return True

    def end_pass(self) -> None:
        self.history.epoch_train_loss.append(self.pass_loss / self.pass_count)
        self.pass_loss, self.pass_count = 0.0, 0

    def validate(self, val_loader) -> bool:
        """Evaluate, record, feed a plateau scheduler; ``False`` if the validation loss was non-finite."""
        loss, acc = evaluate(self.model, val_loader, criterion=self.criterion, device=self.device)
        if not math.isfinite(loss):
            self.diverge()
            return False
        h = self.history
        h.val_loss.append(loss)
        if acc is not None:
            h.val_acc.append(acc)
        h.eval_steps.append(len(h.losses))
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(loss)
        return True

    def diverge(self) -> None:
        self.history.diverged = True
        self.history.diverged_at = len(self.history.losses)


# --------------------------------------------------------------------------- #
# Public loops
# --------------------------------------------------------------------------- #
def fit(model: nn.Module, optimizer: torch.optim.Optimizer, train_loader, *, epochs: int, criterion=None,
        scheduler=None, step_per: str = "batch", val_loader=None, device=None, progress: bool = True) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``, recording every step.

    Each step: ``zero_grad``, forward, loss, check that the loss is finite,
    ``backward``, ``optimizer.step()``, then ``scheduler.step()`` when the
    scheduler is stepped per batch. After each epoch the model is evaluated
    on ``val_loader`` (if given) and a per-epoch scheduler is stepped.

    ``ReduceLROnPlateau`` is always stepped once per epoch with the
    validation loss, whatever ``step_per`` says: it reacts to an evaluation
    metric, which exists only once per epoch. It therefore needs ``val_loader``.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place, on the device of its parameters.
    optimizer : torch.optim.Optimizer
        Optimizer over ``model``'s parameters.
    train_loader : iterable of (inputs, targets)
        Typically a ``DataLoader``; iterated once per epoch.
    epochs : int
        Passes over ``train_loader``, ``>= 1``.
    criterion : callable, default ``nn.CrossEntropyLoss()``
        ``criterion(outputs, targets)`` returning a scalar mean loss. Sequence
        outputs ``(N, L, C)`` with integer targets ``(N, L)`` are flattened first.
    scheduler : learning-rate scheduler, optional
        Any ``torch.optim.lr_scheduler`` scheduler attached to ``optimizer``
        (or an object with a ``step()`` method).
    step_per : {"batch", "epoch"}, default "batch"
        When the scheduler is stepped: after every optimizer step (schedules
        whose length is counted in steps, e.g. ``OneCycleLR`` with
        ``total_steps=epochs * len(train_loader)``) or after every epoch
        (e.g. ``StepLR`` counted in epochs).
    val_loader : iterable of (inputs, targets), optional
        Evaluated after every epoch.
    device : None, str or torch.device, default None
        ``None``: the device of the model's parameters. Otherwise it must be that device.
    progress : bool, default True
        Show a ``tqdm`` bar (steps, with the current loss and learning rate).

    Returns
    -------
    History
        Per-step ``lrs``, ``losses``, ``momenta``; per-epoch
        ``epoch_train_loss``, ``val_loss``, ``val_acc``; ``diverged``.

    Examples
    --------
    >>> from helpers.data import digits_loaders
    >>> from helpers.models import mlp
    >>> train_loader, val_loader = digits_loaders(batch_size=64)
    >>> model = mlp(seed=0)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=2 * len(train_loader))
    >>> history = fit(model, optimizer, train_loader, epochs=2, scheduler=scheduler,
    ...               val_loader=val_loader, progress=False)
    >>> len(history.lrs), len(history.val_acc), history.final_val_acc > 0.9
    (46, 2, True)
    >>> round(history.lrs[0], 6), max(history.lrs) <= 0.1  # one-cycle starts at max_lr / 25
    (0.004, True)
    """
    _check_model_optimizer(model, optimizer)
    epochs = _validate.integer("epochs", epochs, low=1)
    criterion = _criterion(criterion)
    _check_scheduler(scheduler, optimizer)
    step_per = _validate.choice("step_per", step_per, ("batch", "epoch"))
    plateau = isinstance(scheduler, ReduceLROnPlateau)
    if plateau and val_loader is None:
        raise ValueError("val_loader must be given when the scheduler is ReduceLROnPlateau "
                         "(it is stepped with the validation loss)")
    device = _resolve_device(model, device)
    per_batch = scheduler is not None and step_per == "batch" and not plateau
    per_epoch = scheduler is not None and step_per == "epoch" and not plateau
    batches = _length(train_loader)
    history = History()
    with tqdm(total=None if batches is None else epochs * batches, disable=not progress, unit="step") as bar:
        trainer = _Trainer(model, optimizer, criterion, scheduler, device, history, bar, "train_loader")
        model.train()  # evaluate() restores this mode after each validation
        for epoch in range(epochs):
            bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
            seen = False
            for batch in train_loader:
                seen = True
                if not trainer.step(batch, per_batch):
                    return history
            if not seen:
                raise ValueError("train_loader must yield at least one batch")
            trainer.end_pass()
            if val_loader is not None and not trainer.validate(val_loader):
                return history
            if per_epoch:
                scheduler.step()
    return history


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, loader, *, steps: int, criterion=None,
                scheduler=None, val_loader=None, eval_every: int | None = None, device=None,
                progress: bool = True) -> History:
    """Train for exactly ``steps`` optimizer steps, cycling through ``loader`` as often as needed.

    For comparisons where the budget is counted in steps (schedule shapes,
    warmup). Same step and recording rules as :func:`fit`; the scheduler
    (if any) is stepped after every optimizer step, except
    ``ReduceLROnPlateau``, which is stepped after every evaluation with the
    validation loss (it needs ``val_loader`` and ``eval_every``). Each new
    pass over ``loader`` reshuffles it; ``epoch_train_loss`` gets one entry
    per complete pass.

    Parameters
    ----------
    model, optimizer, criterion, device, progress
        As in :func:`fit`.
    loader : iterable of (inputs, targets)
        Training batches; restarted whenever it is exhausted.
    steps : int
        Optimizer steps, ``>= 1``.
    scheduler : learning-rate scheduler, optional
        Stepped after every optimizer step, so a schedule built for
        ``steps`` steps ends exactly at the end of training.
    val_loader : iterable of (inputs, targets), optional
        Evaluated every ``eval_every`` steps and after the last step.
    eval_every : int, optional
        Evaluation interval in steps, ``>= 1``; ``None`` evaluates only at the end.

    Returns
    -------
    History
        ``eval_steps`` gives the step count of each evaluation.

    Examples
    --------
    >>> from helpers.data import sorting_loaders
    >>> from helpers.models import tiny_transformer
    >>> train_loader, val_loader = sorting_loaders(batch_size=32, seq_len=8, vocab_size=8)
    >>> model = tiny_transformer(vocab_size=8, seq_len=8, d_model=32, num_layers=1)
    >>> optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    >>> warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10))
    >>> history = train_steps(model, optimizer, train_loader, steps=30, scheduler=warmup,
    ...                       val_loader=val_loader, eval_every=10, progress=False)
    >>> len(history.losses), history.eval_steps, round(history.lrs[0], 6)
    (30, [10, 20, 30], 0.0001)
    """
    _check_model_optimizer(model, optimizer)
    steps = _validate.integer("steps", steps, low=1)
    criterion = _criterion(criterion)
    _check_scheduler(scheduler, optimizer)
    if eval_every is not None:
        eval_every = _validate.integer("eval_every", eval_every, low=1)
    plateau = isinstance(scheduler, ReduceLROnPlateau)
    if plateau and (val_loader is None or eval_every is None):
        raise ValueError(f"{'val_loader' if val_loader is None else 'eval_every'} must be given when the "
                         "scheduler is ReduceLROnPlateau (it is stepped with the validation loss)")
    device = _resolve_device(model, device)
    history = History()
    model.train()
    with tqdm(total=steps, disable=not progress, unit="step") as bar:
        trainer = _Trainer(model, optimizer, criterion, scheduler, device, history, bar, "loader")
        batches = _cycle(loader, "loader")
        for step in range(1, steps + 1):
            batch, end_of_pass = next(batches)
            if not trainer.step(batch, scheduler is not None and not plateau):
                return history
            if end_of_pass:
                trainer.end_pass()
            due = step == steps or (eval_every is not None and step % eval_every == 0)
            if val_loader is not None and due and not trainer.validate(val_loader):
                return history
    return history


@torch.no_grad()
def evaluate(model: nn.Module, loader, *, criterion=None, device=None) -> tuple[float, float | None]:
    """Mean loss and accuracy of ``model`` over ``loader``, in evaluation mode.

    The model's training/evaluation mode is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
    loader : iterable of (inputs, targets)
    criterion : callable, default ``nn.CrossEntropyLoss()``
        Must return the *mean* loss of a batch; batches are weighted by their
        number of targets, so the result is the mean over the whole set.
    device : None, str or torch.device
        As in :func:`fit`.

    Returns
    -------
    loss : float
        Mean loss over all targets (``inf`` or ``nan`` only if the model
        itself produces non-finite outputs).
    accuracy : float or None
        Share of correct argmax predictions (per position for sequences);
        ``None`` when the targets are not class indices (regression).

    Examples
    --------
    >>> model = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.eye(2)); _ = model.bias.zero_()
    >>> batch = (torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]), torch.tensor([0, 1, 1]))
    >>> loss, acc = evaluate(model, [batch])
    >>> round(acc, 4)
    0.6667
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    criterion = _criterion(criterion)
    device = _resolve_device(model, device)
    was_training = model.training
    model.eval()
    total_loss, total_correct, count = 0.0, 0, 0
    classification = True
    try:
        for batch in loader:
            x, y = _unpack(batch, device, "loader")
            output, target = _align(model(x), y)
            n = target.numel()
            total_loss += float(criterion(output, target)) * n
            count += n
            classification = classification and _is_classification(output, target)
            if classification:
                total_correct += int((output.argmax(dim=-1) == target).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("loader must yield at least one batch")
    return total_loss / count, (total_correct / count if classification else None)
