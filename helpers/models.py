"""Small models for the course, each initialised deterministically from a ``seed``.

The ``seed`` only drives the initialisation: it is applied inside
``torch.random.fork_rng``, so building a model never changes the global
random state (and building it twice with the same seed gives the same weights).
Models are created on the CPU; move them with ``model.to(device)``.
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import torch
from torch import nn

from . import _validate

__all__ = ["mlp", "small_cnn", "TinyTransformer", "tiny_transformer", "char_mlp", "count_parameters"]


@contextlib.contextmanager
def _seeded(seed: int):
    """Run the body with the CPU generator seeded by ``seed``, then restore the global state."""
    seed = _validate.integer("seed", seed, low=0)
    with torch.random.fork_rng(devices=[]):
        # Only the CPU generator: models are built on the CPU, and CUDA's state stays untouched.
        torch.default_generator.manual_seed(seed)
        yield


def _bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def mlp(in_features: int = 64, hidden: Sequence[int] = (128, 128), num_classes: int = 10, *,
        batchnorm: bool = False, dropout: float = 0.0, seed: int = 0) -> nn.Sequential:
    """A multilayer perceptron: ``Linear -> [BatchNorm1d] -> ReLU -> [Dropout]`` per hidden layer.

    The default is the course's reference MLP 64-128-128-10 for flattened digits
    (26,122 parameters), with PyTorch's default initialisation.

    Parameters
    ----------
    in_features : int, default 64
        Input features, ``>= 1``.
    hidden : sequence of int, default (128, 128)
        Width of each hidden layer (each ``>= 1``); empty gives a linear model.
    num_classes : int, default 10
        Output logits, ``>= 1``.
    batchnorm : bool, default False
        Add ``BatchNorm1d`` after each hidden ``Linear`` (before the ReLU).
    dropout : float, default 0.0
        Dropout probability after each hidden ReLU, in ``[0, 1)``; 0 adds no layer.
    seed : int, default 0
        Seed of the initialisation, ``>= 0``.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(N, in_features)`` to logits ``(N, num_classes)``.

    Examples
    --------
    >>> model = mlp()
    >>> count_parameters(model)
    26122
    >>> model(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    >>> torch.equal(mlp(seed=1)[0].weight, mlp(seed=1)[0].weight)
    True
    """
    in_features = _validate.integer("in_features", in_features, low=1)
    num_classes = _validate.integer("num_classes", num_classes, low=1)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise ValueError(f"hidden must be a sequence of integers >= 1, got {hidden!r}")
    widths = [_validate.integer("hidden[i]", h, low=1) for h in hidden]
    _bool("batchnorm", batchnorm)
    dropout = _validate.number("dropout", dropout, low=0, high=1, high_open=True)
    with _seeded(seed):
        layers: list[nn.Module] = []
        previous = in_features
        for width in widths:
            layers.append(nn.Linear(previous, width))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        layers.append(nn.Linear(previous, num_classes))
        return nn.Sequential(*layers)


def small_cnn(num_classes: int = 10, *, seed: int = 0) -> nn.Sequential:
    """A two-convolution network for ``1 x 8 x 8`` digit images.

    ``Conv(1->16, 3x3) -> ReLU -> Conv(16->32, 3x3) -> ReLU -> MaxPool(2)
    -> Flatten -> Linear(512->64) -> ReLU -> Linear(64->num_classes)``,
    with padding 1 so that the pooled maps are ``4 x 4``.

    Parameters
    ----------
    num_classes : int, default 10
        Output logits, ``>= 1``.
    seed : int, default 0
        Seed of the initialisation, ``>= 0``.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(N, 1, 8, 8)`` to logits ``(N, num_classes)``.

    Examples
    --------
    >>> model = small_cnn()
    >>> model(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    >>> count_parameters(model)
    38282
    """
    num_classes = _validate.integer("num_classes", num_classes, low=1)
    with _seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
            nn.Linear(64, num_classes),
        )


class TinyTransformer(nn.Module):
    """Token + learned positional embedding, ``nn.TransformerEncoder``, per-position classifier.

    Built by :func:`tiny_transformer`; see there for the parameters.
    The encoder is bidirectional (no attention mask): every output position
    sees the whole input sequence.

    >>> model = tiny_transformer(vocab_size=16, seq_len=8)
    >>> tuple(model(torch.zeros(2, 8, dtype=torch.long)).shape)
    (2, 8, 16)
    """

    def __init__(self, vocab_size: int, seq_len: int, d_model: int, nhead: int, num_layers: int,
                 norm_first: bool, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(seq_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                           batch_first=True, norm_first=norm_first)
        # Pre-LN stacks end with a LayerNorm (their residual stream is never
        # normalised otherwise); Post-LN layers already end with one.
        final_norm = nn.LayerNorm(d_model) if norm_first else None
        # The nested-tensor fast path is inference-only and warns with norm_first=True.
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=final_norm,
                                             enable_nested_tensor=False)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Map token ids ``(N, L)`` with ``L <= seq_len`` to logits ``(N, L, vocab_size)``."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.token(tokens) + self.position(positions)
        return self.head(self.encoder(h))


def tiny_transformer(vocab_size: int, seq_len: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2,
                     *, norm_first: bool = False, dim_feedforward: int = 128, dropout: float = 0.0,
                     seed: int = 0) -> TinyTransformer:
    """A small transformer encoder that classifies every position of a token sequence.

    ``norm_first=False`` is the Post-LN layer of the original transformer
    (``x = LayerNorm(x + sublayer(x))``), PyTorch's default and the variant
    that needs learning-rate warmup with Adam at a large learning rate;
    ``norm_first=True`` is Pre-LN (``x = x + sublayer(LayerNorm(x))``, plus a
    final LayerNorm), which trains much more easily without warmup.

    Parameters
    ----------
    vocab_size : int
        Number of token ids (inputs and output classes), ``>= 2``.
    seq_len : int
        Longest sequence (size of the positional embedding), ``>= 1``.
    d_model : int, default 64
        Embedding width, ``>= 1`` and divisible by ``nhead``.
    nhead : int, default 4
        Attention heads, ``>= 1``.
    num_layers : int, default 2
        Encoder layers, ``>= 1``.
    norm_first : bool, default False
        ``False``: Post-LN; ``True``: Pre-LN.
    dim_feedforward : int, default 128
        Hidden width of each feed-forward block, ``>= 1``.
    dropout : float, default 0.0
        Dropout inside the encoder layers, in ``[0, 1)``.
    seed : int, default 0
        Seed of the initialisation, ``>= 0``.

    Returns
    -------
    TinyTransformer
        Maps ``(N, L)`` token ids to logits ``(N, L, vocab_size)``.

    Examples
    --------
    >>> model = tiny_transformer(vocab_size=10, seq_len=16)
    >>> model(torch.zeros(2, 16, dtype=torch.long)).shape
    torch.Size([2, 16, 10])
    >>> count_parameters(model)
    69258
    """
    vocab_size = _validate.integer("vocab_size", vocab_size, low=2)
    seq_len = _validate.integer("seq_len", seq_len, low=1)
    nhead = _validate.integer("nhead", nhead, low=1)
    d_model = _validate.integer("d_model", d_model, low=1)
    if d_model % nhead:
        raise ValueError(f"d_model must be divisible by nhead={nhead}, got {d_model}")
    num_layers = _validate.integer("num_layers", num_layers, low=1)
    dim_feedforward = _validate.integer("dim_feedforward", dim_feedforward, low=1)
    dropout = _validate.number("dropout", dropout, low=0, high=1, high_open=True)
    _bool("norm_first", norm_first)
    with _seeded(seed):
        return TinyTransformer(vocab_size, seq_len, d_model, nhead, num_layers, norm_first,
                               dim_feedforward, dropout)


def char_mlp(vocab_size: int = 96, context: int = 8, embed_dim: int = 16, hidden: int = 128, *,
             seed: int = 0) -> nn.Sequential:
    """A character language model in the style of Bengio et al. (2003): embed, concatenate, MLP.

    ``Embedding(vocab_size, embed_dim) -> Flatten -> Linear(context * embed_dim, hidden)
    -> ReLU -> Linear(hidden, vocab_size)``: the logits of the next character given
    the ``context`` previous ones (the task of :func:`helpers.data.char_lm_loaders`).
    A step costs about as much as the digits MLP, which makes multi-seed
    language-model experiments cheap on a CPU.

    Parameters
    ----------
    vocab_size : int, default 96
        Number of character ids, ``>= 2`` (96 is ``len(helpers.data.CHARS)``).
    context : int, default 8
        Characters per input, ``>= 1``.
    embed_dim : int, default 16
        Width of each character's embedding, ``>= 1``.
    hidden : int, default 128
        Width of the hidden layer, ``>= 1``.
    seed : int, default 0
        Seed of the initialisation, ``>= 0``.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(N, context)`` int64 ids to logits ``(N, vocab_size)``.

    Examples
    --------
    >>> model = char_mlp()
    >>> model(torch.zeros(5, 8, dtype=torch.long)).shape
    torch.Size([5, 96])
    >>> count_parameters(model)
    30432
    """
    vocab_size = _validate.integer("vocab_size", vocab_size, low=2)
    context = _validate.integer("context", context, low=1)
    embed_dim = _validate.integer("embed_dim", embed_dim, low=1)
    hidden = _validate.integer("hidden", hidden, low=1)
    with _seeded(seed):
        return nn.Sequential(
            nn.Embedding(vocab_size, embed_dim), nn.Flatten(),
            nn.Linear(context * embed_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, vocab_size),
        )


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of scalar parameters of ``model`` (only those with ``requires_grad`` by default).

    Examples
    --------
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _bool("trainable_only", trainable_only)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
