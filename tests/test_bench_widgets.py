"""The widget latency benchmark: its table arithmetic, and a real smoke run in Chromium."""
from __future__ import annotations

import subprocess
import sys

import pytest

from browser_driver import chromium
from conftest import ROOT, tool_env

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_widgets import table  # noqa: E402


def test_the_table_gives_median_and_max_per_demo_against_its_kind_of_target():
    rows = [{"notebook": "01", "demo": "Trajectory", "slider": "lr", "ms": [100.0, 300.0, 200.0]},
            {"notebook": "02", "demo": "LR range test", "slider": "a", "ms": [1000.0, 2000.0]},
            {"notebook": "02", "demo": "LR range test", "slider": "b", "ms": [1200.0]},
            {"notebook": "05", "demo": "Cyclical", "slider": "x", "ms": [100.0]},
            {"notebook": "05", "demo": "Cyclical", "slider": "y", "error": "never enabled"}]
    lines = table(rows).splitlines()[2:]
    assert lines[0] == "| 01 | Trajectory | redraw | 1 | 3 | 200 ms | 300 ms | ≤ 250 ms | yes |"
    assert lines[1] == "| 02 | LR range test | training | 2 | 3 | 1200 ms | 2000 ms | ≤ 1500 ms | yes |"
    assert lines[2].endswith("| no: y failed |")


@pytest.mark.slow
def test_a_smoke_run_measures_the_start_page_demo():
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_widgets.py"), "00", "--repeats", "2"],
                          capture_output=True, text=True, env=tool_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| 00_start_here")]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2:5] == ["redraw", "1", "2"] and cells[5].endswith(" ms"), row
