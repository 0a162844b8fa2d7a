"""The instructor's single-machine cycle, command for command as docs/instructors.md gives it.

The ```bash blocks of the guide's "One class cycle on your own machine" section run in
order in a fresh copy of the repository (sharing this .venv). Where the guide says to
put learners' files in submitted/, the test does: ada submits the solution, grace a
plausible wrong answer to one exercise, alan (late) the untouched student version.
Then it checks the gradebook, the feedback (no hidden-test line in it) and grades.csv,
and that the hand grade given in the guide survives the late autograde.
"""
from __future__ import annotations

import csv
import html
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from conftest import ROOT, ensure_grading_sandbox, is_test_cell, nbgrader_meta, read, solution_path
from test_grading import edited
from test_wrong_answers import exercises, wrong_answers

AID = "01_why_lr_matters"
GUIDE = ROOT / "docs" / "instructors.md"
COPIED = ["course.py", "nbgrader_config.py", "pyproject.toml", "requirements.txt", "requirements-no-deps.txt",
          "README.md", "solutions", "notebooks", "tools", "helpers"]


def guide_steps() -> list[str]:
    text = GUIDE.read_text()
    section = text.split("## One class cycle on your own machine", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(block).strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def hidden_lines(aid: str) -> set[str]:
    """Lines of the hidden tests that would give them away: not trivial, and not also visible."""
    hidden, visible = set(), set()
    for cell in read(solution_path(aid)).cells:
        regions = re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", cell.source, flags=re.S)
        hidden |= {l.strip() for region in regions for l in region.splitlines()}
        rest = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", cell.source, flags=re.S)
        visible |= {l.strip() for l in rest.splitlines()}
    return {line for line in hidden - visible if len(line) > 12}


def fresh_copy(course: Path, venv: Path = ROOT / ".venv", names=COPIED) -> Path:
    """The repository's course files (``names``) in ``course``, sharing ``venv`` (this checkout's .venv)."""
    course.mkdir(exist_ok=True)
    for name in names:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, course / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, course / name)
    (course / ".venv").symlink_to(venv, target_is_directory=True)
    return course


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    ensure_grading_sandbox()  # autograde runs every submission in it
    course = fresh_copy(tmp_path_factory.mktemp("cycle"))
    gid, mistakes = next(iter(wrong_answers(AID).items()))
    mistake, wrong_code = next(iter(mistakes.items()))
    answers = {g: "\n".join(l for l in src.splitlines() if not l.strip().startswith("### "))
               for g, (src, _) in exercises(AID).items()}
    released = course / "notebooks" / AID / f"{AID}.ipynb"  # as step 1 released it
    learners = {
        "ada": lambda: read(solution_path(AID)),
        "grace": lambda: edited(AID, {**answers, gid: wrong_code}, student=released),
        "alan": lambda: read(released),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    logs, steps = [], guide_steps()
    assert len(steps) >= 6, "the guide's cycle lost its commands"
    for step in steps:
        if "autograde" in step:
            late = "--student=" in step
            for student, nb in learners.items():
                if (student == "alan") == late:
                    folder = course / "submitted" / student / AID
                    folder.mkdir(parents=True, exist_ok=True)
                    nbformat.write(nb(), folder / f"{AID}.ipynb")
        if "course.py grade" in step:  # a snapshot before the hand grade
            logs.append(("before-hand-grade", _grades(course)))
        script = ("set -euo pipefail\n" + ("source .venv/bin/activate\n" if "source" not in step and
                                            any("source .venv" in s for s in steps[:steps.index(step)]) else "")
                  + step)
        done = subprocess.run(["bash", "-c", script], cwd=course, env=env, capture_output=True,
                              text=True, timeout=1500)
        assert done.returncode == 0, f"guide step failed:\n{step}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        logs.append((step, done.stdout + done.stderr))
    return {"course": course, "logs": logs, "wrong": (gid, mistake)}


def _grades(course: Path) -> dict:
    out = {}
    db = course / "gradebook.db"
    if not db.exists():
        return out
    with Gradebook(f"sqlite:///{db}") as gb:
        for sub in gb.assignment_submissions(AID):
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[sub.student_id, g.name] = (g.auto_score, g.manual_score, g.max_score,
                                                   g.cell_type, g.needs_manual_grade)
    return out


def _exercise_tests(gid: str) -> list[str]:
    tests, current = [], None
    for cell in read(solution_path(AID)).cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            current = meta["grade_id"]
        elif is_test_cell(cell) and current == gid:
            tests.append(meta["grade_id"])
    return tests


def test_the_guide_lists_the_cycle_in_order():
    steps = "\n".join(guide_steps())
    order = ["course.py generate", "course.py autograde", "course.py grade", "nbgrader generate_feedback",
             "nbgrader export"]
    positions = [steps.index(command) for command in order]
    assert positions == sorted(positions)


def test_grades_after_the_cycle(cycle):
    grades = _grades(cycle["course"])
    tests = {name for (student, name), g in grades.items() if student == "ada" and g[3] == "code"}
    assert tests, "the solution was graded"
    for name in tests:
        auto, _, top, _, _ = grades["ada", name]
        assert auto == top, f"ada (the solution) lost points on {name}"
        assert grades["alan", name][0] == 0, f"alan (untouched) scored on {name}"
    gid, mistake = cycle["wrong"]
    wrong_tests = _exercise_tests(gid)
    assert sum(grades["grace", t][0] for t in wrong_tests) < sum(grades["grace", t][2] for t in wrong_tests), \
        f"grace's wrong answer ({mistake}) got full marks"
    others = tests - set(wrong_tests)
    assert all(grades["grace", t][0] == grades["grace", t][2] for t in others), "grace's right answers lost points"


def test_the_hand_grade_is_recorded_and_survives_the_late_autograde(cycle):
    grades = _grades(cycle["course"])
    manual = {name: g for (student, name), g in grades.items() if student == "ada" and g[3] == "markdown"}
    assert manual and all(g[1] == g[2] and g[4] is False for g in manual.values()), manual
    before = dict(cycle["logs"])["before-hand-grade"]
    assert any(g[4] for (s, _), g in before.items() if s == "ada" and g[3] == "markdown"), \
        "before the hand grade the answer needed one"
    assert ("alan", next(iter(manual))) in grades  # the late submission was graded after the hand grade


def test_feedback_shows_no_hidden_test_but_the_comment_and_the_failure(cycle):
    secret = hidden_lines(AID)
    assert secret
    for student in ("ada", "grace"):
        page = cycle["course"] / "feedback" / student / AID / f"{AID}.html"
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        leaked = [line for line in secret if line in text]
        assert not leaked, f"hidden tests in {student}'s feedback: {leaked[:3]}"
        assert "hidden tests ran here" in text
    ada = html.unescape(re.sub(r"<[^>]+>", "", (cycle["course"] / "feedback" / "ada" / AID / f"{AID}.html").read_text()))
    assert "Both fixes, and why the limit drops" in ada
    grace = html.unescape(re.sub(r"<[^>]+>", "", (cycle["course"] / "feedback" / "grace" / AID / f"{AID}.html").read_text()))
    assert "AssertionError" in grace


def test_export_lists_every_learner_and_marks_missing_submissions(cycle):
    rows = list(csv.DictReader((cycle["course"] / "grades.csv").open()))
    ours = {r["student_id"]: r for r in rows if r["assignment"] == AID}
    assert set(ours) == {"ada", "grace", "alan"}
    assert float(ours["ada"]["score"]) == float(ours["ada"]["max_score"])
    assert 0 < float(ours["grace"]["score"]) < float(ours["grace"]["max_score"])
    missing = [r for r in rows if r["assignment"] != AID and r["student_id"] == "ada"]
    assert missing and all(float(r["score"]) == 0.0 and not r["timestamp"] for r in missing), \
        "as the guide says: no submission exports as 0.0 with an empty timestamp"
