"""What autograde's log and export tell the instructor, as docs/instructors.md explains them.

Notebook 00 (the quickest) is released and graded in a fresh course copy: an untouched
submission, the solution, and a submission whose learner edited a locked test cell.
Only the edited cell is reported; the hidden tests still run for everyone. A submission
with the guide's ``timestamp.txt`` gets its time in ``nbgrader export``.
"""
from __future__ import annotations

import csv
import re
import subprocess

import nbformat
import pytest

from conftest import ensure_grading_sandbox, read, solution_path, tool_env
from test_grading import grades
from test_instructor_cycle import GUIDE, fresh_copy

pytestmark = pytest.mark.slow

AID = "00_start_here"
TEST_CELL = "practice-tests"
COPIED = ["course.py", "nbgrader_config.py", "pyproject.toml", "requirements.txt", "requirements-no-deps.txt",
          "README.md", "tools", "helpers"]


def _nbgrader(course, *args: str) -> str:
    done = subprocess.run(["nbgrader", *args], cwd=course, env=tool_env(), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def guide_timestamp() -> str:
    """The timestamp.txt line that step 2 of the guide gives as its example."""
    section = GUIDE.read_text().split("2. **Collect.**", 1)[1].split("3. **Autograde.**", 1)[0]
    found = re.search(r"`timestamp\.txt`.*?`(\d{4}-\d\d-\d\d [^`]+)`", section, flags=re.S)
    assert found, "step 2 of the guide no longer shows what goes into timestamp.txt"
    return found.group(1)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    ensure_grading_sandbox()
    course = fresh_copy(tmp_path_factory.mktemp("log") / "course", names=COPIED)
    (course / "solutions").mkdir()
    subprocess.run(["cp", "-r", str(solution_path(AID).parent), str(course / "solutions")], check=True)
    _nbgrader(course, "generate_assignment", AID, "--force")
    released = read(course / "notebooks" / AID / f"{AID}.ipynb")
    edited = read(course / "notebooks" / AID / f"{AID}.ipynb")
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == TEST_CELL:
            cell.source = "pass  # the learner emptied the test\n"
    submissions = {"alan": released, "ada": read(solution_path(AID)), "eve": edited}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / AID
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{AID}.ipynb")
    (course / "submitted" / "ada" / AID / "timestamp.txt").write_text(guide_timestamp() + "\n")
    log = _nbgrader(course, "autograde", AID)
    _nbgrader(course, "export")
    with (course / "grades.csv").open() as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    return {"log": log, "grades": grades(course), "export": exported, "course": course}


def test_no_checksum_alarm_for_cells_whose_hidden_tests_come_back(graded):
    assert "Sanitizing" in graded["log"], "the log at its usual level, in which the alarm would appear"
    assert "Attribute 'checksum'" not in graded["log"], graded["log"][-3000:]
    assert not re.search(r"'(alan|ada)'.*locked cell", graded["log"]), graded["log"][-3000:]


def test_a_locked_cell_the_learner_edited_is_reported_with_the_submission_and_restored(graded):
    lines = [line for line in graded["log"].splitlines() if "locked cell" in line]
    assert lines == [line for line in lines if "'eve'" in line and f"'{TEST_CELL}'" in line] and len(lines) == 1, \
        graded["log"][-3000:]
    # Restored: eve's emptied test cell still ran the course's (failing) tests, hidden ones included.
    assert graded["grades"]["eve", AID, TEST_CELL][0] == 0


def test_the_hidden_tests_still_run(graded):
    for student in ("alan", "eve"):
        nb = read(graded["course"] / "autograded" / student / AID / f"{AID}.ipynb")
        test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == TEST_CELL)
        assert "BEGIN HIDDEN TESTS" in test.source, f"{student}'s test cell was graded without its hidden tests"
    assert graded["grades"]["ada", AID, TEST_CELL][0] == graded["grades"]["ada", AID, TEST_CELL][2] > 0
    assert graded["grades"]["alan", AID, TEST_CELL][0] == 0


def test_the_guides_timestamp_reaches_the_export(graded):
    assert graded["export"]["ada"]["timestamp"].startswith(guide_timestamp()[:16]), graded["export"]["ada"]
    assert graded["export"]["alan"]["timestamp"] == "", "no timestamp.txt, no time"
