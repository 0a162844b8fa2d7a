"""Tests for helpers.data: shapes, determinism, splits, exact curvature, synthetic tasks."""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from helpers import data
from helpers.data import (digits_loaders, digits_tensors, least_squares_digits,
                          noisy_least_squares, sorting_loaders, sorting_position_baseline, sorting_task,
                          tensor_loader)
from helpers.training import train_steps

RAW_X, RAW_Y = load_digits(return_X_y=True)
ROOT = Path(__file__).resolve().parent.parent


def _rows(a) -> list[tuple]:
    return sorted(map(tuple, np.asarray(a).tolist()))


# --------------------------------------------------------------------------- #
# digits
# --------------------------------------------------------------------------- #
def test_digits_shapes_and_dtypes():
    X_train, y_train, X_val, y_val = digits_tensors()
    assert X_train.shape == (1437, 64) and X_val.shape == (360, 64)
    assert y_train.shape == (1437,) and y_val.shape == (360,)
    assert X_train.dtype == torch.float32 and y_train.dtype == torch.int64
    images = digits_tensors(flatten=False)
    assert images[0].shape == (1437, 1, 8, 8) and images[2].shape == (360, 1, 8, 8)
    assert torch.equal(images[0].reshape(-1, 64), X_train)


def test_digits_split_is_a_partition_of_the_dataset():
    X_train, y_train, X_val, y_val = digits_tensors(standardize=False)
    assert _rows(torch.cat([X_train, X_val])) == _rows(RAW_X)
    assert sorted(torch.cat([y_train, y_val]).tolist()) == sorted(RAW_Y.tolist())


def test_digits_split_is_stratified():
    _, y_train, _, y_val = digits_tensors(val_fraction=0.25, seed=3)
    full = np.bincount(RAW_Y, minlength=10)
    val = np.bincount(y_val.numpy(), minlength=10)
    assert np.all(np.abs(val - 0.25 * full) <= 1)
    assert np.array_equal(val + np.bincount(y_train.numpy(), minlength=10), full)


def test_digits_is_deterministic_and_depends_on_seed():
    a, b, c = digits_tensors(seed=5), digits_tensors(seed=5), digits_tensors(seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], c[1])


def test_standardisation_uses_training_statistics_only():
    raw_train, _, raw_val, _ = digits_tensors(standardize=False)
    X_train, _, X_val, _ = digits_tensors()
    mean = raw_train.double().mean(0)
    std = raw_train.double().std(0, unbiased=False)
    std[std == 0] = 1
    torch.testing.assert_close(X_train, ((raw_train - mean) / std).float())
    torch.testing.assert_close(X_val, ((raw_val - mean) / std).float())
    # Validation statistics were not used: its mean is not exactly zero.
    assert X_val.mean(0).abs().max() > 1e-3
    assert X_train.mean(0).abs().max() < 1e-5


def test_digits_needs_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    data._digits.cache_clear()
    X_train, *_ = digits_tensors()
    assert X_train.shape == (1437, 64)


def test_digits_loaders_are_reproducible_and_reshuffle_each_epoch():
    def orders():
        train, _ = digits_loaders(batch_size=100, seed=1)
        return [[y.tolist() for _, y in train] for _ in range(2)]

    first, second = orders(), orders()
    assert first == second
    assert first[0] != first[1]
    assert sorted(sum(first[0], [])) == sorted(digits_tensors(seed=1)[1].tolist())


def test_digits_validation_loader_is_not_shuffled():
    train, val = digits_loaders(batch_size=32, seed=2)
    _, _, X_val, y_val = digits_tensors(seed=2)
    xs, ys = zip(*val)
    assert torch.equal(torch.cat(xs), X_val) and torch.equal(torch.cat(ys), y_val)
    assert len(train) == math.ceil(1437 / 32)


def test_digits_loaders_place_tensors_on_the_device():
    train, val = digits_loaders(device="cpu", flatten=False)
    x, y = next(iter(train))
    assert x.device.type == "cpu" and x.shape == (32, 1, 8, 8)


@pytest.mark.parametrize("kwargs, name", [
    ({"batch_size": 0}, "batch_size"),
    ({"val_fraction": 1.5}, "val_fraction"),
    ({"val_fraction": float("nan")}, "val_fraction"),
    ({"seed": -1}, "seed"),
    ({"flatten": "yes"}, "flatten"),
    ({"standardize": 1}, "standardize"),
    ({"device": "not-a-device"}, "device"),
])
def test_digits_loaders_validate_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        digits_loaders(**kwargs)


def test_tensor_loader_validates_tensors():
    with pytest.raises(ValueError, match="tensors"):
        tensor_loader(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="tensors"):
        tensor_loader([1, 2, 3])
    with pytest.raises(ValueError, match="shuffle"):
        tensor_loader(torch.zeros(3), shuffle="no")


@pytest.fixture(scope="module")
def least_squares():
    return least_squares_digits()


def test_least_squares_lambda_max_is_exact(least_squares):
    X, y, lambda_max = least_squares
    assert X.shape == (1797, 65) and y.shape == (1797, 10) and X.dtype == torch.float64
    reference = torch.linalg.eigvalsh(X.T @ X / X.shape[0])[-1]
    assert abs(lambda_max - float(reference)) < 1e-10 * lambda_max
    # The power method agrees (an independent route to the same number).
    v = torch.ones(X.shape[1], dtype=torch.float64)
    for _ in range(3000):
        v = X.T @ (X @ v) / X.shape[0]
        v = v / v.norm()
    assert abs(float(v @ (X.T @ (X @ v)) / X.shape[0]) - lambda_max) < 1e-6 * lambda_max


def test_least_squares_raw_pixels_have_a_much_larger_lambda_max(least_squares):
    raw = least_squares_digits(standardize=False, bias=False)
    assert raw.X.shape == (1797, 64)
    assert abs(raw.lambda_max - float(torch.linalg.eigvalsh(raw.X.T @ raw.X / 1797)[-1])) < 1e-8 * raw.lambda_max
    assert raw.lambda_max > 100 * least_squares.lambda_max


def test_least_squares_gradient_and_gd_losses_agree_with_the_definition(least_squares):
    X, y, lam = least_squares
    W = torch.randn(65, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(least_squares.loss(W), ((X @ W - y) ** 2).sum() / (2 * 1797))
    W_auto = W.clone().requires_grad_(True)
    least_squares.loss(W_auto).backward()
    torch.testing.assert_close(least_squares.gradient(W), W_auto.grad)
    W = torch.zeros(65, 10, dtype=torch.float64)
    for _ in range(30):
        W = W - 1.5 / lam * least_squares.gradient(W)
    torch.testing.assert_close(least_squares.gd_losses(1.5 / lam, 30)[-1], least_squares.loss(W))


def test_gd_converges_at_1_99_and_diverges_at_2_01_over_lambda_max(least_squares):
    X, y, lam = least_squares
    best = least_squares.loss(torch.linalg.lstsq(X, y).solution)
    stable = least_squares.gd_losses(1.99 / lam, 2000)
    unstable = least_squares.gd_losses(2.01 / lam, 2000)
    assert torch.all(stable[1:] <= stable[:-1] + 1e-12)  # monotone, as theory says below 2 / lambda_max
    assert float(stable[-1] - best) < 1e-6
    assert torch.isfinite(unstable).all()
    assert float(unstable[-1]) > 1e6 * float(unstable[0])
    assert float(unstable[-1]) > float(unstable[-101]) * 1.01 ** 150  # geometric growth, rate (1.01)^2 per step


def test_least_squares_validates_arguments(least_squares):
    with pytest.raises(ValueError, match="standardize"):
        least_squares_digits(standardize="no")
    with pytest.raises(ValueError, match="lr"):
        least_squares.gd_losses(0.0, 10)
    with pytest.raises(ValueError, match="steps"):
        least_squares.gd_losses(0.1, -1)


# --------------------------------------------------------------------------- #
# noisy least squares
# --------------------------------------------------------------------------- #
def test_noisy_least_squares_optimum_and_excess_loss():
    p = noisy_least_squares(d=10, n=200, noise=0.5, condition=4.0, seed=3)
    assert p.X.shape == (200, 10) and p.y.shape == (200, 1) and p.X.dtype == torch.float32
    X, y = p.X.double(), p.y.double().squeeze(1)
    torch.testing.assert_close(X.T @ (X @ p.w_best - y), torch.zeros(10, dtype=torch.float64), atol=1e-9, rtol=0)
    w = p.w_true + 0.1
    assert math.isclose(p.excess_loss(w), p.loss(w) - p.loss(p.w_best), rel_tol=1e-6)
    assert p.excess_loss(p.w_best) == 0.0
    assert math.isclose(p.loss(p.w_best), float(((X @ p.w_best - y) ** 2).mean()), rel_tol=1e-12)
    assert math.isclose(p.lambda_max, float(torch.linalg.eigvalsh(2 * X.T @ X / 200)[-1]), rel_tol=1e-9)
    variances = X.var(0)
    assert variances[0] / variances[-1] > 2  # feature scales spread by `condition`
    layer = torch.nn.Linear(10, 1, bias=False)
    assert p.excess_loss(layer.weight) == p.excess_loss(layer.weight.detach().reshape(-1))
    with pytest.raises(ValueError, match="w must have 10"):
        p.excess_loss(torch.zeros(3))


def test_noisy_least_squares_is_deterministic_and_validates():
    a, b = noisy_least_squares(d=5, n=50, seed=1), noisy_least_squares(d=5, n=50, seed=1)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    for kwargs, name in [({"n": 4, "d": 5}, "n"), ({"noise": -1.0}, "noise"), ({"d": 0}, "d"),
                         ({"condition": 0.0}, "condition")]:
        with pytest.raises(ValueError, match=name):
            noisy_least_squares(**kwargs)


def test_noisy_least_squares_rewards_decaying_the_learning_rate():
    """SGD, batch 8, 4000 steps at lr = 0.1 / lambda_max (measured on seeds 0-2: the constant LR
    ends ~700x above cosine decay to zero, and cosine to 10% of the peak 5-11x above it)."""
    p = noisy_least_squares()
    steps = 4000

    def run(floor: float | None) -> float:
        model = torch.nn.Linear(p.X.shape[1], 1, bias=False)
        torch.nn.init.zeros_(model.weight)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1 / p.lambda_max)
        factor = (lambda s: 1.0) if floor is None else (
            lambda s: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * s / steps)))
        history = train_steps(model, optimizer, tensor_loader(p.X, p.y, batch_size=8), steps=steps,
                              scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, factor),
                              criterion=torch.nn.MSELoss(), progress=False)
        assert not history.diverged
        return p.excess_loss(model.weight)

    constant, to_tenth, to_zero = run(None), run(0.1), run(0.0)
    assert constant > 50 * to_zero
    assert to_tenth > 2.5 * to_zero


# --------------------------------------------------------------------------- #
# sorting
# --------------------------------------------------------------------------- #
def test_sorting_task_targets_are_the_sorted_inputs():
    X, Y, X_val, Y_val = sorting_task(seq_len=12, vocab_size=7, n_train=300, n_val=40, seed=2)
    assert X.shape == Y.shape == (300, 12) and X_val.shape == (40, 12)
    assert X.dtype == torch.int64 and int(X.min()) >= 0 and int(X.max()) <= 6
    assert [sorted(row) for row in X.tolist()] == Y.tolist()
    assert [sorted(row) for row in X_val.tolist()] == Y_val.tolist()
    assert set(X.flatten().tolist()) == set(range(7))


def test_sorting_task_is_deterministic():
    a, b, c = sorting_task(seed=4), sorting_task(seed=4), sorting_task(seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_sorting_position_baseline_is_the_entropy_of_order_statistics():
    # Two binary tokens: the minimum is 0 and the maximum 1 with probability 3/4 each.
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert sorting_position_baseline(2, 2) == pytest.approx(h, abs=1e-12)
    # Against the empirical entropy of each position's target over many sequences.
    _, Y, _, _ = sorting_task(seq_len=16, vocab_size=16, n_train=100_000, n_val=1, seed=0)
    counts = torch.stack([torch.bincount(Y[:, i], minlength=16) for i in range(16)]).double()
    p = counts / counts.sum(1, keepdim=True)
    empirical = float(-(p * p.clamp_min(1e-300).log()).sum(1).mean())
    assert sorting_position_baseline(16, 16) == pytest.approx(empirical, abs=0.01)
    assert sorting_position_baseline(16, 16) < math.log(16)
    with pytest.raises(ValueError, match="vocab_size"):
        sorting_position_baseline(16, 1)


def test_sorting_loaders_batches_and_reproducibility():
    def first_batches():
        train, _ = sorting_loaders(batch_size=50, n_train=200, n_val=30, seed=1)
        return [x for x, _ in train]

    a, b = first_batches(), first_batches()
    assert len(a) == 4 and all(torch.equal(x, y) for x, y in zip(a, b))
    train, val = sorting_loaders(batch_size=50, n_train=200, n_val=30, seed=1)
    x, y = next(iter(val))
    assert x.shape == (30, 16) and torch.equal(y, x.sort(dim=1).values)


@pytest.mark.parametrize("kwargs, name", [
    ({"seq_len": 1}, "seq_len"), ({"vocab_size": 1}, "vocab_size"), ({"n_train": 0}, "n_train"),
    ({"n_val": 0}, "n_val"), ({"seed": 1.5}, "seed"), ({"batch_size": -3}, "batch_size"),
])
def test_sorting_loaders_validate_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sorting_loaders(**kwargs)


@pytest.mark.parametrize("shuffle", [True, False])
def test_tensor_loader_yields_what_a_plain_dataloader_yields(shuffle):
    """Same batches, same order, same draws from the global RNG: only faster."""
    from torch.utils.data import DataLoader, TensorDataset

    from helpers.data import _generator

    X, y = torch.randn(101, 3), torch.arange(101)

    def epochs(loader):
        torch.manual_seed(0)
        out = []
        for _ in range(3):
            out += [b for batch in loader for b in batch]
            out.append(torch.rand(1))  # would differ if the loaders consumed the global RNG differently
        return out

    plain = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=shuffle,
                       generator=_generator(5) if shuffle else None)
    ours = tensor_loader(X, y, batch_size=16, shuffle=shuffle, seed=5)
    assert len(ours) == len(plain) == 7
    assert all(torch.equal(a, b) for a, b in zip(epochs(plain), epochs(ours), strict=True))


# --------------------------------------------------------------------------- #
# characters of some standard-library source, shipped with the package
# --------------------------------------------------------------------------- #
# Literals, not data.CORPUS_SHA256: a changed file and a changed constant both fail here.
CORPUS_FILE_SHA256 = "4ccac3f6904c2f160a09d28440f1f3afdfeeed80fbb127d3865f463b16f66cfc"
TEXT_SHA256 = {  # the text stdlib_text returns for notebook 06's modules, 08's training and held-out ones
    "TEXT_MODULES": "dfff69911c032d9a60e1c436dcc5910822b51cfcf5fb7ffa92fd46b5a81bcf64",
}
CORPUS_PATH = Path(data.__file__).parent / "corpus" / "stdlib_source.txt"


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def test_shipped_text_file_has_its_hash_and_its_licence():
    raw = CORPUS_PATH.read_bytes()
    assert _sha(raw) == CORPUS_FILE_SHA256 == data.CORPUS_SHA256, "the shipped text file changed"
    assert b"\r" not in raw and len(raw) < 600_000, "LF line ends and a modest size"
    header = [line for line in raw.decode("utf-8").splitlines() if line.startswith("#@@ ")]
    assert [line[len("#@@ module "):] for line in header if line.startswith("#@@ module ")] == \
        list(data.CORPUS_MODULES), "the file holds CORPUS_MODULES in order"
    assert any("PSF License" in line for line in header), "the file's header names its licence"
    notice = (CORPUS_PATH.parent / "NOTICE.md").read_text(encoding="utf-8")
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in notice and "stdlib_source.txt" in notice


def test_stdlib_text_comes_from_the_shipped_file_and_needs_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no network access allowed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    text = data.stdlib_text()
    assert {name: _sha(data.stdlib_text(getattr(data, name))) for name in TEXT_SHA256} == TEXT_SHA256
    assert text.startswith('"""Text wrapping and filling.') and len(text) == 216_357 and text == data.stdlib_text()
    assert data.stdlib_text(["bisect", "colorsys"]) == data.stdlib_text(["bisect"]) + "\n" + data.stdlib_text(["colorsys"])
    # 08's training and held-out modules come from the same file
    assert _sha(data.stdlib_text(("argparse", "configparser", "shlex", "fractions"))) == \
        "afe173d318ce2dfb85de9bd37510919526ea752109efdc84296d4f34576d6d47"
    assert _sha(data.stdlib_text(("csv", "gettext", "pprint"))) == "9ff44f05196e2b882f1c18453c09a158223f4f08fef6ad12042d03e23559cfb3"
    assert data.stdlib_text(["sched"]).startswith('"""A generally useful event scheduler class.')


@pytest.mark.skipif(sys.version_info[:3] != (3, 11, 7), reason="the file was read from CPython 3.11.7")
def test_shipped_text_is_the_source_of_cpython_3_11_7():
    import importlib
    import inspect

    for name in data.CORPUS_MODULES:
        assert data.stdlib_text([name]) == inspect.getsource(importlib.import_module(name)), name


_NO_STDLIB_SCRIPT = r"""
import hashlib, linecache, os, sys, sysconfig
import helpers.data as data

roots = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
names = set(data.CORPUS_MODULES)
attempts = []

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        stem = os.path.basename(path).split(".")[0]
        if stem in names and any(path.startswith(root + os.sep) for root in roots):
            attempts.append(path)
            raise PermissionError(f"blocked: {path}")

sys.addaudithook(hook)
linecache.clearcache()
text = data.stdlib_text(data.CORPUS_MODULES)
print("loader", len(attempts), hashlib.sha256(text.encode()).hexdigest())
# the hook does catch a loader that reads the interpreter's library
import inspect, textwrap
try:
    inspect.getsource(textwrap)
    print("inspect read the library")
except OSError:
    print("inspect blocked", len(attempts))
"""


def test_loader_never_reads_the_running_interpreters_standard_library():
    """In a fresh interpreter that refuses to open the standard library's copy of any
    corpus module, the loader still returns the whole text with its known hash."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", _NO_STDLIB_SCRIPT], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120, check=True).stdout.split("\n")
    assert out[0] == f"loader 0 {_sha(data.stdlib_text(data.CORPUS_MODULES))}", out
    assert _sha(data.stdlib_text(data.CORPUS_MODULES)) == "3d980609d1376beb90da44838c32901ae0614db8988e5e9acb2b49f0050112d6", "the whole text changed"
    assert out[1].startswith("inspect blocked") and int(out[1].split()[-1]) >= 1, \
        f"the audit hook must catch a read of the standard library: {out}"


def test_a_plain_pip_install_carries_the_text(tmp_path):
    """As on Colab (`pip install --no-deps` of the repository, not editable): the wheel holds the file."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "helpers", src / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(target), str(src)],
                   capture_output=True, text=True, timeout=300, check=True)
    installed = target / "helpers" / "corpus"
    assert _sha((installed / "stdlib_source.txt").read_bytes()) == CORPUS_FILE_SHA256, "the wheel lacks the text"
    assert (installed / "NOTICE.md").is_file(), "the wheel lacks the text's licence"
    script = "import hashlib, helpers.data as d; print(d.__file__); print(hashlib.sha256(d.stdlib_text().encode()).hexdigest())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)}).stdout.split()
    assert out == [str(target / "helpers" / "data.py"), TEXT_SHA256["TEXT_MODULES"]], out


def test_char_lm_tensors_windows_targets_and_contiguous_split():
    X_train, y_train, X_val, y_val = data.char_lm_tensors(context=5, val_fraction=0.1)
    text = "".join(c if c in data.CHARS else " " for c in data.stdlib_text())
    decode = lambda ids: "".join(data.CHARS[i] for i in ids)  # noqa: E731
    cut = int(round(len(text) * 0.9))
    assert X_train.shape == (cut - 5, 5) and y_train.shape == (cut - 5,)
    assert X_val.shape == (len(text) - cut - 5, 5) and X_train.dtype == y_val.dtype == torch.int64
    for i in (0, 17, len(y_train) - 1):
        assert decode(X_train[i].tolist()) == text[i:i + 5] and data.CHARS[int(y_train[i])] == text[i + 5]
    assert decode(X_val[0].tolist()) + data.CHARS[int(y_val[0])] == text[cut:cut + 6]
    assert len(data.CHARS) == 96 and int(X_train.max()) < 96


def test_char_lm_loaders_are_reproducible_and_depend_on_seed():
    first = lambda seed: next(iter(data.char_lm_loaders(batch_size=16, seed=seed)[0]))  # noqa: E731
    assert torch.equal(first(1)[0], first(1)[0]) and not torch.equal(first(1)[0], first(2)[0])
    val = data.char_lm_loaders(context=3)[1]
    x, y = next(iter(val))
    assert x.shape == (1024, 3) and torch.equal(next(iter(val))[1], y)


@pytest.mark.parametrize("kwargs, param", [(dict(context=0), "context"), (dict(context=300), "context"),
                                           (dict(val_fraction=0.9), "val_fraction"),
                                           (dict(batch_size=0), "batch_size"), (dict(seed=-1), "seed"),
                                           (dict(modules="textwrap"), "modules"),
                                           (dict(modules=["sys"]), "modules"),
                                           (dict(modules=["colorsys"], context=256, val_fraction=0.01), "modules")])
def test_char_lm_loaders_validate_arguments(kwargs, param):
    with pytest.raises(ValueError, match=rf"^{param}\b"):
        data.char_lm_loaders(**kwargs)
