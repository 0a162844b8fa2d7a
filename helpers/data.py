"""Small, seeded, offline data sets for the course.

Everything here is built from scikit-learn's bundled 8x8 digits (no download)
or generated from a seed, so the same call always returns the same numbers.

* :func:`digits_tensors`, :func:`digits_loaders` -- classification on digits.
* :func:`least_squares_digits` -- a quadratic on real data whose Hessian
  eigenvalues are known exactly, for the stability limit ``lr < 2 / lambda_max``
  of gradient descent (toy quadratics live in :mod:`helpers.quadratic`).
* :func:`noisy_least_squares` -- linear regression with label noise, where the
  gradient noise of SGD makes the decay of the learning rate matter.
* :func:`sorting_task`, :func:`sorting_loaders` -- sort a sequence of tokens,
  a task for a tiny transformer (warmup).
* :func:`stdlib_text`, :func:`char_lm_tensors`, :func:`char_lm_loaders` --
  next-character prediction on Python source code (some standard-library
  modules, shipped with this package as a fixed text file: the same characters
  on every Python version).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from . import _validate

__all__ = [
    "tensor_loader",
    "digits_tensors",
    "digits_loaders",
    "LeastSquares",
    "least_squares_digits",
    "NoisyLeastSquares",
    "noisy_least_squares",
    "sorting_task",
    "sorting_position_baseline",
    "sorting_loaders",
    "CHARS",
    "TEXT_MODULES",
    "CORPUS_MODULES",
    "stdlib_text",
    "char_lm_tensors",
    "char_lm_loaders",
]

# Evaluation is independent of the batch size, so validation loaders use big
# batches: fewer Python-level iterations.
_EVAL_BATCH = 1024


# --------------------------------------------------------------------------- #
# Shared plumbing
# --------------------------------------------------------------------------- #
def _device(device) -> torch.device:
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None, a torch.device or a device string such as 'cpu', "
                         f"got {device!r}") from err


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tensor_loader(*tensors: torch.Tensor, batch_size: int = 32, shuffle: bool = True,
                  seed: int = 0) -> DataLoader:
    """A ``DataLoader`` over in-memory tensors whose shuffling depends only on ``seed``.

    Two loaders built with the same arguments yield the same batches in the
    same order, epoch after epoch (each epoch draws a new permutation from
    the loader's own ``torch.Generator``, not from the global RNG).
    Build a fresh loader for each run you want to compare.

    Parameters
    ----------
    *tensors : torch.Tensor
        One or more tensors with the same first dimension (e.g. ``X, y``).
        They stay on their device: put them on the GPU to avoid per-batch copies.
    batch_size : int, default 32
        Examples per batch, ``>= 1``. The last batch may be smaller.
    shuffle : bool, default True
        Reshuffle at every epoch.
    seed : int, default 0
        Seed of the shuffling generator, ``>= 0``.

    Returns
    -------
    torch.utils.data.DataLoader

    Examples
    --------
    >>> X, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    >>> [b[1].tolist() for b in tensor_loader(X, y, batch_size=4, shuffle=False)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> first = lambda: next(iter(tensor_loader(X, y, batch_size=4, seed=1)))[1]
    >>> torch.equal(first(), first())
    True
    """
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError("tensors must be one or more torch.Tensor objects")
    if len({t.shape[0] if t.dim() else -1 for t in tensors}) != 1 or tensors[0].dim() == 0:
        raise ValueError("tensors must all have the same length along dimension 0, got shapes "
                         + ", ".join(str(tuple(t.shape)) for t in tensors))
    batch_size = _validate.integer("batch_size", batch_size, low=1)
    seed = _validate.integer("seed", seed, low=0)
    if not isinstance(shuffle, bool):
        raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
    dataset = TensorDataset(*tensors)
    generator = _generator(seed) if shuffle else None
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    # The batches a plain DataLoader(dataset, batch_size, shuffle, generator) yields, in the
    # same order, but each taken by one indexing operation instead of `batch_size` item
    # look-ups and a stack: several times faster for the course's tiny models.
    return DataLoader(dataset, batch_size=None, sampler=BatchSampler(order, batch_size, drop_last=False),
                      generator=generator)


# --------------------------------------------------------------------------- #
# Digits
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    # Bundled with scikit-learn: read from the installed package, never downloaded.
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    train, val = train_test_split(index, test_size=val_fraction, stratify=y, random_state=seed)
    return np.sort(train), np.sort(val)


def digits_tensors(*, val_fraction: float = 0.2, seed: int = 0, device=None, flatten: bool = True,
                   standardize: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits as tensors, split into stratified train/validation sets.

    1797 grey-level images (values 0..16) of the digits 0-9. The split keeps
    the class proportions of the full set in both parts and depends only on
    ``seed``. Standardisation uses the mean and standard deviation of each
    pixel over the *training* images only (pixels that are constant in the
    training set are centred and left unscaled), so no validation statistic
    leaks into training.

    Parameters
    ----------
    val_fraction : float, default 0.2
        Share of the examples held out for validation, in ``[0.05, 0.9]``.
    seed : int, default 0
        Seed of the split, ``>= 0``.
    device : None, str or torch.device, default None
        Where the tensors are created (``None``: the CPU).
    flatten : bool, default True
        ``True``: features of shape ``(N, 64)`` for an MLP; ``False``: images
        of shape ``(N, 1, 8, 8)`` for a CNN.
    standardize : bool, default True
        Standardise each pixel with training statistics; ``False`` keeps raw 0..16 values.

    Returns
    -------
    X_train, y_train, X_val, y_val : torch.Tensor
        ``float32`` features and ``int64`` labels (1437 and 360 examples at the default ``val_fraction``).

    Examples
    --------
    >>> X_train, y_train, X_val, y_val = digits_tensors()
    >>> tuple(X_train.shape), tuple(X_val.shape), y_train.dtype
    ((1437, 64), (360, 64), torch.int64)
    >>> round(float(X_train.mean()), 6), tuple(digits_tensors(flatten=False)[0].shape)
    (0.0, (1437, 1, 8, 8))
    """
    val_fraction = _validate.number("val_fraction", val_fraction, low=0.05, high=0.9)
    seed = _validate.integer("seed", seed, low=0, high=2**32 - 1)
    device = _device(device)
    for name, value in (("flatten", flatten), ("standardize", standardize)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    X, y = _digits()
    train, val = _stratified_split(y, val_fraction, seed)
    X_train, X_val = X[train], X[val]
    if standardize:
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std[std == 0] = 1.0  # always-blank border pixels: avoid 0/0
        X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    shape = (-1, 64) if flatten else (-1, 1, 8, 8)

    def features(a):
        return torch.as_tensor(a, dtype=torch.float32).reshape(shape).to(device)

    def labels(a):
        return torch.as_tensor(a, dtype=torch.int64).to(device)

    return features(X_train), labels(y[train]), features(X_val), labels(y[val])


def digits_loaders(batch_size: int = 32, *, val_fraction: float = 0.2, seed: int = 0, device=None,
                   flatten: bool = True, standardize: bool = True) -> tuple[DataLoader, DataLoader]:
    """Train and validation loaders over :func:`digits_tensors`.

    The training loader reshuffles every epoch with its own generator seeded
    by ``seed``: two calls with the same arguments give identical batch
    orders (build fresh loaders for each run you compare). The validation
    loader does not shuffle and serves batches of up to 1024 examples.
    With ``device="cuda"`` the data lives on the GPU from the start and no
    batch is copied during training.

    Parameters
    ----------
    batch_size : int, default 32
        Training batch size, ``>= 1``.
    val_fraction, seed, device, flatten, standardize
        As in :func:`digits_tensors`.

    Returns
    -------
    train_loader, val_loader : torch.utils.data.DataLoader
        Batches are ``(x, y)`` tuples.

    Examples
    --------
    >>> train_loader, val_loader = digits_loaders(64)
    >>> len(train_loader), len(val_loader)
    (23, 1)
    >>> x, y = next(iter(train_loader)); tuple(x.shape), tuple(y.shape)
    ((64, 64), (64,))
    """
    batch_size = _validate.integer("batch_size", batch_size, low=1)
    X_train, y_train, X_val, y_val = digits_tensors(val_fraction=val_fraction, seed=seed, device=device,
                                                    flatten=flatten, standardize=standardize)
    train = tensor_loader(X_train, y_train, batch_size=batch_size, shuffle=True, seed=seed)
    val = tensor_loader(X_val, y_val, batch_size=_EVAL_BATCH, shuffle=False)
    return train, val


# --------------------------------------------------------------------------- #
# Least squares: a quadratic with known curvature (toy quadratics: helpers.quadratic)
# --------------------------------------------------------------------------- #
class LeastSquares(NamedTuple):
    """Full-batch least squares ``f(W) = ||X W - y||^2 / (2 n)``.

    Attributes
    ----------
    X : torch.Tensor
        Design matrix, shape ``(n, d)``, float64.
    y : torch.Tensor
        Targets, shape ``(n, k)``.
    lambda_max : float
        Largest eigenvalue of the Hessian ``X^T X / n`` (the same for every
        column of ``W``), computed with ``torch.linalg.eigvalsh``.

    Built by :func:`least_squares_digits`:

    >>> problem = least_squares_digits()
    >>> round(float(problem.loss(torch.zeros(65, 10, dtype=torch.float64))), 3)
    0.5
    """

    X: torch.Tensor
    y: torch.Tensor
    lambda_max: float

    def loss(self, W: torch.Tensor) -> torch.Tensor:
        """``||X W - y||^2 / (2 n)``; ``W`` of shape ``(d, k)``."""
        return (self.X @ W - self.y).pow(2).sum() / (2 * self.X.shape[0])

    def gradient(self, W: torch.Tensor) -> torch.Tensor:
        """``X^T (X W - y) / n``."""
        return self.X.T @ (self.X @ W - self.y) / self.X.shape[0]

    def gd_losses(self, lr: float, steps: int) -> torch.Tensor:
        """Loss at each of ``steps + 1`` iterates of gradient descent started at ``W = 0``.

        ``lr > 0``, ``steps >= 0``. Runs in float64; a divergent run grows
        geometrically and stays finite for a few thousand steps.
        """
        lr = _validate.positive("lr", lr)
        steps = _validate.integer("steps", steps, low=0)
        # Work with the d x d Hessian instead of the n x d data: same iterates, far fewer flops.
        n = self.X.shape[0]
        H, c = self.X.T @ self.X / n, self.X.T @ self.y / n
        offset = self.y.pow(2).sum() / (2 * n)
        W = torch.zeros(self.X.shape[1], self.y.shape[1], dtype=self.X.dtype)
        losses = [offset]
        for _ in range(steps):
            W = W - lr * (H @ W - c)
            losses.append(0.5 * (W * (H @ W)).sum() - (W * c).sum() + offset)
        return torch.stack(losses)


def least_squares_digits(*, standardize: bool = True, bias: bool = True) -> LeastSquares:
    """Least-squares regression of one-hot labels on all 1797 digits, in float64.

    The Hessian of ``f(W) = ||X W - Y||^2 / (2 n)`` is ``X^T X / n`` for each
    of the 10 columns of ``W``, so gradient descent from ``W = 0`` converges
    for ``lr < 2 / lambda_max`` and diverges for ``lr > 2 / lambda_max``:
    at ``1.99 / lambda_max`` the loss falls steadily, at ``2.01 / lambda_max``
    it grows by about ``1.01**2`` per step once the other directions have
    settled.

    Parameters
    ----------
    standardize : bool, default True
        Standardise each pixel (over all examples); ``False`` keeps raw 0..16
        values, whose mean makes ``lambda_max`` far larger.
    bias : bool, default True
        Append a column of ones (an intercept).

    Returns
    -------
    LeastSquares
        A named tuple ``(X, y, lambda_max)`` with ``loss``, ``gradient`` and ``gd_losses`` methods.

    Examples
    --------
    >>> X, y, lambda_max = problem = least_squares_digits()
    >>> tuple(X.shape), tuple(y.shape)
    ((1797, 65), (1797, 10))
    >>> H = X.T @ X / X.shape[0]
    >>> bool(abs(torch.linalg.eigvalsh(H)[-1] - lambda_max) < 1e-9)
    True
    >>> stable = problem.gd_losses(1.99 / lambda_max, 2000)
    >>> unstable = problem.gd_losses(2.01 / lambda_max, 2000)
    >>> bool(stable[-1] < stable[0] < unstable[-1])
    True
    """
    for name, value in (("standardize", standardize), ("bias", bias)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    X_np, labels = _digits()
    X = torch.tensor(X_np, dtype=torch.float64)
    if standardize:
        std = X.std(dim=0, unbiased=False)
        X = (X - X.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))
    if bias:
        X = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], dim=1)
    y = torch.nn.functional.one_hot(torch.tensor(labels), 10).to(torch.float64)
    hessian = X.T @ X / X.shape[0]
    lambda_max = float(torch.linalg.eigvalsh(hessian)[-1])
    return LeastSquares(X=X, y=y, lambda_max=lambda_max)


class NoisyLeastSquares(NamedTuple):
    """Linear regression data ``y = X w_true + noise`` with an exactly known optimum.

    Attributes
    ----------
    X : torch.Tensor
        Features, shape ``(n, d)``, float32.
    y : torch.Tensor
        Targets, shape ``(n, 1)`` (the output shape of ``nn.Linear(d, 1)``), float32.
    w_true : torch.Tensor
        Weights that generated ``y``, shape ``(d,)``.
    w_best : torch.Tensor
        Minimiser of the training loss (least-squares solution), shape ``(d,)``, float64.
    lambda_max : float
        Largest eigenvalue of the Hessian ``2 X^T X / n`` of the mean squared error.

    Built by :func:`noisy_least_squares`:

    >>> problem = noisy_least_squares(d=5, n=100)
    >>> float(problem.excess_loss(problem.w_best)) == 0.0
    True
    """

    X: torch.Tensor
    y: torch.Tensor
    w_true: torch.Tensor
    w_best: torch.Tensor
    lambda_max: float

    def loss(self, w) -> float:
        """Mean squared error ``mean((X w - y)^2)`` of weights ``w`` (``d`` numbers, any shape), in float64."""
        w = _weights(w, self.X.shape[1])
        residual = self.X.double() @ w - self.y.double().squeeze(1)
        return float(residual.pow(2).mean())

    def excess_loss(self, w) -> float:
        """``loss(w) - loss(w_best) >= 0``: how far ``w`` is from the best possible fit.

        Computed as ``(w - w_best)^T (X^T X / n) (w - w_best)``, exact and
        free of the cancellation of subtracting two nearly equal losses.
        """
        delta = _weights(w, self.X.shape[1]) - self.w_best
        return float((self.X.double() @ delta).pow(2).mean())


def _weights(w, d: int) -> torch.Tensor:
    w = torch.as_tensor(w.detach() if isinstance(w, torch.Tensor) else w).double().cpu().reshape(-1)
    if w.numel() != d:
        raise ValueError(f"w must have {d} entries (e.g. the weight of nn.Linear({d}, 1, bias=False)), "
                         f"got {w.numel()}")
    return w


def noisy_least_squares(d: int = 50, n: int = 2000, noise: float = 1.0, *, condition: float = 10.0,
                        seed: int = 0) -> NoisyLeastSquares:
    """A synthetic linear regression where SGD's gradient noise sets a loss floor.

    Features are Gaussian with variances spaced geometrically from 1 down to
    ``1 / condition``; ``y = X w_true + noise * N(0, 1)``. Train a
    ``nn.Linear(d, 1, bias=False)`` with ``nn.MSELoss()`` and mini-batch SGD:
    with a constant learning rate the iterates keep bouncing around the
    optimum (a floor that grows with the learning rate and the noise), and
    only decaying the learning rate lets them settle. Judge runs by
    :meth:`NoisyLeastSquares.excess_loss`. With the defaults, 4000 SGD steps
    of batch 8 at ``lr = 0.1 / lambda_max`` end with an excess loss of about
    0.15 at a constant learning rate: 50 to 70 times that of step, linear,
    cosine-to-10% or warmup-stable-decay schedules, and about 700 times that
    of cosine decay to zero (seeds 0-2).

    Parameters
    ----------
    d : int, default 50
        Number of features, ``>= 1``.
    n : int, default 2000
        Number of examples, ``>= d`` (so that the optimum is unique).
    noise : float, default 1.0
        Standard deviation of the label noise, ``>= 0``.
    condition : float, default 10.0
        Ratio of the largest to the smallest feature variance, ``>= 1``.
    seed : int, default 0
        Seed of the generator, ``>= 0``.

    Returns
    -------
    NoisyLeastSquares
        A named tuple ``(X, y, w_true, w_best, lambda_max)`` with ``loss`` and
        ``excess_loss`` methods; ``tensor_loader(problem.X, problem.y, batch_size=8)``
        gives SGD batches.

    Examples
    --------
    >>> problem = noisy_least_squares(d=5, n=100, noise=0.1)
    >>> tuple(problem.X.shape), tuple(problem.y.shape)
    ((100, 5), (100, 1))
    >>> problem.excess_loss(problem.w_best), problem.excess_loss(problem.w_true) > 0
    (0.0, True)
    """
    d = _validate.integer("d", d, low=1)
    n = _validate.integer("n", n, low=d)
    noise = _validate.non_negative("noise", noise)
    condition = _validate.number("condition", condition, low=1)
    seed = _validate.integer("seed", seed, low=0)
    g = _generator(seed)
    scales = torch.logspace(0.0, -0.5 * math.log10(condition), d, dtype=torch.float64)  # std devs
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    w_true = torch.randn(d, generator=g, dtype=torch.float64)
    y = X @ w_true + noise * torch.randn(n, generator=g, dtype=torch.float64)
    X, y = X.float().double(), y.float().double()  # the optimum of the float32 data actually served
    w_best = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    lambda_max = float(torch.linalg.eigvalsh(2 * X.T @ X / n)[-1])
    return NoisyLeastSquares(X=X.float(), y=y.float().unsqueeze(1), w_true=w_true.float(),
                             w_best=w_best, lambda_max=lambda_max)


# --------------------------------------------------------------------------- #
# Sorting: a sequence task for a tiny transformer
# --------------------------------------------------------------------------- #
def sorting_task(seq_len: int = 16, vocab_size: int = 16, n_train: int = 10_000, n_val: int = 1_000, *,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences of random tokens (input) and the same tokens sorted (target).

    Each input is ``seq_len`` tokens drawn uniformly from ``0 .. vocab_size - 1``
    (with repetition); the target at position ``i`` is the ``i``-th smallest
    input token. Solving it needs attention across the whole sequence:
    each output position must count how many input tokens are smaller.
    Train and validation sequences come from one seeded generator.

    The defaults make warmup visible: a 2-layer Post-LN
    :func:`~helpers.models.tiny_transformer` trained with Adam
    (betas ``(0.9, 0.98)``) at a peak learning rate of ``3e-2`` for 400
    steps of batch 64 (linear decay afterwards) stalls near
    :func:`sorting_position_baseline` (about 1.77) without warmup, and sorts
    almost perfectly (loss below 0.1) after a 10% linear warmup.

    Parameters
    ----------
    seq_len : int, default 16
        Tokens per sequence, ``>= 2``.
    vocab_size : int, default 16
        Number of distinct tokens, ``>= 2``.
    n_train, n_val : int, default 10000, 1000
        Number of training and validation sequences, each ``>= 1``.
    seed : int, default 0
        Seed of the generator, ``>= 0``.

    Returns
    -------
    X_train, Y_train, X_val, Y_val : torch.Tensor
        ``int64`` tensors of shape ``(n, seq_len)``.

    Examples
    --------
    >>> X, Y, _, _ = sorting_task(seq_len=5, vocab_size=10, n_train=2, n_val=1)
    >>> bool(torch.equal(Y, X.sort(dim=1).values)), tuple(X.shape)
    (True, (2, 5))
    """
    seq_len = _validate.integer("seq_len", seq_len, low=2)
    vocab_size = _validate.integer("vocab_size", vocab_size, low=2)
    n_train = _validate.integer("n_train", n_train, low=1)
    n_val = _validate.integer("n_val", n_val, low=1)
    seed = _validate.integer("seed", seed, low=0)
    X = torch.randint(0, vocab_size, (n_train + n_val, seq_len), generator=_generator(seed))
    Y = X.sort(dim=1).values
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def sorting_position_baseline(seq_len: int = 16, vocab_size: int = 16) -> float:
    """Cross-entropy of the best model that ignores its input, on :func:`sorting_task`.

    Such a model can only predict, for each output position, the distribution
    of the ``i``-th smallest of ``seq_len`` uniform tokens. Its mean
    cross-entropy (natural log) is the entropy of those order statistics,
    computed exactly here from binomial tails. A transformer whose loss
    plateaus at this level has learned the positions but not the input;
    uniform guessing scores ``log(vocab_size)``.

    Parameters
    ----------
    seq_len : int, default 16
        Tokens per sequence, ``>= 2``.
    vocab_size : int, default 16
        Number of distinct tokens, ``>= 2``.

    Returns
    -------
    float
        Mean over positions of the entropy of each position's target, in nats.

    Examples
    --------
    >>> round(sorting_position_baseline(16, 16), 3), round(math.log(16), 3)
    (1.774, 2.773)
    """
    n = _validate.integer("seq_len", seq_len, low=2)
    v = _validate.integer("vocab_size", vocab_size, low=2)

    def at_most(i: int, k: int) -> float:
        # P(i-th smallest <= k) = P(at least i + 1 of the n tokens are <= k)
        p = (k + 1) / v
        return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(i + 1, n + 1))

    entropy = 0.0
    for i in range(n):
        cdf = [0.0] + [at_most(i, k) for k in range(v)]
        probs = [b - a for a, b in zip(cdf, cdf[1:])]
        entropy -= sum(q * math.log(q) for q in probs if q > 0)
    return entropy / n


def sorting_loaders(batch_size: int = 64, *, seq_len: int = 16, vocab_size: int = 16, n_train: int = 10_000,
                    n_val: int = 1_000, seed: int = 0, device=None) -> tuple[DataLoader, DataLoader]:
    """Train and validation loaders over :func:`sorting_task`.

    The training loader reshuffles every epoch with its own generator seeded by
    ``seed`` (the same seed as the data); the validation loader does not
    shuffle. Batches are ``(tokens, sorted_tokens)``, both ``(B, seq_len)``.

    Parameters
    ----------
    batch_size : int, default 64
        Training batch size, ``>= 1``.
    seq_len, vocab_size, n_train, n_val, seed
        As in :func:`sorting_task`.
    device : None, str or torch.device, default None
        Where the tensors live (``None``: the CPU).

    Returns
    -------
    train_loader, val_loader : torch.utils.data.DataLoader

    Examples
    --------
    >>> train_loader, val_loader = sorting_loaders(batch_size=64)
    >>> x, y = next(iter(train_loader)); tuple(x.shape), len(train_loader), len(val_loader)
    ((64, 16), 157, 1)
    """
    batch_size = _validate.integer("batch_size", batch_size, low=1)
    device = _device(device)
    X_train, Y_train, X_val, Y_val = sorting_task(seq_len, vocab_size, n_train, n_val, seed=seed)
    train = tensor_loader(X_train.to(device), Y_train.to(device), batch_size=batch_size, shuffle=True, seed=seed)
    val = tensor_loader(X_val.to(device), Y_val.to(device), batch_size=_EVAL_BATCH, shuffle=False)
    return train, val


# --------------------------------------------------------------------------- #
# Characters of some standard-library source, shipped with the package: a tiny language-model task
# --------------------------------------------------------------------------- #
CHARS = "\n" + "".join(chr(c) for c in range(32, 127))
"""The vocabulary of :func:`char_lm_tensors`: newline and the 95 printable ASCII characters (96 ids)."""

TEXT_MODULES = ("textwrap", "string", "bisect", "colorsys", "fnmatch", "glob", "queue", "sched",
                "graphlib", "calendar", "contextlib", "difflib")
"""The modules :func:`stdlib_text` joins by default (216 357 characters): notebook 06's text."""

CORPUS_MODULES = TEXT_MODULES + ("argparse", "configparser", "shlex", "fractions", "csv", "gettext", "pprint")
"""Every module in the shipped text file, in its order: any of them can be passed as ``modules``."""

CORPUS_FILE = "corpus/stdlib_source.txt"
"""The shipped text, relative to the ``helpers`` package (its licence: ``corpus/NOTICE.md``)."""

CORPUS_SHA256 = "4ccac3f6904c2f160a09d28440f1f3afdfeeed80fbb127d3865f463b16f66cfc"
"""SHA-256 of the bytes of :data:`CORPUS_FILE`; :func:`stdlib_text` refuses a file that differs."""

_CORPUS_MARK = "#@@ "
_CHAR_INDEX = {c: i for i, c in enumerate(CHARS)}


def _modules(modules) -> tuple[str, ...]:
    if isinstance(modules, str) or not isinstance(modules, (tuple, list)) or not modules \
            or not all(isinstance(m, str) and m for m in modules):
        raise ValueError(f"modules must be a non-empty list of module names, got {modules!r}")
    unknown = [m for m in modules if m not in CORPUS_MODULES]
    if unknown:
        raise ValueError(f"modules must be names from CORPUS_MODULES {CORPUS_MODULES}, got {unknown!r}")
    return tuple(modules)


@functools.lru_cache(maxsize=1)
def _corpus() -> dict[str, str]:
    # Read from the package, never from the running interpreter's standard library:
    # the same characters on every Python version and platform.
    from importlib import resources
    import hashlib

    raw = resources.files(__package__).joinpath(CORPUS_FILE).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CORPUS_SHA256:
        raise RuntimeError(f"helpers/{CORPUS_FILE} has SHA-256 {digest}, expected {CORPUS_SHA256}: the file was "
                           f"changed (line ends converted by git?); reinstall or re-clone the course")
    sources: dict[str, list[str]] = {}
    current = None
    for line in raw.decode("utf-8").splitlines(keepends=True):
        if line.startswith(_CORPUS_MARK):
            if line.startswith(_CORPUS_MARK + "module "):
                current = line[len(_CORPUS_MARK + "module "):].strip()
                sources[current] = []
            continue
        sources[current].append(line)
    return {name: "".join(lines) for name, lines in sources.items()}


def stdlib_text(modules=TEXT_MODULES) -> str:
    """The source code of some standard-library modules, joined by newlines, as one string.

    The text ships with the package (``helpers/corpus/stdlib_source.txt``: the
    source of :data:`CORPUS_MODULES` as distributed with CPython 3.11.7, under the
    PSF License, see ``helpers/corpus/NOTICE.md``), so it needs no download, never
    reads the running interpreter's own library, and is the same characters on
    every Python version and machine. Characters outside :data:`CHARS` (tabs,
    non-ASCII) are kept here; :func:`char_lm_tensors` maps them to a space.

    Parameters
    ----------
    modules : sequence of str, default :data:`TEXT_MODULES`
        Names from :data:`CORPUS_MODULES`, in the order they are joined.

    Returns
    -------
    str

    Examples
    --------
    >>> text = stdlib_text()
    >>> text.splitlines()[0][3:], len(text)
    ('Text wrapping and filling.', 216357)
    >>> stdlib_text(["bisect"]).count("def insort") >= 1
    True
    """
    sources = _corpus()
    return "\n".join(sources[name] for name in _modules(modules))


def char_lm_tensors(context: int = 8, *, val_fraction: float = 0.1, modules=TEXT_MODULES,
                    device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-character prediction on :func:`stdlib_text`: the ``context`` previous characters -> the next one.

    The text is encoded with :data:`CHARS` (96 ids; any other character becomes
    a space). Every position ``i >= context`` gives one example: inputs
    ``ids[i - context:i]``, target ``ids[i]``. The split is *contiguous*: the
    last ``val_fraction`` of the text is the validation set, so no validation
    character ever appears in a training window (overlapping windows would
    leak otherwise). The first modules of the text are training data, the
    last ones (``difflib`` by default) validation data.

    Parameters
    ----------
    context : int, default 8
        Characters seen before each prediction, in ``[1, 256]``.
    val_fraction : float, default 0.1
        Share of the text held out at its end, in ``[0.01, 0.5]``.
    modules : sequence of str, default :data:`TEXT_MODULES`
        As in :func:`stdlib_text`.
    device : None, str or torch.device, default None
        Where the tensors are created (``None``: the CPU).

    Returns
    -------
    X_train, y_train, X_val, y_val : torch.Tensor
        ``int64`` tensors: inputs of shape ``(N, context)``, targets of shape ``(N,)``.

    Examples
    --------
    >>> X_train, y_train, X_val, y_val = char_lm_tensors(context=4)
    >>> X_train.shape[1], X_train.dtype, len(CHARS)
    (4, torch.int64, 96)
    >>> [CHARS[i] for i in X_train[0].tolist()], CHARS[int(y_train[0])]
    (['"', '"', '"', 'T'], 'e')
    """
    context = _validate.integer("context", context, low=1, high=256)
    val_fraction = _validate.number("val_fraction", val_fraction, low=0.01, high=0.5)
    device = _device(device)
    text = stdlib_text(modules)
    ids = torch.tensor([_CHAR_INDEX.get(c, 1) for c in text], dtype=torch.int64)  # 1 is the space
    cut = int(round(len(ids) * (1 - val_fraction)))
    if cut <= context or len(ids) - cut <= context:
        raise ValueError(f"modules: the text ({len(ids)} characters) is too short for context={context} "
                         f"and val_fraction={val_fraction}")

    def windows(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        X = part.unfold(0, context, 1)[:-1].contiguous()
        return X.to(device), part[context:].contiguous().to(device)

    return (*windows(ids[:cut]), *windows(ids[cut:]))


def char_lm_loaders(context: int = 8, batch_size: int = 64, *, val_fraction: float = 0.1, seed: int = 0,
                    modules=TEXT_MODULES, device=None) -> tuple[DataLoader, DataLoader]:
    """Train and validation loaders over :func:`char_lm_tensors`.

    The training loader reshuffles the windows every epoch with its own
    generator seeded by ``seed`` (the text and the split do not depend on it);
    the validation loader does not shuffle and serves batches of up to 1024
    windows. A few hundred steps of batch 64 see well under one epoch of the
    default text: as in language-model pre-training, almost every batch is new.

    Parameters
    ----------
    context, val_fraction, modules, device
        As in :func:`char_lm_tensors`.
    batch_size : int, default 64
        Training batch size, ``>= 1``.
    seed : int, default 0
        Seed of the shuffling, ``>= 0``.

    Returns
    -------
    train_loader, val_loader : torch.utils.data.DataLoader
        Batches are ``(x, y)``: ``x`` of shape ``(B, context)``, ``y`` of shape ``(B,)``.

    Examples
    --------
    >>> train_loader, val_loader = char_lm_loaders(context=8, batch_size=32)
    >>> x, y = next(iter(train_loader)); tuple(x.shape), tuple(y.shape)
    ((32, 8), (32,))
    >>> torch.equal(next(iter(char_lm_loaders(seed=3)[0]))[1], next(iter(char_lm_loaders(seed=3)[0]))[1])
    True
    """
    batch_size = _validate.integer("batch_size", batch_size, low=1)
    seed = _validate.integer("seed", seed, low=0)
    X_train, y_train, X_val, y_val = char_lm_tensors(context, val_fraction=val_fraction, modules=modules,
                                                     device=device)
    train = tensor_loader(X_train, y_train, batch_size=batch_size, shuffle=True, seed=seed)
    val = tensor_loader(X_val, y_val, batch_size=_EVAL_BATCH, shuffle=False)
    return train, val
