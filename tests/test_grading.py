"""The grading round trip: generate, submit, autograde, read the gradebook.

A throw-away course directory gets the repository's nbgrader_config.py and
solutions/. Every notebook is autograded twice: as the solution (full marks on every
test, with nbgrader's stderr filter switched off, so a correct answer provably writes
nothing to stderr) and as the untouched student version (0 on every test, and every
other cell runs without error). Notebook 01 is then submitted in several broken
forms, each of which must be scored on its merits without disturbing the grades
already in the gradebook. Every notebook is also submitted with the plausible wrong
answers of tests/wrong_answers/, which must lose points on the exercise they get wrong.
Every autograde runs in the grading sandbox (tools/grading_sandbox.py), so these tests
also show that every notebook grades inside it (07's two training processes included).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from conftest import (ASSIGNMENTS, ROOT, ensure_grading_sandbox, is_test_cell, nbgrader_meta, read,
                      student_path, tool_env)
from test_wrong_answers import wrong_answers

BROKEN_AID = "01_why_lr_matters"


def nbgrader(course: Path, *args: str) -> None:
    done = subprocess.run(["nbgrader", *args, "--log-level=WARN"], cwd=course, env=tool_env(),
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr


def submit(course: Path, student: str, aid: str, nb) -> None:
    folder = course / "submitted" / student / aid
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{aid}.ipynb")


def solved(source: str) -> str:
    """The solution region of a solution cell, markers removed (what a learner would write)."""
    return "\n".join(l for l in source.splitlines() if not l.strip().startswith("### "))


def grades(course: Path) -> dict:
    """(student, assignment, grade id) -> (auto score, manual score, max score)."""
    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in gb.students:
            for aid in ASSIGNMENTS:
                try:
                    notebook = gb.find_submission_notebook(aid, aid, student.id)
                except Exception:  # this student did not submit this assignment
                    continue
                for g in notebook.grades:
                    out[student.id, aid, g.name] = (g.auto_score, g.manual_score, g.max_score, g.cell_type)
    return out


class Exercise:
    """A solution cell of the solution notebook and the test cells that follow it."""

    def __init__(self, solution_cell, test_ids):
        self.id = nbgrader_meta(solution_cell)["grade_id"]
        self.answer = solved(solution_cell.source)
        self.test_ids = test_ids


def exercises(aid: str) -> list[Exercise]:
    found, current = [], None
    for cell in read(ROOT / "solutions" / aid / f"{aid}.ipynb").cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            current = Exercise(cell, [])
            found.append(current)
        elif is_test_cell(cell) and current is not None:
            current.test_ids.append(meta["grade_id"])
    return found


def edited(aid: str, solutions: dict[str, str], tests: dict[str, str | None] | None = None,
           student: Path | None = None):
    """The student notebook (or ``student``) with some solution and test cells replaced (None: deleted)."""
    tests = tests or {}
    nb = read(student or student_path(aid))
    cells = []
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in solutions:
            cell.source = solutions[gid]
        if gid in tests:
            if tests[gid] is None:
                continue
            cell.source = tests[gid]
        cells.append(cell)
    nb.cells = cells
    return nb


def noisy(answer: str) -> str:
    """A correct answer whose function also emits a Python warning when called."""
    name = re.search(r"^def (\w+)", answer, flags=re.M).group(1)
    return (answer + f"\n\nimport warnings\n_quiet_{name} = {name}\n\n"
            f"def {name}(*args, **kwargs):\n"
            f"    warnings.warn('a warning from the learner', UserWarning)\n"
            f"    return _quiet_{name}(*args, **kwargs)\n")


NBGRADER_WRONG = 1  # submissions per notebook; every listed answer is run in test_wrong_answers.py


def wrong_submissions(aid: str) -> dict:
    """Submission ``wrong-k`` answers every exercise with its k-th listed wrong answer.

    Each autograde costs a whole notebook run, so nbgrader scores the first
    NBGRADER_WRONG wrong answers of each exercise; test_wrong_answers.py runs every
    listed one against its exercise's tests (visible and hidden) on its own.
    """
    listed = wrong_answers(aid)
    right = {e.id: e.answer for e in exercises(aid)}
    most = min(NBGRADER_WRONG, max((len(m) for m in listed.values()), default=0))
    out = {}
    for k in range(most):
        answers = {gid: list(mistakes.values())[k] for gid, mistakes in listed.items() if len(mistakes) > k}
        out[f"wrong-{k + 1}"] = edited(aid, {**right, **answers})
    return out


class Course:
    """A throw-away course directory; each assignment is generated and graded on first use."""

    def __init__(self, root: Path):
        ensure_grading_sandbox()  # autograde runs every submission in it
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "nbgrader_config.py", root)
        shutil.copytree(ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "solutions", root / "solutions")
        self.graded: set[str] = set()
        self.broken: dict | None = None

    def grade(self, aid: str) -> dict:
        """Autograde the solution and the untouched student version of ``aid``; return all grades."""
        if aid not in self.graded:
            nbgrader(self.root, "generate_assignment", aid, "--force")
            submit(self.root, "solution", aid, read(ROOT / "solutions" / aid / f"{aid}.ipynb"))
            submit(self.root, "untouched", aid, read(student_path(aid)))
            # Strict for the solution: not even a filtered warning may reach stderr.
            nbgrader(self.root, "autograde", aid, "--student=solution", "--IgnorePattern.enabled=False")
            nbgrader(self.root, "autograde", aid, "--student=untouched")
            wrong = wrong_submissions(aid)
            for student, nb in wrong.items():
                submit(self.root, student, aid, nb)
            if wrong:
                nbgrader(self.root, "autograde", aid, "--student=wrong-*")
            self.graded.add(aid)
        return grades(self.root)

    def grade_broken(self) -> dict:
        """Give a hand grade, then autograde broken submissions of notebook 01."""
        if self.broken is None:
            self.grade(BROKEN_AID)
            with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
                notebook = gb.find_submission_notebook(BROKEN_AID, BROKEN_AID, "solution")
                manual = next(g for g in notebook.grades if g.cell_type == "markdown")
                manual.manual_score = manual.max_score
                gb.db.commit()
            before = grades(self.root)
            e1, e2 = exercises(BROKEN_AID)[:2]
            t1, t2 = e1.test_ids, e2.test_ids
            broken = {
                "broken-syntax": edited(BROKEN_AID, {e1.id: "def oops(:\n    pass", e2.id: e2.answer}),
                "broken-loop": edited(BROKEN_AID, {e1.id: "while True:\n    pass\n" + e1.answer,
                                                   e2.id: e2.answer}),
                "broken-edited": edited(BROKEN_AID, {e2.id: e2.answer},
                                        {**{t: "pass" for t in t1}, **{t: "assert False" for t in t2}}),
                "broken-deleted": edited(BROKEN_AID, {e1.id: e1.answer}, {t: None for t in t1 + t2}),
                "broken-exit": edited(BROKEN_AID, {e1.id: "import sys\nsys.exit()\n" + e1.answer,
                                                   e2.id: e2.answer + "\nraise SystemExit"}),
                "broken-noisy": edited(BROKEN_AID, {e1.id: noisy(e1.answer), e2.id: noisy(e2.answer)}),
            }
            for student, nb in broken.items():
                submit(self.root, student, BROKEN_AID, nb)
            nbgrader(self.root, "autograde", BROKEN_AID, "--student=broken-*")
            self.broken = {"before": before, "after": grades(self.root), "tests": (t1, t2)}
        return self.broken


class Courses:
    """One throw-away course directory per assignment, all graded up front, two at a time.

    Each autograde runs a whole notebook on one thread; two in parallel use both cores
    of a CI machine, and separate gradebooks keep them from locking each other out.
    """

    def __init__(self, base: Path):
        self.courses = {aid: Course(base / aid) for aid in ASSIGNMENTS}
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {aid: pool.submit(course.grade, aid) for aid, course in self.courses.items()}
        self.results = {aid: future.exception() or future.result() for aid, future in futures.items()}

    def grade(self, aid: str) -> dict:
        result = self.results[aid]
        if isinstance(result, BaseException):
            raise result
        return result

    def root(self, aid: str) -> Path:
        return self.courses[aid].root

    def grade_broken(self) -> dict:
        self.grade(BROKEN_AID)
        return self.courses[BROKEN_AID].grade_broken()


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Courses:
    return Courses(tmp_path_factory.mktemp("courses"))


def _test_scores(all_grades, student, aid):
    return {name: (auto, top) for (s, a, name), (auto, _, top, kind) in all_grades.items()
            if s == student and a == aid and kind == "code"}


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_solution_gets_full_marks_on_every_graded_test(course, aid):
    scores = _test_scores(course.grade(aid), "solution", aid)
    assert scores, f"{aid} has no autograded tests"
    assert all(auto == top for auto, top in scores.values()), scores


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_untouched_student_version_scores_zero_and_its_other_cells_run(course, aid):
    scores = _test_scores(course.grade(aid), "untouched", aid)
    assert scores and all(auto == 0 for auto, _ in scores.values()), scores
    graded = read(course.root(aid) / "autograded" / "untouched" / aid / f"{aid}.ipynb")
    for cell in graded.cells:
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        stub = nbgrader_meta(cell).get("solution") and all(o.ename == "NotImplementedError" for o in errors)
        if errors and not is_test_cell(cell) and not stub:  # an answer cell's stub may raise: not done yet
            pytest.fail(f"{aid}: a cell that is not a test fails on the student version: "
                        f"{cell.source[:100]!r} -> {errors[0].ename}")


@pytest.mark.parametrize("student, first, second", [
    ("broken-syntax", 0, 1),   # syntax error in exercise 1 costs exercise 1 only
    ("broken-loop", 0, 1),     # an infinite loop times out; grading goes on
    ("broken-edited", 0, 1),   # edited test cells are restored before grading
    ("broken-deleted", 1, 0),  # deleted test cells are put back and run
    ("broken-exit", 0, 1),     # sys.exit() / raise SystemExit do not stop grading
    ("broken-noisy", 1, 1),    # a warning on stderr does not cost a correct answer
])
def test_broken_submissions_are_scored_on_their_merits(course, student, first, second):
    broken = course.grade_broken()
    scores = _test_scores(broken["after"], student, BROKEN_AID)
    t1, t2 = broken["tests"]
    for tests, full in ((t1, first), (t2, second)):
        for t in tests:
            auto, top = scores[t]
            assert auto == (top if full else 0), (student, t, auto)


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_plausible_wrong_answers_score_below_full_marks(course, aid):
    """Each exercise answered wrongly (tests/wrong_answers/) loses points on that exercise."""
    all_grades = course.grade(aid)
    listed = wrong_answers(aid)
    assert listed, f"{aid}: no wrong answers listed"
    for exercise in exercises(aid):
        for k, mistake in enumerate(list(listed.get(exercise.id, {}))[:NBGRADER_WRONG]):
            scores = _test_scores(all_grades, f"wrong-{k + 1}", aid)
            got = sum(scores[t][0] for t in exercise.test_ids)
            top = sum(scores[t][1] for t in exercise.test_ids)
            assert got < top, f"{aid} {exercise.id}: '{mistake}' got full marks ({got:g}/{top:g})"


def test_grades_already_in_the_gradebook_are_untouched(course):
    broken = course.grade_broken()
    before, after = broken["before"], broken["after"]
    assert before and all(after[key] == value for key, value in before.items())
    manual = [v for (s, a, _), v in before.items() if s == "solution" and a == BROKEN_AID and v[3] == "markdown"]
    assert manual and manual[0][1] == manual[0][2], "the hand-given grade is recorded"


def test_config_keeps_a_per_cell_timeout():
    text = (ROOT / "nbgrader_config.py").read_text()
    assert re.search(r"^c\.ExecutePreprocessor\.timeout = \d+", text, flags=re.M)
