"""How good are the range test's suggestions? Train at each rule's pick and at a grid of LRs.

For each small offline problem (scikit-learn's built-in datasets and generators, so
nothing is downloaded), and each seed:

1. build the problem's MLP (``helpers.models.mlp``, two hidden layers of 64) with
   that seed's initial weights, and SGD with momentum 0.9;
2. run ``helpers.lr_finder.lr_range_test`` on it (1e-5 to 10, 100 iterations,
   library defaults otherwise; ``runs=3`` for the rules that use repeated runs) and
   read each rule's pick;
3. train the *same* initial weights with the *same* batch order at a constant LR
   for ``--steps`` optimizer steps, once per pick and once per LR of a grid
   (10^-3 to 10^0.5 in quarter decades), and record the final validation loss.

Per problem the figure of merit is, for each rule, the mean over seeds of the final
validation loss at its pick divided by the best seed-averaged final validation loss
over the grid: 1.00 means the rule found the best constant LR of the grid; a
diverged run counts as infinite. Rules:

* ``valley``, ``steepest``, ``minimum/10``: ``RangeTestResult.suggest`` on one run;
* ``valley x3``: ``suggest("valley")`` on the median curve of ``runs=3``;
* ``valley low x3``: the low end of ``suggest_interval("valley")`` over 3 runs;
* ``geo-mean``: the geometric mean of the valley and minimum/10 picks of one run
  (a candidate between the conservative and the aggressive rule).

``valley`` is the library's default rule; it stays the default unless another rule
lands within 1.25x of the grid's best on every problem.

Usage::

    python benchmarks/bench_suggestions.py            # full run: 6 problems x 3 seeds
    python benchmarks/bench_suggestions.py --quick    # smoke run: 2 problems, 1 seed, short
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.data import tensor_loader  # noqa: E402
from helpers.lr_finder import SuggestionError, lr_range_test  # noqa: E402
from helpers.models import mlp  # noqa: E402

GRID = 10.0 ** np.arange(-3.0, 0.51, 0.25)
RULES = ("valley", "steepest", "minimum/10", "valley x3", "valley low x3", "geo-mean")
BATCH = 32


def _problems() -> dict:
    """``{name: (X, y)}`` for every problem: standardised float32 features, int64 labels."""
    from sklearn import datasets

    raw = {
        "digits": datasets.load_digits(return_X_y=True),
        "wine": datasets.load_wine(return_X_y=True),
        "breast_cancer": datasets.load_breast_cancer(return_X_y=True),
        "iris": datasets.load_iris(return_X_y=True),
        "moons": datasets.make_moons(n_samples=1000, noise=0.3, random_state=0),
        "classification": datasets.make_classification(
            n_samples=2000, n_features=20, n_informative=8, n_classes=4, random_state=0),
    }
    return {name: (X.astype(np.float32), y.astype(np.int64)) for name, (X, y) in raw.items()}


def _split(X: np.ndarray, y: np.ndarray, val_fraction: float = 0.3):
    """A stratified split fixed for the problem (seed 0), standardised on the training part."""
    from sklearn.model_selection import train_test_split

    X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=val_fraction, stratify=y, random_state=0)
    mean, std = X_tr.mean(0), X_tr.std(0)
    std[std == 0] = 1.0  # digits has pixels that are always 0 in the training part
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return (as_t((X_tr - mean) / std), as_t(y_tr)), (as_t((X_val - mean) / std), as_t(y_val))


def _fresh(n_features: int, n_classes: int, seed: int, lr: float = 1e-3):
    model = mlp(n_features, hidden=(64, 64), num_classes=n_classes, seed=seed)
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _train(train, val, n_classes: int, seed: int, lr: float, steps: int) -> float:
    """Final validation loss after ``steps`` constant-LR steps (inf if it diverged)."""
    model, opt = _fresh(train[0].shape[1], n_classes, seed, lr)
    loss_fn = nn.CrossEntropyLoss()
    loader, done = tensor_loader(*train, batch_size=BATCH, seed=seed), 0
    while done < steps:
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            if not torch.isfinite(loss):
                return float("inf")
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    with torch.no_grad():
        val_loss = float(loss_fn(model(val[0]), val[1]))
    return val_loss if np.isfinite(val_loss) else float("inf")


def _picks(train, n_classes: int, seed: int, iters: int) -> dict:
    """Each rule's pick from range tests on this seed's initial weights (None if no pick)."""
    picks = {}
    loss_fn = nn.CrossEntropyLoss()
    for runs in (1, 3):
        model, opt = _fresh(train[0].shape[1], n_classes, seed)
        loader = tensor_loader(*train, batch_size=BATCH, seed=seed)
        result = lr_range_test(model, opt, loss_fn, loader, start_lr=1e-5, end_lr=10.0,
                               num_iters=iters, runs=runs, progress=False)
        asks = ({"valley": ("valley", False), "steepest": ("steepest", False),
                 "minimum/10": ("minimum", False)} if runs == 1 else
                {"valley x3": ("valley", False), "valley low x3": ("valley", True)})
        for rule, (method, low_end) in asks.items():
            try:
                picks[rule] = result.suggest_interval(method)[0] if low_end else result.suggest(method)
            except SuggestionError:
                picks[rule] = None
    both = picks["valley"], picks["minimum/10"]
    picks["geo-mean"] = None if None in both else float(np.sqrt(both[0] * both[1]))
    return picks


def evaluate_problem(name: str, X, y, seeds, steps: int, iters: int) -> dict:
    """Seed-averaged grid losses, per-rule picks and losses, and each rule's ratio to the grid's best."""
    train, val = _split(X, y)
    n_classes = int(y.max()) + 1
    grid = np.array([[_train(train, val, n_classes, s, lr, steps) for lr in GRID] for s in seeds])
    grid_mean = grid.mean(axis=0)
    best = float(np.min(grid_mean))
    rows = {}
    for s in seeds:
        for rule, lr in _picks(train, n_classes, s, iters).items():
            loss = float("inf") if lr is None else _train(train, val, n_classes, s, lr, steps)
            rows.setdefault(rule, []).append((lr, loss))
    ratios = {rule: float(np.mean([loss for _, loss in r])) / best for rule, r in rows.items()}
    return {"name": name, "best_lr": float(GRID[int(np.argmin(grid_mean))]), "best_loss": best,
            "picks": {rule: [lr for lr, _ in r] for rule, r in rows.items()}, "ratios": ratios}


def _fmt_lr(lrs) -> str:
    vals = [v for v in lrs if v is not None]
    if not vals:
        return "none"
    lo, hi = min(vals), max(vals)
    return f"{lo:.2g}" if np.isclose(lo, hi) else f"{lo:.2g}-{hi:.2g}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 problems, 1 seed, 100 steps, 40 iterations")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per training run (300)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per problem (3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    problems = _problems()
    steps, iters, seeds = args.steps, 100, list(range(args.seeds))
    if args.quick:
        problems = {k: problems[k] for k in ("iris", "moons")}
        steps, iters, seeds = 100, 40, [0]
    start = time.perf_counter()
    print(f"{len(problems)} problems x {len(seeds)} seeds; {steps} SGD(momentum=0.9) steps of batch {BATCH} "
          f"at constant LR; grid {GRID[0]:.0e}..{GRID[-1]:.2g} ({len(GRID)} LRs)")
    print("final validation loss at each rule's pick / best on the grid (1.00 = grid's best; mean over seeds)")
    results = [evaluate_problem(name, X, y, seeds, steps, iters) for name, (X, y) in problems.items()]
    head = f"{'problem':<15}{'grid best':>11}" + "".join(f"{r:>15}" for r in RULES)
    print(head)
    for res in results:
        print(f"{res['name']:<15}{res['best_lr']:>11.2g}" + "".join(f"{res['ratios'][r]:>15.2f}" for r in RULES))
    worst = {r: max(res["ratios"][r] for res in results) for r in RULES}
    print(f"{'worst':<15}{'':>11}" + "".join(f"{worst[r]:>15.2f}" for r in RULES))
    print("\npicked LRs (range over seeds)")
    print(head)
    for res in results:
        print(f"{res['name']:<15}{res['best_lr']:>11.2g}" + "".join(f"{_fmt_lr(res['picks'][r]):>15}" for r in RULES))
    within = [r for r in RULES if worst[r] <= 1.25]
    print(f"\nrules within 1.25x of the grid's best on every problem: {', '.join(within) or 'none'}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
