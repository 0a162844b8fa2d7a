"""``python3 course.py autograde``: a class graded on several workers, or on a Dask cluster,
gets exactly the grades of one-at-a-time ``nbgrader autograde``.

A synthetic class of four on notebook 00 (the solution, a plausible wrong answer, the
untouched student version, and a function that loops forever) is graded three times
from the same released course: by ``nbgrader autograde`` (one at a time), by ``course.py
autograde --workers 2``, and by ``course.py autograde --cluster`` on a real Dask
scheduler with two worker processes on 127.0.0.1. The gradebooks must agree on every
score, the autograded notebooks on every test cell's outcome, and the summary must
name the timed-out cell. The time budget after a first timeout (tools/grading_sandbox.py)
and the replay's refusal to record a notebook that differs from the course's are tested
on their own. The tests that grade are marked slow (about 2 minutes on 2 busy cores).
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.api import Gradebook

from conftest import ROOT, ensure_grading_sandbox, read, solution_path, student_path, tool_env
from test_grading import edited
from test_wrong_answers import exercises, wrong_answers

AID = "00_start_here"
TIMEOUT = 15  # the per-cell limit of the test course (the course's own is 60 s); 6 s was too little for the imports of cell 2 on 2 loaded cores
COPIED = ["course.py", "nbgrader_config.py", "pyproject.toml", "requirements.txt", "requirements-no-deps.txt", "tools"]
LOOPING = '''def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 (a Python int) with lr0 * gamma**k <= target (0 < gamma < 1)."""
    while True:
        pass
'''


def run(course: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), cwd=course, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def released_course(folder: Path) -> Path:
    """A course with notebook 00 released, a per-cell limit of TIMEOUT s and four submissions."""
    folder.mkdir()
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, folder / name)
    shutil.copytree(ROOT / "solutions" / AID, folder / "solutions" / AID)
    (folder / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    with open(folder / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.ExecutePreprocessor.timeout = {TIMEOUT}\n")
    run(folder, "nbgrader", "generate_assignment", AID, "--force", "--log-level=WARN")
    gid, mistakes = next(iter(wrong_answers(AID).items()))
    answers = {g: "\n".join(l for l in src.splitlines() if not l.strip().startswith("### "))
               for g, (src, _) in exercises(AID).items()}
    released = folder / "notebooks" / AID / f"{AID}.ipynb"
    learners = {
        "ada": read(solution_path(AID)),
        "grace": edited(AID, {**answers, gid: next(iter(mistakes.values()))}, student=released),
        "alan": read(released),
        "lin": edited(AID, {**answers, gid: LOOPING}, student=released),
    }
    for student, nb in learners.items():
        (folder / "submitted" / student / AID).mkdir(parents=True)
        nbformat.write(nb, folder / "submitted" / student / AID / f"{AID}.ipynb")
        (folder / "submitted" / student / AID / "timestamp.txt").write_text("2026-03-02 17:04:00 UTC\n")
    return folder


def gradebook(course: Path) -> dict:
    """(student, grade id) -> what the gradebook holds for it."""
    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(AID):
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[sub.student_id, g.name] = (g.auto_score, g.manual_score, g.max_score, g.needs_manual_grade)
                for c in nb.comments:
                    out[sub.student_id, "comment:" + c.name] = c.auto_comment
            out[sub.student_id, "timestamp"] = str(sub.timestamp)
    return out


def outcomes(course: Path) -> dict:
    """(student, cell position) -> the names of the errors in each code cell of the autograded notebook."""
    out = {}
    for path in sorted((course / "autograded").glob(f"*/{AID}/{AID}.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                out[path.parts[-3], i] = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The same released class graded one at a time (nbgrader) and with `course.py autograde`."""
    ensure_grading_sandbox()
    base = tmp_path_factory.mktemp("parallel")
    template = released_course(base / "template")
    courses = {}
    for way in ("one_at_a_time", "workers"):
        courses[way] = Path(shutil.copytree(template, base / way, symlinks=True))
    started = time.monotonic()
    run(courses["one_at_a_time"], "nbgrader", "autograde", AID, "--log-level=WARN")
    seconds = {"one_at_a_time": time.monotonic() - started}
    started = time.monotonic()
    logs = {"workers": run(courses["workers"], sys.executable, "course.py", "autograde", "00", "--workers", "2")}
    seconds["workers"] = time.monotonic() - started
    return {"template": template, "base": base, "courses": courses, "logs": logs, "seconds": seconds}


def check_same_as_one_at_a_time(graded, course: Path, log: str) -> None:
    reference = graded["courses"]["one_at_a_time"]
    expected, got = gradebook(reference), gradebook(course)
    assert got == expected, {k: (expected.get(k), got.get(k)) for k in set(expected) | set(got)
                             if expected.get(k) != got.get(k)}
    assert outcomes(course) == outcomes(reference)
    assert "lin: practice-tests" in log, log  # the summary names the timed-out cell
    assert "submission of 'lin' (00_start_here): cell 'practice-tests' ran past" in log, log


@pytest.mark.slow
def test_local_workers_grade_as_nbgrader_does_one_at_a_time(graded):
    log = graded["logs"]["workers"].stdout
    check_same_as_one_at_a_time(graded, graded["courses"]["workers"], log)
    scores = gradebook(graded["courses"]["workers"])
    assert scores["ada", "practice-tests"][0] == scores["ada", "practice-tests"][2] > 0
    assert scores["grace", "practice-tests"][0] == scores["alan", "practice-tests"][0] == 0
    assert scores["lin", "practice-tests"][0] == 0
    assert "4 of 4 submission(s) graded" in log and "on 2 local worker(s)" in log, log


@pytest.mark.slow
def test_a_second_run_grades_only_what_was_handed_in_again(graded):
    """As nbgrader: a graded submission is left alone unless its timestamp.txt is newer (or --force)."""
    course = graded["courses"]["workers"]
    again = run(course, sys.executable, "course.py", "autograde", AID, "--workers", "2")
    assert "nothing to grade (4 already graded" in again.stdout, again.stdout
    (course / "submitted" / "alan" / AID / "timestamp.txt").write_text("2026-03-09 09:00:00 UTC\n")
    later = run(course, sys.executable, "course.py", "autograde", AID, "--workers", "2")
    assert "1 of 1 submission(s) graded" in later.stdout and "3 already graded" in later.stdout, later.stdout
    assert gradebook(course)["alan", "timestamp"].startswith("2026-03-09 09:00:00")


@pytest.mark.slow
def test_workers_get_no_solution_notebook(graded):
    """What travels to every worker: the configuration, tools/, a gradebook snapshot, the released
    notebook; not the solution notebook."""
    import io
    import os
    import tarfile

    sys.path.insert(0, str(ROOT / "tools"))
    from parallel_autograde import make_bundle, nbgrader_app

    here = os.getcwd()
    try:
        bundle, private = make_bundle(nbgrader_app(graded["template"]), AID)
    finally:
        os.chdir(here)
    names = tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz").getnames()
    assert {"gradebook.db", "nbgrader_config.py", "tools/grading_sandbox.py",
            f"notebooks/{AID}/{AID}.ipynb"} <= set(names), names
    assert not [n for n in names if n.startswith("solutions/") and n.endswith(".ipynb")], names
    assert private is None


@pytest.mark.slow
def test_a_dask_cluster_grades_as_nbgrader_does_one_at_a_time(graded):
    from distributed import LocalCluster

    course = Path(shutil.copytree(graded["template"], graded["base"] / "cluster", symlinks=True))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        done = run(course, sys.executable, "course.py", "autograde", AID, "--cluster", cluster.scheduler_address)
        workers = len(cluster.workers)
    assert workers == 2
    assert "on the Dask cluster at tcp://127.0.0.1:" in done.stdout, done.stdout
    check_same_as_one_at_a_time(graded, course, done.stdout)


def test_workers_must_be_a_positive_count_and_the_assignment_known(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "course.py"), "autograde", AID, "--workers", "0"],
                          capture_output=True, text=True, env=tool_env(), timeout=120)
    assert done.returncode == 2 and "--workers must be between 1 and 64, got 0" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, str(ROOT / "course.py"), "autograde", "no_such", "--course",
                           str(tmp_path)], capture_output=True, text=True, env=tool_env(), timeout=120)
    assert done.returncode == 2 and "has no nbgrader_config.py" in done.stderr, done.stderr


def _looping_notebook(cells: int):
    body = [new_code_cell(f"f()  # test {i}", metadata={"nbgrader": {"grade_id": f"t{i}", "grade": True}})
            for i in range(cells)]
    return new_notebook(cells=[new_code_cell("def f():\n    while True:\n        pass")] + body +
                        [new_code_cell("print('still graded')")])


def test_a_looping_function_costs_about_two_timeouts_not_one_per_test(tmp_path):
    """10 tests call a function that never returns: 4 s for the first, 2 s shared by the rest, then 0.5 s
    each (one timeout per test would be 40 s); every call is reported as a timeout, naming the submission."""
    ensure_grading_sandbox()
    from grading_sandbox import SandboxedExecute

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    ep = SandboxedExecute(timeout=4, after_timeout=2, min_cell_seconds=0.5, kernel_name="python3")
    ep.log.addHandler(handler)
    started = time.monotonic()
    try:
        nb, _ = ep.preprocess(_looping_notebook(10), {"metadata": {"path": str(tmp_path)},
                                                    "nbgrader": {"student": "lin", "assignment": "99_loops"}})
    finally:
        ep.log.removeHandler(handler)
    took = time.monotonic() - started
    assert took < 26, f"grading took {took:.0f} s; one timeout per test would take 40 s"
    for cell in nb.cells[1:11]:
        assert "CellTimeoutError" in [o.get("ename") for o in cell.outputs], cell.source
    assert nb.cells[-1].outputs[0]["text"] == "still graded\n"
    lines = [r.getMessage() for r in records]
    assert "submission of 'lin' (99_loops): cell 't0' ran past its 4 s limit; it is interrupted and scores 0" in lines
    assert sum("ran past" in line and "submission of 'lin' (99_loops)" in line for line in lines) == 10, lines


def test_the_budget_must_be_positive():
    from grading_sandbox import SandboxedExecute

    with pytest.raises(ValueError, match="after_timeout must be > 0 seconds"):
        SandboxedExecute(after_timeout=0)


def test_the_replay_refuses_a_notebook_other_than_the_courses(tmp_path):
    """A worker's notebook whose cells differ from what this course would execute is not recorded."""
    from grading_replay import FAILED, NotGraded, ReplayExecute

    nb = read(student_path(AID))
    other = read(student_path(AID))
    other.cells[3].source += "\n(changed)"
    (tmp_path / "ada").mkdir()
    nbformat.write(other, tmp_path / "ada" / f"{AID}.ipynb")
    resources = {"nbgrader": {"student": "ada", "assignment": AID, "notebook": AID}}
    with pytest.raises(NotGraded, match="first difference at cell 4"):
        ReplayExecute(results=str(tmp_path)).preprocess(nb, resources)
    nbformat.write(nb, tmp_path / "ada" / f"{AID}.ipynb")
    assert ReplayExecute(results=str(tmp_path)).preprocess(nb, resources)[0].cells == nb.cells
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / FAILED).write_text("the sandbox could not start")
    with pytest.raises(NotGraded, match="'bob' .* not graded: the sandbox could not start"):
        ReplayExecute(results=str(tmp_path)).preprocess(nb, {"nbgrader": {**resources["nbgrader"], "student": "bob"}})
