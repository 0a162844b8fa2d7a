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
# The suite runs notebooks, kernels and browsers side by side on two cores: the capstone's
# scorer (10-12 s on an idle core) may take longer than its 55 s classroom default here.
# Kernels started by the tests inherit this; nbgrader's 60 s per cell still applies.
os.environ.setdefault("LR_COURSE_CAPSTONE_TIMEOUT", "150")

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


def ensure_grading_sandbox() -> None:
    """Make autograde's sandbox (Debian's bubblewrap) available, for the tests that grade.

    On Linux as root, ``bwrap`` is installed with apt-get when missing (under a file lock:
    test files run on several workers). Where no Linux sandbox can exist (macOS,
    Windows), the grading tests grade without one (LR_COURSE_UNSANDBOXED_GRADING=1) and
    tests/test_sandbox.py skips; on Linux without ``bwrap``, autograde refuses and the
    grading tests fail with the command that fixes it.
    """
    import fcntl
    import shutil
    import subprocess

    if not sys.platform.startswith("linux"):
        os.environ.setdefault("LR_COURSE_UNSANDBOXED_GRADING", "1")
        return
    if shutil.which("bwrap") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    with open(Path(os.environ.get("TMPDIR", "/tmp")) / "lr-course-bwrap.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # apt-get takes one at a time
        if shutil.which("bwrap"):
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "bubblewrap"], env=env, capture_output=True)


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
