"""`python3 course.py report`: grade analytics read from the gradebook and the autograded notebooks.

Fast tests check the pure parts (finding the failing line, grouping messages,
statistics) and the whole report on a hand-made gradebook, with a hand-graded answer,
one still waiting for its grade, and a student who submitted nothing. The slow test
autogrades a small synthetic class of notebook 00 (the solution, the untouched student
version, plausible wrong answers from tests/wrong_answers/, one student who submitted
nothing) and checks the report against the gradebook and against what the class
implies.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.api import Gradebook
from PIL import Image
from sqlalchemy.exc import SAWarning

from conftest import ensure_grading_sandbox, is_test_cell, nbgrader_meta, read, solution_path, student_path, tool_env
from grade_report import (NO_SUBMISSION, NOT_GRADED, cell_failure, failing_line, failure_label, inline_code,
                          main, question_stats, top_messages)
from test_course_commands import course_py
from test_grading import Course, edited, exercises, grades, nbgrader, submit
from test_wrong_answers import wrong_answers

AID = "00_start_here"


def traceback(line: int, code: str, ename: str, evalue: str) -> list[str]:
    """A test cell's traceback as IPython colours it in an autograded notebook."""
    return ["\x1b[31m---------------------------------------------------------------------------\x1b[39m",
            f"\x1b[31m{ename}\x1b[39m                            Traceback (most recent call last)",
            f"\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[6]\x1b[39m\x1b[32m, line {line}\x1b[39m\n"
            f"\x1b[32m      1\x1b[39m x = 1\n\x1b[32m----> \x1b[39m\x1b[32m{line}\x1b[39m {code}\n",
            "\x1b[36mCell\x1b[39m In[5], line 9, in f(x)\n\x1b[32m----> \x1b[39m\x1b[32m9\x1b[39m     raise X\n",
            f"\x1b[31m{ename}\x1b[39m: {evalue}"]


# ---------------------------------------------------------------- pure parts

def test_the_failing_line_is_the_test_cells_own_not_a_deeper_frame():
    assert failing_line(traceback(4, "assert f(2) == 4", "AssertionError", "")) == 4
    old_ipython = ["----", "AssertionError  Traceback",
                   "<ipython-input-6-abc> in <module>\n      2 x\n----> 3 assert x\n"]
    assert failing_line(old_ipython) == 3
    assert failing_line(["AssertionError: no frames"]) is None


TEST = '''k = f(2)
assert k == 4, f"f(2) should be 4, got {k}"
assert f(0) == 0
assert f(1) == 1, (k, f(1))
assert f(3) == 9, "f(3) should be 9"
assert f(5) == 25, "f(5) should be 25"
'''


@pytest.mark.parametrize("ename, evalue, line, label", [
    # a literal message is kept exactly
    ("AssertionError", "f(3) should be 9", 5, "AssertionError: f(3) should be 9"),
    # ... and numbers in it are not rewritten: these are two different checks
    ("AssertionError", "f(5) should be 25", 6, "AssertionError: f(5) should be 25"),
    # a computed message groups by its template, whatever the learner's value
    ("AssertionError", "f(2) should be 4, got 5", 2, "AssertionError: f(2) should be 4, got {k}"),
    ("AssertionError", "f(2) should be 4, got 3.0", 2, "AssertionError: f(2) should be 4, got {k}"),
    ("AssertionError", "(5, 2)", 4, "AssertionError: {(k, f(1))}"),
    # an assert without a message is named by its condition
    ("AssertionError", "", 3, "AssertionError (no message): assert f(0) == 0"),
    # an assertion raised inside the learner's code does not fit the template: kept exactly
    ("AssertionError", "my own check", 2, "AssertionError: my own check"),
    ("AssertionError", "boom", None, "AssertionError: boom"),
    # other errors come from the learner's code: kept exactly
    ("NotImplementedError", "", 1, "NotImplementedError"),
    ("TypeError", "unsupported operand type(s)", 2, "TypeError: unsupported operand type(s)"),
])
def test_failure_messages_group_by_assertion(ename, evalue, line, label):
    assert failure_label(TEST, ename, evalue, line) == label


def test_top_messages_counts_the_three_most_frequent():
    labels = ["c"] * 2 + ["a"] * 3 + ["d"] + ["b"] * 2
    assert top_messages(labels) == [("a", 3), ("b", 2), ("c", 2)]  # ties alphabetically, d cut
    assert top_messages([]) == []


def test_messages_stay_one_line_of_inline_code_in_the_report():
    assert inline_code("AssertionError: got\n  2") == "`AssertionError: got 2`"
    assert inline_code("NameError: name `f` is not defined") == "`` NameError: name `f` is not defined ``"


def test_question_statistics():
    s = question_stats([0, 0.5, 1, 1], max_score=1)
    assert s == {"n": 4, "mean": 0.625, "median": 0.75, "full": 0.5, "partial": 0.25, "zero": 0.25}
    assert question_stats([], max_score=3)["n"] == 0 and question_stats([], max_score=3)["mean"] is None


def test_a_failing_cell_gives_its_group_label_and_its_exact_error():
    cell = new_code_cell(TEST, outputs=[new_output("error", ename="AssertionError", evalue="f(2) should be 4, got 7",
                                                   traceback=traceback(2, "assert k == 4", "AssertionError", "x"))])
    assert cell_failure(cell) == ("AssertionError: f(2) should be 4, got {k}",
                                  "AssertionError: f(2) should be 4, got 7")
    # nbgrader also fails a test cell that writes to stderr without raising
    cell.outputs = [new_output("stream", name="stdout", text="fine\n"),
                    new_output("stream", name="stderr", text="oops: a message\nmore\n")]
    assert cell_failure(cell) == ("output on stderr: oops: a message",) * 2
    cell.outputs = []
    assert cell_failure(cell) == ("failed without an error message", "")


CAPSTONE_LIKE = ('gap = {150: 0.031, 450: float("inf")}\nfor b in (150, 450):\n'
                 '    assert gap[b] <= 0.04, f"budget {b}: mean gap {gap[b]:.3f} above {[0.04, 0.1]}"\n')


@pytest.mark.parametrize("evalue, numbers", [
    ("budget 150: mean gap 0.050 above [0.04, 0.1]", (("{b}", 150.0), ("{gap[b]}", 0.05))),
    ("budget 450: mean gap inf above [0.04, 0.1]", (("{b}", 450.0), ("{gap[b]}", float("inf")))),
    ("something else entirely", ()),  # not this assert's message: no numbers taken from it
])
def test_the_numbers_a_computed_message_filled_in(evalue, numbers):
    """A field that printed several numbers ({[0.04, 0.1]}) is left out; one number per field is kept."""
    from grade_report import message_numbers

    assert message_numbers(CAPSTONE_LIKE, "AssertionError", evalue, 3) == numbers
    assert message_numbers(CAPSTONE_LIKE, "ValueError", evalue, 3) == ()


@pytest.mark.parametrize("ename", ["CellTimeoutError", "KeyboardInterrupt"])
def test_a_timed_out_cell_says_so_with_the_limit(ename):
    cell = new_code_cell(TEST, outputs=[new_output("error", ename=ename, evalue="", traceback=[ename])])
    assert cell_failure(cell, timeout=60) == ("timed out after 60 s",) * 2
    # a KeyboardInterrupt the learner raised at once is no timeout
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T10:00:00Z",
                                  "shell.execute_reply": "2026-01-01T10:00:01Z"}
    assert cell_failure(cell, timeout=60)[0] == ("timed out after 60 s" if ename == "CellTimeoutError" else ename)


# ---------------------------------------------------------------- the report on a hand-made gradebook

HAND_TEST = 'k = f(2)\nassert k == 4, f"f(2) should be 4, got {k}"\nassert f(0) == 0\n'
# student: (auto score of t1, its error (ename, evalue, line) or None, hand grade of q1: None = not yet)
HAND_CLASS = {"ada": (1, None, 3), "bob": (0, ("AssertionError", "f(2) should be 4, got 5", 2), 1.5),
              "cy": (0, ("AssertionError", "f(2) should be 4, got 3", 2), None),
              "dee": (0, ("AssertionError", "", 3), 0),
              "fay": (0, ("NotImplementedError", "", 1), 0),  # left the exercise as its stub
              "gus": (0, ("CellTimeoutError", "", 1), 3)}  # an endless loop, stopped
UNTOUCHED = "fay"
ABSENT = "eve"
SUSPECT = "bob"


def autograded_notebook(error: tuple | None):
    """What nbgrader writes to autograded/: the exercise, the test cell with its error output, if any."""
    stub = bool(error) and error[0] == "NotImplementedError"
    answer_code = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()" if stub else "def f(x):\n    return x + 2"
    exercise = new_code_cell(answer_code, metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "f"}})
    test = new_code_cell(HAND_TEST, metadata={"nbgrader": {"grade": True, "grade_id": "t1", "points": 1}})
    if error:
        ename, evalue, line = error
        code = HAND_TEST.splitlines()[line - 1]
        test.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=traceback(line, code, ename, evalue))]
    answer = new_markdown_cell("because", metadata={"nbgrader": {"grade": True, "solution": True, "grade_id": "q1"}})
    return new_notebook(cells=[exercise, test, answer])  # not in alphabetical order: the report keeps this one


OTHER = "01_why_lr_matters"  # registered in the hand-made gradebook, never submitted


def hand_made_course(root: Path) -> Path:
    """A gradebook filled through nbgrader's API and the autograded notebooks to go with it."""
    root.mkdir(parents=True)
    warnings.simplefilter("ignore", SAWarning)  # nbgrader's harmless ones, as in nbgrader_config.py
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.add_assignment(OTHER)
        gb.add_assignment(AID)
        gb.add_notebook(AID, AID)
        gb.add_grade_cell("t1", AID, AID, max_score=1, cell_type="code")
        gb.add_grade_cell("q1", AID, AID, max_score=3, cell_type="markdown")
        gb.add_solution_cell("q1", AID, AID)
        gb.add_student(ABSENT)
        for student, (auto, error, hand) in HAND_CLASS.items():
            gb.add_student(student)
            gb.add_submission(AID, student)
            test = gb.find_grade("t1", AID, AID, student)
            test.auto_score, test.needs_manual_grade = auto, False
            answer = gb.find_grade("q1", AID, AID, student)
            answer.auto_score, answer.manual_score, answer.needs_manual_grade = None, hand, hand is None
            gb.db.commit()
            folder = root / "autograded" / student / AID
            folder.mkdir(parents=True)
            nbformat.write(autograded_notebook(error), folder / f"{AID}.ipynb")
            if student == SUSPECT:  # what bob submitted: an extra cell that reads the cell history
                sent = autograded_notebook(error)
                sent.cells.append(new_code_cell("x = 1\nprint(In[-1])"))
                (root / "submitted" / student / AID).mkdir(parents=True)
                nbformat.write(sent, root / "submitted" / student / AID / f"{AID}.ipynb")
    return root


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory) -> Path:
    """The hand-made course, in a folder of its own (a new gradebook runs nbgrader's `alembic`)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", tool_env()["PATH"])
        return hand_made_course(tmp_path_factory.mktemp("hand-made") / "course")


def read_csv(path: Path) -> dict[tuple[str, str], dict]:
    with path.open(encoding="utf-8") as f:
        return {(r["student"], r["grade_id"]): r for r in csv.DictReader(f)}


def test_report_on_a_hand_made_gradebook(hand_made, tmp_path, capsys):
    assert main(["00", "--course", str(hand_made), "--out", str(tmp_path)]) == 0, capsys.readouterr()
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "7 students in the gradebook, 6 submitted." in report
    assert "1 submitted nothing (eve)" in report
    # q1: graded by hand for ada (3), bob (1.5), dee (0), fay (0), gus (3); cy's is not graded yet
    assert "| q1 | by hand | 3 | 5 | 1.5 | 1.5 | 40% | 20% | 40% | – | – |" in report
    # t1: fay's untouched exercise is not counted with the wrong answers
    assert "| t1 | test | 1 | 6 | 0.17 | 0 | 17% | 0% | 83% | 67% (4 of 6) | 17% (1 of 6) |" in report
    assert report.index("| t1 |") < report.index("| q1 |"), "questions in notebook order"
    section = report.split("### t1")[1].split("\n## ")[0]
    assert "Failing: 5 of 6 students (83%): 4 wrong, 1 not attempted" in section
    assert "1. 2 × `AssertionError: f(2) should be 4, got {k}`" in section
    # the computed message's numbers: bob got 5, cy 3
    assert "   * `{k}` over 2: min 3, median 4, max 5" in section
    assert "`AssertionError (no message): assert f(0) == 0`" in section
    assert "NotImplementedError" not in section, "an untouched exercise is not a failure message"
    assert "1 × `timed out after" in section
    timeouts = report.split("## Timeouts", 1)[1].split("\n## ")[0]
    assert "* **gus**: t1" in timeouts and "ada" not in timeouts
    # totals: t1 (1 point) + q1 (3 points); cy's pending hand grade counts 0 until given
    totals_part = report.split("## Totals", 1)[1].split("\n## ")[0]
    assert "6 students: mean 1.42, median 0.75, min 0, max 4 of 4 points; 1 left at least one exercise" in totals_part
    assert "![distribution of totals](totals.png)" in totals_part
    students = report.split("## Students", 1)[1]
    assert "| fay | 0 / 4 | 1 | 0 | – | – |" in students and "| gus | 3 / 4 | 0 | 1 | t1 | – |" in students
    assert "| cy | 0 / 4 | 0 | 1 | – | 1 |" in students and "| ada | 4 / 4 | 0 | 0 | – | – |" in students
    assert students.index("| ada |") > students.index("| gus |"), "lowest totals first"
    with (tmp_path / "totals.csv").open(encoding="utf-8") as f:
        by_student = {r["student"]: r for r in csv.DictReader(f)}
    assert set(by_student) == set(HAND_CLASS)
    assert by_student["bob"]["total"] == "1.5" and by_student["fay"]["not_attempted"] == "1"
    assert Image.open(tmp_path / "totals.png").format == "PNG"
    rows = read_csv(tmp_path / "scores.csv")
    assert rows[UNTOUCHED, "t1"]["failed"] == "1" and rows[UNTOUCHED, "t1"]["not_attempted"] == "1"
    assert rows["bob", "t1"]["not_attempted"] == "0" and rows["ada", "t1"]["not_attempted"] == "0"
    assert len(rows) == 2 * (len(HAND_CLASS) + 1)
    assert rows["bob", "t1"]["failed"] == "1"
    assert rows["bob", "t1"]["error"] == "AssertionError: f(2) should be 4, got 5"
    assert rows["ada", "t1"]["failed"] == "0" and rows["ada", "t1"]["message"] == ""
    assert rows["bob", "q1"]["score"] == "1.5" and rows["bob", "q1"]["failed"] == ""
    assert rows["cy", "q1"]["score"] == "" and rows["cy", "q1"]["message"] == NOT_GRADED
    assert all(rows[ABSENT, q]["score"] == "" and rows[ABSENT, q]["message"] == NO_SUBMISSION for q in ("t1", "q1"))
    assert Image.open(tmp_path / "scores.png").format == "PNG"


def test_suspicious_submissions_are_listed_with_cell_line_and_reason(hand_made, tmp_path, capsys):
    assert main(["00", "--course", str(hand_made), "--out", str(tmp_path)]) == 0
    assert f"1 suspicious submission(s), listed in report.md: {SUSPECT}" in capsys.readouterr().out
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    section = report.split("## Suspicious submissions", 1)[1].split("## Questions", 1)[0]
    assert f"* **{SUSPECT}**" in section and "cell 4, line 2: reads IPython's history of cells (In)" in section
    assert "not proof" in section
    rows = read_csv(tmp_path / "scores.csv")
    assert "cell 4, line 2" in rows[SUSPECT, "t1"]["suspicious"] and "cell 4" in rows[SUSPECT, "q1"]["suspicious"]
    assert all(r["suspicious"] == "" for (student, _), r in rows.items() if student != SUSPECT)


# ---------------------------------------------------------------- the capstone scorer's records

PASSED = {"quick": True, "short_runs": True, "long_runs": True, "decays": True, "short_share": 1.0,
          "long_share": 1.0}
# student: (auto score of the test cell, the scorer's records kept in the autograded notebook, or None)
SCORED = {"ann": (1, [{"tests": PASSED, "gaps": {"short": 0.021, "long": 0.004}}]),
          "ben": (0, [{"tests": {**PASSED, "decays": False}, "gaps": {"short": 0.31, "long": 0.12}}]),
          "cat": (1, None),  # full marks, the scorer never asked: grade() replaced in the kernel
          "dan": (1, [{"tests": {**PASSED, "long_share": 0.4}, "gaps": {"short": 0.05, "long": 0.4}}]),
          "eli": (0, [{"tests": None, "gaps": {}}, {"tests": PASSED, "gaps": {"short": 0.0, "long": 0.0}}])}


def scored_course(root: Path) -> Path:
    root.mkdir(parents=True)
    warnings.simplefilter("ignore", SAWarning)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.add_assignment(AID)
        gb.add_notebook(AID, AID)
        gb.add_grade_cell("t1", AID, AID, max_score=1, cell_type="code")
        for student, (auto, records) in SCORED.items():
            gb.add_student(student)
            gb.add_submission(AID, student)
            grade = gb.find_grade("t1", AID, AID, student)
            grade.auto_score, grade.needs_manual_grade = auto, False
            gb.db.commit()
            nb = autograded_notebook(None if auto else ("AssertionError", "", 2))
            nb.cells = nb.cells[:2]
            if records is not None:
                nb.metadata["lr_course"] = {"capstone_scorer": records}
            folder = root / "autograded" / student / AID
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{AID}.ipynb")
    return root


def test_the_capstone_scorers_record_gives_gaps_and_flags_grades_it_did_not_give(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", tool_env()["PATH"])
    course = scored_course(tmp_path / "course")
    assert main(["00", "--course", str(course), "--out", str(tmp_path / "out")]) == 0
    assert "3 suspicious submission(s), listed in report.md: cat, dan, eli" in capsys.readouterr().out
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    section = report.split("## The capstone's scorer", 1)[1].split("\n## ")[0]
    assert "* short budget: 4 recipes scored, gap min 0.000, median 0.036, max 0.310" in section
    assert "* long budget: 4 recipes scored, gap min 0.000, median 0.062, max 0.400" in section
    assert "| ann | 0.021 | 0.004 | 1 |" in section and "| cat | – | – | 0 |" in section
    assert section.index("| ann |") < section.index("| ben |") < section.index("| dan |"), "best long gap first"
    flagged = report.split("## Suspicious submissions", 1)[1].split("\n## ")[0]
    assert "**cat**" in flagged and "the scorer was never asked" in flagged
    assert "**dan**" in flagged and "the scorer failed the recipe" in flagged
    assert "**eli**" in flagged and "asked 2 times" in flagged
    assert "**ann**" not in flagged and "**ben**" not in flagged


def test_a_submitted_notebook_cannot_bring_its_own_scorer_record():
    """What the learner's .ipynb carries under the scorer's name is dropped before grading records it."""
    from grading_sandbox import SCORER_METADATA, record_scores
    nb = new_notebook(metadata={"lr_course": {SCORER_METADATA: [{"tests": PASSED}], "other": 1}})
    record_scores(nb, [])
    assert nb.metadata["lr_course"] == {"other": 1}
    nb = new_notebook(metadata={"lr_course": "forged"})
    record_scores(nb, [{"tests": None, "gaps": {}}])
    assert nb.metadata["lr_course"] == {SCORER_METADATA: [{"tests": None, "gaps": {}}]}
    nb = new_notebook(metadata={"lr_course": {SCORER_METADATA: [{"tests": PASSED}]}})
    record_scores(nb, [])
    assert "lr_course" not in nb.metadata


def test_errors_exit_2_with_one_line(hand_made, tmp_path, capsys):
    def error(*args: str) -> str:
        assert main(list(args)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err

    assert f"no gradebook at {tmp_path / 'gradebook.db'}" in error(AID, "--course", str(tmp_path))
    assert not (tmp_path / "gradebook.db").exists(), "no empty gradebook left behind"
    assert f"unknown assignment '07'; the gradebook has: {AID}, {OTHER}" in error("07", "--course", str(hand_made))
    assert "unknown assignment '_why'" in error("_why", "--course", str(hand_made))  # not even the start of one
    assert f"no autograded submissions of {OTHER}" in error("01", "--course", str(hand_made))
    assert not (hand_made / "reports").exists()


def test_course_py_runs_the_report_with_folders_relative_to_the_caller(hand_made):
    done = course_py("report", "0", "--course", "course", "--out=here", cwd=hand_made.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (hand_made.parent / "here" / "report.md").exists() and (hand_made.parent / "here" / "scores.csv").exists()
    assert done.stderr == ""


# ---------------------------------------------------------------- a synthetic class, autograded

def assertion_message(answer: str, test_source: str) -> str:
    """The error a wrong answer makes the test cell raise, found by running both here."""
    scope: dict = {}
    exec(answer, scope)  # noqa: S102 (the course's own answers and tests)
    try:
        exec(test_source, scope)  # noqa: S102
    except AssertionError as e:
        return f"AssertionError: {e}"
    raise AssertionError("this wrong answer passes the test cell")


class SyntheticClass:
    """Notebook 00 submitted by a small class and autograded; then `course.py report 00`."""

    def __init__(self, base: Path):
        (exercise,) = exercises(AID)
        (self.test_id,) = exercise.test_ids
        mistakes = list(wrong_answers(AID)[exercise.id].values())
        self.test_source = next(c.source for c in read(solution_path(AID)).cells
                                if is_test_cell(c) and nbgrader_meta(c)["grade_id"] == self.test_id)
        # Two learners make the same mistake: its message must come out on top.
        self.answers = {"too-many": mistakes[0], "floor-1": mistakes[1], "floor-2": mistakes[1]}
        notebooks = {"solution": read(solution_path(AID)), "untouched": read(student_path(AID)),
                     **{s: edited(AID, {exercise.id: code}) for s, code in self.answers.items()}}
        self.root = Course(base / "course").root
        nbgrader(self.root, "generate_assignment", AID, "--force")
        nbgrader(self.root, "db", "student", "add", ABSENT)  # on the class list, submitted nothing
        for student, nb in notebooks.items():
            submit(self.root, student, AID, nb)
        nbgrader(self.root, "autograde", AID)
        self.students = list(notebooks)
        self.out = base / "report"
        self.done = course_py("report", "00", "--course", str(self.root), "--out", str(self.out))
        self.report = (self.out / "report.md").read_text(encoding="utf-8") if self.done.returncode == 0 else ""


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> SyntheticClass:
    ensure_grading_sandbox()  # autograde runs every submission in it
    return SyntheticClass(tmp_path_factory.mktemp("report"))


@pytest.mark.slow
def test_csv_scores_are_the_gradebooks(synthetic):
    assert synthetic.done.returncode == 0, synthetic.done.stdout + synthetic.done.stderr
    assert synthetic.done.stderr == ""
    rows = read_csv(synthetic.out / "scores.csv")
    gradebook = grades(synthetic.root)
    submitted = {(s, gid) for (s, aid, gid) in gradebook if aid == AID}
    assert submitted == {(s, synthetic.test_id) for s in synthetic.students}
    assert set(rows) == submitted | {(ABSENT, synthetic.test_id)}
    for student, gid in submitted:
        auto, manual, top, _ = gradebook[student, AID, gid]
        score = manual if manual is not None else auto  # nbgrader's rule: a hand grade overrides
        assert (float(rows[student, gid]["score"]), float(rows[student, gid]["max_score"])) == (score, top)
    assert rows["solution", synthetic.test_id]["score"] == "1.0", "the solution has full marks"
    absent = rows[ABSENT, synthetic.test_id]
    assert absent["score"] == "" and absent["failed"] == "" and absent["message"] == NO_SUBMISSION


@pytest.mark.slow
def test_failing_shares_are_what_the_class_implies(synthetic):
    rows = read_csv(synthetic.out / "scores.csv")
    failed = {s for (s, _), r in rows.items() if r["failed"] == "1"}
    assert failed == set(synthetic.students) - {"solution"}  # every answer but the solution
    n, k = len(synthetic.students), len(failed)  # 5 submitted, 4 fail; the absent student is not counted
    assert f"| {synthetic.test_id} | test | 1 | {n} |" in synthetic.report
    # the untouched notebook is counted apart from the 3 wrong answers
    assert f"| {100 * (k - 1) / n:.0f}% ({k - 1} of {n}) | {100 / n:.0f}% (1 of {n}) |" in synthetic.report
    assert f"Failing: {k} of {n} students ({100 * k / n:.0f}%): {k - 1} wrong, 1 not attempted" in synthetic.report
    assert rows["untouched", synthetic.test_id]["not_attempted"] == "1"
    assert {s for (s, _), r in rows.items() if r["not_attempted"] == "1"} == {"untouched"}
    assert f"1 submitted nothing ({ABSENT})" in synthetic.report


@pytest.mark.slow
def test_top_message_is_the_one_the_common_mistake_triggers(synthetic):
    floor = assertion_message(synthetic.answers["floor-1"], synthetic.test_source)
    too_many = assertion_message(synthetic.answers["too-many"], synthetic.test_source)
    assert floor != too_many
    section = synthetic.report.split(f"### {synthetic.test_id}")[1]
    items = [line for line in section.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    assert items[0] == f"1. 2 × `{floor}`", section
    # one learner each; equal counts are listed alphabetically; the untouched notebook is no attempt
    assert items[1:] == [f"2. 1 × `{too_many}`"], section
    rows = read_csv(synthetic.out / "scores.csv")
    assert rows["floor-2", synthetic.test_id]["message"] == floor


@pytest.mark.slow
def test_the_plot_is_a_valid_png(synthetic):
    path = synthetic.out / "scores.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= 100
    assert "![score distribution per question](scores.png)" in synthetic.report


@pytest.mark.slow
def test_an_unknown_assignment_of_a_graded_course_exits_2(synthetic):
    done = course_py("report", "99", "--course", str(synthetic.root))
    assert done.returncode == 2 and f"unknown assignment '99'; the gradebook has: {AID}" in done.stderr
