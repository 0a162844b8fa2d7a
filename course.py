#!/usr/bin/env python3
"""One entry point for learners, instructors and maintainers.

    python3 course.py lab        set up .venv (first time) and open the course in JupyterLab
    python3 course.py test       set up .venv (first time) and run every test
    python3 course.py generate   rebuild the student notebooks in notebooks/ from solutions/
    python3 course.py execute    re-run the solution notebooks and store their fresh outputs
    python3 course.py check 01   run your notebook 01 from scratch and report its tests
    python3 course.py seedcheck  re-run the solution notebooks on shifted seeds; compare verdicts

Set-up creates a virtual environment in .venv and installs requirements.txt into
it; it is skipped while requirements.txt and pyproject.toml are unchanged.
Pass --keep-torch to keep a torch you installed into .venv yourself (a CUDA build).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
START_PAGE = "notebooks/00_start_here/00_start_here.ipynb"
STAMP = VENV / ".course-installed"


def venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def _fingerprint(keep_torch: bool) -> str:
    h = hashlib.sha256(str(keep_torch).encode())
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_venv(keep_torch: bool = False) -> Path:
    """Create .venv and install the course into it unless it is already current."""
    if sys.version_info < (3, 10):
        sys.exit(f"Python >= 3.10 is needed; this is {sys.version.split()[0]}.")
    py = venv_python()
    if not py.exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint(keep_torch)
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return py
    print("Installing the course and its dependencies (a few minutes the first time) ...", flush=True)
    if keep_torch:
        target = ["-e", ".[dev]"]
    else:
        target = ["-r", "requirements.txt"]
    subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", *target],
                   cwd=ROOT, check=True)
    STAMP.write_text(fingerprint)
    return py


def run(py: Path, *args: str) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    # Tools such as nbgrader start other executables of the environment (alembic).
    env["PATH"] = str(py.parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run([str(py), *args], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    keep_torch = "--keep-torch" in argv
    argv = [a for a in argv if a != "--keep-torch"]
    if not argv or argv[0] not in {"lab", "test", "generate", "execute", "check", "seedcheck"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    py = ensure_venv(keep_torch)
    if command == "lab":
        # The repository is the server's root (all notebooks reachable); the start page opens.
        return run(py, "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}", START_PAGE, *rest)
    if command == "test":
        return run(py, "-m", "pytest", *rest)
    script = {"check": "check_notebook.py", "seedcheck": "seed_check.py"}.get(command, f"{command}_notebooks.py")
    return run(py, str(ROOT / "tools" / script), *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
