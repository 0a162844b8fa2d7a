#!/usr/bin/env python3
"""One entry point for learners, instructors and maintainers.

Learners
    python3 course.py lab          set up .venv (first time) and open the course in JupyterLab
    python3 course.py check 01     run your notebook 01 from scratch and report its tests

Instructors (see docs/instructors.md)
    python3 course.py generate     release: rebuild notebooks/ from solutions/ and register
                                   every assignment in gradebook.db (needed by autograde)
    python3 course.py autograde 01 grade every submission of an assignment, several at a time, each
                                   in its sandbox (--workers N; --cluster tcp://HOST:PORT for a Dask
                                   cluster; python3 course.py autograde --help)
    python3 course.py grade ...    grade a free-text answer without a browser
                                   (python3 course.py grade --help)
    python3 course.py report 01    after autograde: per-question statistics, failure messages,
                                   plots and a CSV in reports/<id>/ (python3 course.py report --help)

Set-up only (a shared environment on a JupyterHub: docs/instructors.md)
    python3 course.py setup        set up .venv, or check that it is current, and stop

Maintainers
    python3 course.py test         set up .venv (first time) and run every test
    python3 course.py execute      re-run the solution notebooks and store their fresh outputs
    python3 course.py seedcheck    re-run the solution notebooks on shifted seeds; compare verdicts

Set-up creates a virtual environment in .venv and installs requirements.txt into
it; it is skipped while requirements.txt and pyproject.toml are unchanged, and
redone when the repository has moved. Pass --keep-torch to keep a torch you
installed into .venv yourself (a CUDA build). On Linux without an NVIDIA GPU, set-up
first installs the CPU build of the pinned torch from PyTorch's own index (PyPI's
Linux torch is the CUDA build, several GB), when that index answers within a few
seconds; otherwise it installs from PyPI as before. LR_COURSE_TORCH_INDEX=URL names
another index for that step, LR_COURSE_TORCH_INDEX= (empty) skips it.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
START_PAGE = "notebooks/00_start_here/00_start_here.ipynb"
STAMP = VENV / ".course-installed"
LOCATION = VENV / ".course-location"  # where .venv was built: its scripts and editable install point there
TOOLS = {"generate": "generate_notebooks.py", "execute": "execute_notebooks.py",
         "check": "check_notebook.py", "seedcheck": "seed_check.py", "grade": "grade_by_hand.py",
         "report": "grade_report.py", "autograde": "parallel_autograde.py"}
COMMANDS = ("lab", "test", "setup", *TOOLS)
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # PyTorch's CPU-only builds
PROBE_SECONDS = 5.0  # how long set-up waits for that index before it uses PyPI alone
FOLDER_OPTIONS = ("--course", "--out")  # options that name a folder (report; generate --out)


def venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def _fingerprint(keep_torch: bool) -> str:
    h = hashlib.sha256(str(keep_torch).encode())
    for name in ("requirements.txt", "requirements-no-deps.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def venv_moved() -> bool:
    """True when .venv was built in another folder (the repository was moved or copied)."""
    return LOCATION.exists() and LOCATION.read_text().strip() != str(VENV.resolve())


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver on this machine: then PyPI's CUDA build of torch is the useful one."""
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()


def answers(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether ``url`` answers within ``timeout`` seconds (any HTTP reply counts)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False


def cpu_torch_index() -> str | None:
    """The index to take torch's CPU build from, or None to take torch from PyPI.

    Only on Linux (PyPI's torch for macOS and Windows is already CPU-only) without an
    NVIDIA GPU, and only when the index answers. One quick probe instead of an
    ``--extra-index-url`` in requirements.txt: pip retries an index it cannot reach five
    times for every package it looks up (measured: 8 s per package when the name does not
    resolve), which would add many minutes on a machine that reaches only PyPI.
    """
    if "LR_COURSE_TORCH_INDEX" in os.environ:
        return os.environ["LR_COURSE_TORCH_INDEX"] or None
    if not sys.platform.startswith("linux") or has_nvidia_gpu():
        return None
    if not answers(f"{CPU_TORCH_INDEX}/torch/"):
        print(f"{CPU_TORCH_INDEX} does not answer: torch comes from pip's usual indexes (PyPI's Linux "
              "torch is the CUDA build).", flush=True)
        return None
    return CPU_TORCH_INDEX


def torch_requirement() -> str:
    """The torch line of requirements.txt (``torch==2.13.0``)."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return next(l.strip() for l in lines if re.match(r"\s*torch\b", l))


def install_cpu_torch(py: Path) -> None:
    """The pinned torch's CPU build first, where it fits; requirements.txt then keeps it.

    ``torch==2.13.0`` accepts ``2.13.0+cpu``, and pip prefers it to PyPI's plain
    ``2.13.0`` (a local version sorts above its public one), so the CPU index only needs
    to be an extra index for this one command.
    """
    index = cpu_torch_index()
    if index is None:
        return
    print(f"Installing the CPU build of PyTorch from {index} (no NVIDIA GPU here) ...", flush=True)
    done = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", torch_requirement(),
                           "--extra-index-url", index], cwd=ROOT)
    if done.returncode != 0:
        print("That did not work: torch comes from PyPI.", flush=True)


def ensure_venv(keep_torch: bool = False) -> Path:
    """Create .venv and install the course into it unless it is already current."""
    if sys.version_info < (3, 10):
        sys.exit(f"Python >= 3.10 is needed; this is {sys.version.split()[0]}.")
    py = venv_python()
    if venv_moved():
        # Its scripts and the editable install of `helpers` still point at the old folder.
        print(f".venv was built in {LOCATION.read_text().strip()}; rebuilding it here ...", flush=True)
        shutil.rmtree(VENV)
    if not py.exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint(keep_torch)
    if STAMP.exists() and STAMP.read_text() == fingerprint and LOCATION.exists():
        return py
    print("Installing the course and its dependencies (a few minutes the first time) ...", flush=True)
    target = ["-e", ".[dev]"] if keep_torch else ["-r", "requirements.txt"]
    if not keep_torch:
        install_cpu_torch(py)
    subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", *target],
                   cwd=ROOT, check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
                    "-r", "requirements-no-deps.txt"], cwd=ROOT, check=True)
    STAMP.write_text(fingerprint)
    LOCATION.write_text(str(VENV.resolve()))
    return py


def _env(py: Path) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    # Tools such as nbgrader start other executables of the environment (alembic).
    env["PATH"] = str(py.parent) + os.pathsep + env.get("PATH", "")
    return env


def run(py: Path, *args: str) -> int:
    return subprocess.run([str(py), *args], cwd=ROOT, env=_env(py)).returncode


def lab(py: Path, rest: list[str]) -> int:
    """JupyterLab on the repository, opening the start page; it ends when this command ends."""
    args = [str(py), "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}", START_PAGE, *rest]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in rest:
        args.append("--allow-root")  # containers often run as root; Jupyter refuses it otherwise
    if os.name == "nt":
        return subprocess.run(args, cwd=ROOT, env=_env(py)).returncode
    # Become the server: a signal to this process (kill, Ctrl+C) then reaches JupyterLab
    # itself, which shuts down cleanly, instead of leaving an orphaned server running.
    sys.stdout.flush()
    os.chdir(ROOT)
    os.execve(args[0], args, _env(py))
    return 1  # not reached


def test_workers(rest: list[str]) -> list[str]:
    """pytest-xdist options: one worker per core, at most 4, one test file per worker at a time.

    Most tests run a notebook on one thread, so files run side by side; a file stays on one
    worker, which starts its servers and builds its courses once. ``-n 0`` (or any ``-n``
    given) overrides this.
    """
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in rest) or "no:xdist" in rest:
        return []
    workers = max(1, min(4, os.cpu_count() or 1))
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


def usage(message: str | None = None) -> int:
    if message:
        print(f"course.py: {message}\n", file=sys.stderr)
    print(__doc__, file=sys.stderr if message else sys.stdout)
    return 2 if message else 0


def _caller_paths(args: list[str]) -> list[str]:
    """Notebook paths, and folders given to --course / --out, are relative to the folder the
    command was typed in; tools run from ROOT."""
    out = []
    for prev, a in zip(["", *args], args):
        option, eq, folder = a.partition("=")
        if prev in FOLDER_OPTIONS or (a.endswith(".ipynb") and Path(a).exists()):
            a = str(Path(a).resolve())
        elif eq and option in FOLDER_OPTIONS:
            a = f"{option}={Path(folder).resolve()}"
        out.append(a)
    return out


def main(argv: list[str]) -> int:
    keep_torch = "--keep-torch" in argv
    argv = [a for a in argv if a != "--keep-torch"]
    if not argv:
        return usage("which command? One of: " + ", ".join(COMMANDS))
    if argv[0] in {"-h", "--help", "help"}:
        return usage()
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        return usage(f"unknown command '{command}'; the commands are: " + ", ".join(COMMANDS))
    py = ensure_venv(keep_torch)
    if command == "setup":
        print(f"The course's environment is ready: {VENV}")
        return 0
    if command == "lab":
        return lab(py, rest)
    if command == "test":
        return run(py, "-m", "pytest", *test_workers(rest), *rest)
    return run(py, str(ROOT / "tools" / TOOLS[command]), *_caller_paths(rest))


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl+C during set-up or a tool: stop quietly
        sys.exit(128 + signal.SIGINT)
