"""Shared fixtures: paths and notebook loading."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)  # tiny models: threads only add overhead (and nondeterminism)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from generate_notebooks import assignment_ids  # noqa: E402

ASSIGNMENTS = assignment_ids(ROOT)


def solution_path(aid: str) -> Path:
    return ROOT / "solutions" / aid / f"{aid}.ipynb"


def student_path(aid: str) -> Path:
    return ROOT / "notebooks" / aid / f"{aid}.ipynb"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_test_cell(cell) -> bool:
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and not m.get("solution") and cell.cell_type == "code"


def tool_env() -> dict:
    """Environment for command-line tools of this Python (nbgrader runs `alembic`)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="module")
def chromium_page():
    """A page in headless Chromium for a module's browser tests (skipped without Chromium)."""
    from browser_driver import browser_page

    with browser_page() as page:
        if page is None:
            pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
        yield page


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request) -> str:
    return request.param
