"""Tuning studies, and carrying the learning rate across width (notebook 09).

* :func:`tabular_tensors` -- a synthetic ten-class problem with plenty of data, so that a
  wider network is genuinely better (no overfitting within a few hundred steps).
* :func:`width_mlp` -- an MLP with two hidden layers of ``width`` units, in the standard
  parametrisation (PyTorch's defaults) or in μP (the ``mup`` package: ``MuReadout``,
  base shapes at ``base_width``).
* :func:`adam_for` -- ``torch.optim.Adam`` for the standard parametrisation, ``mup.MuAdam``
  for μP (which divides the hidden layers' learning rate by the width multiplier).
* :func:`train_and_evaluate` -- a short run on seeded batches, then the validation loss
  (``inf`` for a run that diverged).
* :func:`lr_sweep` -- ``{lr: [validation loss per seed]}`` over a grid, with a progress bar.
* :func:`quasi_random_points` -- a scrambled Sobol sequence over a search space.
* :func:`coordinate_check` -- the typical size of each layer's output after each of the
  first steps, per width: μP's check that nothing grows with width.

Every run depends only on its seed (initial weights and batch order), never on the
global random state.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from . import _validate

__all__ = ["PARAMETRIZATIONS", "tabular_tensors", "width_mlp", "adam_for", "train_and_evaluate",
           "lr_sweep", "quasi_random_points", "coordinate_check", "powers_of_two"]

PARAMETRIZATIONS = ("sp", "mup")
"""``"sp"``: standard parametrisation (PyTorch's default init, one learning rate for all);
``"mup"``: maximal-update parametrisation (Yang et al. 2022) through the ``mup`` package."""


def tabular_tensors(*, n_train: int = 20_000, n_val: int = 4_000, features: int = 32, classes: int = 10,
                    device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed synthetic classification problem (scikit-learn's ``make_classification``).

    ``classes`` classes of two Gaussian clusters each in ``features`` dimensions (20
    informative, 4 redundant for the default 32), drawn once with ``random_state=0``:
    the same numbers on every call. Features are standardised with the training
    statistics. With 20,000 training examples, a run of a hundred steps of 64 sees few
    examples twice, so the validation loss measures how fast a network learns, not how it
    overfits.

    Parameters
    ----------
    n_train, n_val : int
        Training and validation examples, ``n_train`` in ``[100, 10**6]``, ``n_val`` in ``[10, 10**6]``.
    features : int, default 32
        Input dimension, in ``[24, 1024]``.
    classes : int, default 10
        Number of classes, in ``[2, 20]``.
    device : None, str or torch.device
        Where the tensors are created (``None``: the CPU).

    >>> X, y, Xv, yv = tabular_tensors()
    >>> tuple(X.shape), tuple(Xv.shape), int(y.max()) + 1
    ((20000, 32), (4000, 32), 10)
    """
    from sklearn.datasets import make_classification

    n_train = _validate.integer("n_train", n_train, low=100, high=10**6)
    n_val = _validate.integer("n_val", n_val, low=10, high=10**6)
    features = _validate.integer("features", features, low=24, high=1024)
    classes = _validate.integer("classes", classes, low=2, high=20)
    X, y = make_classification(n_samples=n_train + n_val, n_features=features, n_informative=20,
                               n_redundant=4, n_classes=classes, n_clusters_per_class=2, class_sep=1.0,
                               random_state=0)
    X = torch.as_tensor(X, dtype=torch.float32)
    mean, std = X[:n_train].mean(0), X[:n_train].std(0)
    X = (X - mean) / std
    y = torch.as_tensor(y, dtype=torch.int64)
    dev = torch.device("cpu") if device is None else torch.device(device)
    return X[:n_train].to(dev), y[:n_train].to(dev), X[n_train:].to(dev), y[n_train:].to(dev)


class _MLP(nn.Module):
    def __init__(self, width: int, in_features: int, num_classes: int, mup: bool):
        super().__init__()
        self.hidden1 = nn.Linear(in_features, width)
        self.hidden2 = nn.Linear(width, width)
        if mup:
            from mup import MuReadout

            self.readout = MuReadout(width, num_classes, readout_zero_init=True)
        else:
            self.readout = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.readout(torch.relu(self.hidden2(torch.relu(self.hidden1(x)))))


def _parametrization(value) -> str:
    if value not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, got {value!r}")
    return value


def width_mlp(width: int, parametrization: str = "sp", *, in_features: int = 32, num_classes: int = 10,
              base_width: int = 32, seed: int = 0) -> nn.Module:
    """An MLP ``in_features → width → width → num_classes`` (ReLU), initialised from ``seed``.

    ``"sp"``: every layer is an ``nn.Linear`` with PyTorch's default initialisation.
    ``"mup"``: the same hidden weights (their default init already has variance ∝ 1/fan_in,
    as μP asks), the hidden layer's bias scaled by ``sqrt(width / base_width)`` (``mup``
    keeps a bias's size constant, where PyTorch's init shrinks it like 1/sqrt(fan_in)), a
    ``mup.MuReadout`` output layer initialised at zero, which divides its input by
    ``width / base_width``, and base shapes set at ``base_width`` (so at ``width ==
    base_width`` the two differ only by the zero readout). Train a μP model
    with :func:`adam_for`.

    ``width`` and ``base_width`` in ``[4, 8192]``; ``seed`` ≥ 0.

    >>> width_mlp(64, "mup").readout.width_mult()
    2.0
    """
    parametrization = _parametrization(parametrization)
    width = _validate.integer("width", width, low=4, high=8192)
    base_width = _validate.integer("base_width", base_width, low=4, high=8192)
    seed = _validate.integer("seed", seed, low=0, high=2**32 - 1)
    mup = parametrization == "mup"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _MLP(width, in_features, num_classes, mup)
    if mup:
        from mup import set_base_shapes

        # The delta model only tells mup which dimensions grow with width; its weights are unused.
        set_base_shapes(model, _MLP(base_width, in_features, num_classes, True),
                        delta=_MLP(2 * base_width, in_features, num_classes, True))
    return model


def adam_for(model: nn.Module, lr: float, parametrization: str = "sp", **kwargs) -> torch.optim.Optimizer:
    """``torch.optim.Adam(model.parameters(), lr)`` (``"sp"``) or ``mup.MuAdam`` (``"mup"``).

    MuAdam gives each matrix whose two dimensions both grow with width (here
    ``hidden2.weight``) a learning rate ``lr / (width / base_width)``; everything else
    keeps ``lr``. ``lr`` > 0; other keyword arguments go to Adam.
    """
    parametrization = _parametrization(parametrization)
    lr = _validate.number("lr", lr, low=0.0, low_open=True)
    if parametrization == "mup":
        from mup import MuAdam

        return MuAdam(model.parameters(), lr=lr, **kwargs)
    return torch.optim.Adam(model.parameters(), lr=lr, **kwargs)


def train_and_evaluate(model: nn.Module, optimizer: torch.optim.Optimizer, data: Sequence[torch.Tensor], *,
                       steps: int = 100, batch_size: int = 64, seed: int = 0) -> float:
    """Train ``steps`` steps on random batches drawn from ``seed``; return the validation loss.

    ``data`` is ``(X_train, y_train, X_val, y_val)`` as :func:`tabular_tensors` returns it.
    The batches depend only on ``seed`` (drawn with replacement, from a generator of
    their own). A run whose training loss stops being finite is stopped, and its
    validation loss is ``inf``: a diverged run, never a NaN that would compare as
    neither better nor worse.

    ``steps`` in ``[1, 10**6]``, ``batch_size`` in ``[1, 10**6]``.
    """
    steps = _validate.integer("steps", steps, low=1, high=10**6)
    batch_size = _validate.integer("batch_size", batch_size, low=1, high=10**6)
    X, y, X_val, y_val = data
    # All batches drawn up front: one call instead of one per step (the steps are tiny).
    batches = torch.randint(0, len(X), (steps, batch_size), generator=torch.Generator().manual_seed(seed))
    batches = batches.to(X.device)
    model.train()
    for idx in batches:
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        if not torch.isfinite(loss):
            return math.inf
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val = float(nn.functional.cross_entropy(model(X_val), y_val))
    return val if math.isfinite(val) else math.inf


def lr_sweep(run: Callable[[float, int], float], lrs: Iterable[float], seeds: Iterable[int], *,
             progress: bool = True, desc: str = "sweep") -> dict[float, list[float]]:
    """``{lr: [run(lr, seed) for seed in seeds]}``, with a progress bar over all runs.

    ``run(lr, seed)`` trains one model and returns its score (lower is better), e.g. a
    closure over :func:`width_mlp`, :func:`adam_for` and :func:`train_and_evaluate`.
    """
    lrs, seeds = [float(lr) for lr in lrs], list(seeds)
    if not lrs or not seeds:
        raise ValueError(f"lrs and seeds must each hold at least one value, got {len(lrs)} and {len(seeds)}")
    out: dict[float, list[float]] = {}
    with tqdm(total=len(lrs) * len(seeds), desc=desc, disable=not progress, unit="run", leave=False) as bar:
        for lr in lrs:
            out[lr] = []
            for seed in seeds:
                out[lr].append(float(run(lr, seed)))
                bar.update()
    return out


def powers_of_two(high: int, low: int) -> list[float]:
    """``[2**high, 2**(high-1), ..., 2**low]`` (exponents are integers, ``high >= low``)."""
    high, low = _validate.integer("high", high, low=-60, high=60), _validate.integer("low", low, low=-60, high=60)
    if high < low:
        raise ValueError(f"high must be >= low, got high={high}, low={low}")
    return [2.0 ** k for k in range(high, low - 1, -1)]


def quasi_random_points(n: int, space: Mapping[str, tuple[float, float, str]], *, seed: int = 0) -> list[dict]:
    """``n`` points of a scrambled Sobol sequence over a search space.

    ``space`` maps a name to ``(low, high, scale)`` with ``scale`` ``"log"`` (uniform in
    the logarithm: learning rates) or ``"linear"``. Quasi-random points cover the space
    more evenly than random ones and, unlike a grid, give every trial a distinct value
    of every parameter (Bergstra and Bengio 2012; the Deep Learning Tuning Playbook).

    ``n`` in ``[1, 10**5]``; ``low < high`` (both > 0 on a log scale).

    >>> [sorted(p) for p in quasi_random_points(2, {"lr": (1e-4, 1e-1, "log"), "wd": (0.0, 0.1, "linear")})]
    [['lr', 'wd'], ['lr', 'wd']]
    """
    n = _validate.integer("n", n, low=1, high=10**5)
    if not space:
        raise ValueError("space must name at least one parameter")
    for name, (low, high, scale) in space.items():
        if scale not in ("log", "linear"):
            raise ValueError(f"the scale of {name!r} must be 'log' or 'linear', got {scale!r}")
        if not low < high or (scale == "log" and low <= 0):
            raise ValueError(f"{name!r} needs low < high{' and low > 0 on a log scale' if scale == 'log' else ''}, "
                             f"got ({low}, {high})")
    unit = torch.quasirandom.SobolEngine(len(space), scramble=True, seed=seed).draw(n, dtype=torch.float64)
    points = []
    for row in unit.tolist():
        point = {}
        for u, (name, (low, high, scale)) in zip(row, space.items()):
            point[name] = (math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if scale == "log"
                           else low + u * (high - low))
        points.append(point)
    return points


def coordinate_check(widths: Iterable[int], parametrization: str, *, lr: float, data: Sequence[torch.Tensor],
                     steps: int = 3, batch_size: int = 64, seed: int = 0) -> dict[int, dict[str, list[float]]]:
    """μP's coordinate check: the typical size of each layer's output, per width and step.

    For each width, a fresh :func:`width_mlp` trained with :func:`adam_for` at ``lr``
    for ``steps`` steps; after each step, the mean absolute value of every coordinate of
    ``hidden1``, ``hidden2`` (after the ReLU) and of the logits, on one fixed batch.
    In μP these stay about the same as the width grows; in the standard parametrisation
    with Adam the logits grow with the width (here faster than in proportion to it).

    Returns ``{width: {"hidden1": [...], "hidden2": [...], "logits": [...]}}``, one value per step.
    """
    parametrization = _parametrization(parametrization)
    steps = _validate.integer("steps", steps, low=1, high=1000)
    X, y = data[0], data[1]
    probe = X[:batch_size]
    out: dict[int, dict[str, list[float]]] = {}
    for width in widths:
        model = width_mlp(width, parametrization, in_features=X.shape[1], seed=seed)
        optimizer = adam_for(model, lr, parametrization)
        sizes: dict[str, list[float]] = {"hidden1": [], "hidden2": [], "logits": []}
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(0, len(X), (batch_size,), generator=generator).to(X.device)
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            optimizer.step()
            with torch.no_grad():
                h1 = torch.relu(model.hidden1(probe))
                h2 = torch.relu(model.hidden2(h1))
                for name, value in (("hidden1", h1), ("hidden2", h2), ("logits", model.readout(h2))):
                    sizes[name].append(float(value.abs().mean()))
        out[int(width)] = sizes
    return out
