"""course.py as learners and instructors type it: errors that say what to do, `check` on
an endless loop, relative paths, hand grades without a browser, a moved repository."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, student_path

sys.path.insert(0, str(ROOT))
import course  # noqa: E402
from check_notebook import find_notebook  # noqa: E402


def course_py(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "course.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_an_unknown_command_is_named_and_the_commands_listed():
    done = course_py("nonsense")
    assert done.returncode == 2
    assert "unknown command 'nonsense'" in done.stderr and "python3 course.py lab" in done.stderr


def test_help_exits_zero_and_no_command_is_an_error():
    assert course_py("--help").returncode == 0 and "python3 course.py check 01" in course_py("--help").stdout
    assert course_py().returncode == 2


def test_check_finds_notebooks_by_number_id_or_relative_path(tmp_path, monkeypatch):
    assert find_notebook("1").name == "01_why_lr_matters.ipynb"
    assert find_notebook("01").name == find_notebook("01_why").name == "01_why_lr_matters.ipynb"
    with pytest.raises(SystemExit, match="the notebooks are: 00_start_here, 01_why_lr_matters"):
        find_notebook("99")
    monkeypatch.chdir(student_path("00_start_here").parent)
    assert find_notebook("00_start_here.ipynb") == student_path("00_start_here").resolve()


def _with_answer(tmp_path: Path, code: str) -> Path:
    nb = json.loads(student_path("00_start_here").read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "practice-solution":
            cell["source"] = code
    path = tmp_path / "mine.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_check_reports_an_endless_loop_as_timed_out_and_goes_on(tmp_path):
    path = _with_answer(tmp_path, "while True:\n    pass\n\ndef decays_needed(lr0, gamma, target):\n    return 0\n")
    done = course_py("check", path.name, "--timeout", "10", cwd=tmp_path)  # a path relative to the caller
    out = done.stdout + done.stderr
    assert done.returncode == 1
    # JupyterLab numbers no cells: the cell is named by its section and its first line.
    assert ('in your answer (under "Practice exercise (1 point)", the cell starting "while True:"): '
            "timed out after 10 s") in out, out
    assert "FAILED  practice-tests (1 pt): NameError" in out, "the test after the loop still ran"
    assert "Traceback" not in out and "WARNING" not in out and "without encryption" not in out, out


def test_check_calls_an_untouched_exercise_not_attempted_not_an_error(tmp_path):
    path = tmp_path / "untouched.ipynb"
    path.write_text(student_path("00_start_here").read_text())
    done = course_py("check", str(path))
    assert done.returncode == 1
    assert "FAILED  practice-tests (1 pt): the exercise is not attempted yet" in done.stdout, done.stdout
    assert "ERROR" not in done.stdout and "NotImplementedError" not in done.stdout, done.stdout


def test_check_names_a_failing_cell_by_its_section_and_first_line_never_a_number(tmp_path):
    nb = json.loads(student_path("00_start_here").read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "practice-solution":
            cell["source"] = "# my answer\nk = 1 / 0\n"
    path = tmp_path / "mine.ipynb"
    path.write_text(json.dumps(nb))
    out = course_py("check", str(path)).stdout
    assert ('ERROR   in your answer (under "Practice exercise (1 point)", the cell starting "k = 1 / 0"): '
            "ZeroDivisionError: division by zero") in out, out
    assert not re.search(r"\bcell \d", out), out


def test_check_passes_a_correct_answer_quietly(tmp_path):
    path = _with_answer(tmp_path, "import math\n\ndef decays_needed(lr0, gamma, target):\n"
                                  "    return max(0, math.ceil(math.log(target / lr0) / math.log(gamma)))\n")
    done = course_py("check", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-2:] == ["  passed  practice-tests (1 pt)", "Visible tests: 1 / 1 points."]
    assert done.stderr == ""


def test_a_moved_repository_rebuilds_its_environment(tmp_path, monkeypatch):
    venv = tmp_path / "course" / ".venv"
    venv.mkdir(parents=True)
    monkeypatch.setattr(course, "VENV", venv)
    monkeypatch.setattr(course, "LOCATION", venv / ".course-location")
    assert not course.venv_moved()  # never built: nothing to compare
    course.LOCATION.write_text(str(venv.resolve()))
    assert not course.venv_moved()
    course.LOCATION.write_text("/somewhere/else/.venv")
    assert course.venv_moved()
    monkeypatch.undo()
    assert not course.venv_moved(), "this checkout's own .venv counts as moved"


def test_setup_builds_or_checks_the_environment_and_stops():
    """The JupyterHub guide's administrator builds the shared environment with it."""
    done = course_py("setup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"The course's environment is ready: {ROOT / '.venv'}"
