"""Smoke test of benchmarks/bench_lr_finder.py in --quick mode (no timing assertions)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("torch_lr_finder")
pytest.importorskip("sklearn")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_lr_finder.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_lr_finder", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_prints_the_comparison(capsys):
    assert load_bench().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^wall-time ratio \(ours / theirs\): \d+\.\d\d$", out, re.M), out
    assert re.search(r"^peak-memory ratio \(ours / theirs\): (\d+\.\d\d|n/a)", out, re.M), out
    assert re.search(r"^iterations run\s+20\s+20$", out, re.M), out
    # Same weights, batches and learning rates: the unsmoothed curves must agree exactly.
    assert "max |ours - theirs| = 0 over 20 iterations" in out
    # Validation-loss test: whole loader on both sides, and ours on its first VAL_BATCHES batches.
    assert re.search(r"^validation batches per step\s+15\s+2\s+15$", out, re.M), out
    assert re.search(r"^validation iterations run\s+20\s+20\s+20$", out, re.M), out
    assert re.search(r"^validation wall-time ratio vs torch-lr-finder: ours \(all\) \d+\.\d\d, "
                     r"ours \(val_batches=2\) \d+\.\d\d$", out, re.M), out
    assert re.search(r"^validation peak memory \[KiB\](\s+-?\d+){3}$", out, re.M), out
    # Same weights, batches and learning rates: the whole-loader validation curves must agree exactly.
    assert "(all batches): max |ours - theirs| = 0 over 20 iterations" in out
