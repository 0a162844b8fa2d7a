"""Smoke test of benchmarks/bench_suggestions.py in --quick mode (no assertions on the figures)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_suggestions.py"
NUMBER = r"(\d+\.\d\d|inf)"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_suggestions", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_prints_a_ratio_for_every_rule_and_problem(capsys):
    bench = load_bench()
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for problem in ("iris", "moons", "worst"):
        row = re.search(rf"^{problem}\s+(\S+\s+)?{NUMBER}(\s+{NUMBER}){{{len(bench.RULES) - 1}}}$", out, re.M)
        assert row, out
    assert re.search(r"^rules within 1\.25x of the grid's best on every problem: ", out, re.M), out


def test_ratios_compare_the_pick_with_the_grids_best(monkeypatch):
    """A rule that picks the grid's best LR scores exactly 1, whatever the losses are."""
    bench = load_bench()
    monkeypatch.setattr(bench, "GRID", bench.np.array([0.01, 0.1]))
    monkeypatch.setattr(bench, "_train", lambda train, val, nc, seed, lr, steps: {0.01: 2.0, 0.1: 0.5}[lr])
    monkeypatch.setattr(bench, "_picks", lambda train, nc, seed, iters: {"good": 0.1, "bad": 0.01, "none": None})
    X, y = bench.np.random.default_rng(0).normal(size=(40, 3)), bench.np.arange(40) % 2
    res = bench.evaluate_problem("toy", X.astype("float32"), y, seeds=[0, 1], steps=1, iters=1)
    assert res["best_lr"] == 0.1
    assert res["ratios"] == {"good": 1.0, "bad": 4.0, "none": float("inf")}
