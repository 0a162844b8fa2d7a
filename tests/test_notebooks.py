"""Structure of the notebooks: generated student versions, nbgrader metadata, outputs.

The notebooks themselves are executed by nbval (``pytest --nbval-lax solutions``)
and graded end to end in ``test_grading.py``.
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import ASSIGNMENTS, ROOT, is_test_cell, nbgrader_meta, read, solution_path, student_path
from generate_notebooks import generate

SECRET_REGIONS = [("### BEGIN SOLUTION", "### END SOLUTION"),
                  ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")]
MARKERS = ["BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "BEGIN MARK SCHEME"]
COLAB = "https://colab.research.google.com/github/lr-course/learning-rate-strategies/blob/main/"
MAX_CELL_LINES = 45


def _split_secret(source: str) -> tuple[list[str], list[str]]:
    """Lines of ``source`` inside and outside the solution / hidden-test regions."""
    inside, outside, depth = [], [], None
    for line in source.splitlines():
        stripped = line.strip()
        begin = [end for start, end in SECRET_REGIONS if stripped.startswith(start)]
        if begin:
            depth = begin[0]
        elif depth and stripped.startswith(depth):
            depth = None
        elif depth:
            inside.append(stripped)
        else:
            outside.append(stripped)
    return inside, outside


def test_there_are_notebooks():
    assert ASSIGNMENTS[:2] == ["00_start_here", "01_why_lr_matters"]


def test_student_notebooks_are_exactly_what_the_generator_produces(tmp_path):
    generated = generate(tmp_path / "notebooks")
    assert sorted(p.parent.name for p in generated) == ASSIGNMENTS
    in_repo = sorted(p.relative_to(ROOT / "notebooks") for p in (ROOT / "notebooks").rglob("*")
                     if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    assert in_repo == sorted(p.relative_to(tmp_path / "notebooks") for p in (tmp_path / "notebooks").rglob("*")
                             if p.is_file())
    for path in generated:
        fresh = json.loads(path.read_text())
        stored = json.loads(student_path(path.stem).read_text())
        assert stored == fresh, f"{path.stem}: run `python3 course.py generate`"


def test_nothing_hidden_leaks_into_student_notebooks(assignment):
    solution, student = read(solution_path(assignment)), read(student_path(assignment))
    secret, visible = set(), set()
    for cell in solution.cells:
        if cell.cell_type == "markdown" and nbgrader_meta(cell).get("solution"):
            secret.update(l.strip() for l in cell.source.splitlines())  # model answers
            continue
        inside, outside = _split_secret(cell.source)
        secret.update(inside)
        visible.update(outside)
    secret = {line for line in secret - visible if len(line) > 3 and not line.startswith("#")}
    assert secret, "a solution notebook should hold solutions"
    text = "\n".join(cell.source for cell in student.cells)
    student_lines = {line.strip() for line in text.splitlines()}
    assert not secret & student_lines
    for marker in MARKERS:
        assert marker not in text


def test_graded_cells_have_unique_ids_and_points(assignment):
    cells = [c for c in read(solution_path(assignment)).cells if nbgrader_meta(c)]
    ids = [nbgrader_meta(c).get("grade_id") for c in cells]
    assert all(ids) and len(ids) == len(set(ids)), ids
    for cell in cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade"):
            assert meta.get("points", 0) > 0, meta["grade_id"]
    # Every exercise has a solution cell and, after it, a test cell with visible and hidden tests.
    tests = [c for c in cells if is_test_cell(c)]
    assert tests, "every notebook has at least one graded exercise"
    for cell in tests:
        inside, outside = _split_secret(cell.source)
        assert any(l.startswith("assert") or "assert" in l for l in outside), nbgrader_meta(cell)["grade_id"]
        assert inside, f"{nbgrader_meta(cell)['grade_id']} has no hidden tests"
    for cell in cells:
        if nbgrader_meta(cell).get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source, nbgrader_meta(cell)["grade_id"]


def test_student_notebooks_carry_no_outputs(assignment):
    for cell in read(student_path(assignment)).cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


def test_solution_outputs_come_from_one_fresh_run_without_errors(assignment):
    code = [c for c in read(solution_path(assignment)).cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        "run `python3 course.py execute` to store fresh outputs"
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]


def test_demo_outputs_have_a_static_fallback(assignment):
    for cell in read(solution_path(assignment)).cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                assert "image/png" in data or "text/html" in data, cell.source[:80]


def test_first_cells_are_badge_and_setup(assignment):
    cells = read(solution_path(assignment)).cells
    assert cells[0].cell_type == "markdown"
    assert f"{COLAB}notebooks/{assignment}/{assignment}.ipynb" in cells[0].source
    first_code = next(c for c in cells if c.cell_type == "code")
    assert '"google.colab" in sys.modules' in first_code.source
    assert "helpers.setup(" in first_code.source


# What a notebook needs beyond the course's package and schedulefree, and Colab lacks
# (installed with --no-deps too; mup pinned, since it comes from requirements-no-deps.txt).
COLAB_EXTRAS = {"09_tuning_and_transfer": ["mup==1.0.0", "prodigyopt==1.1.2", "dadaptation==3.2",
                                          "dog-optimizer==1.0.3"]}


def test_colab_setup_installs_only_what_colab_lacks(assignment, monkeypatch):
    """On Colab the set-up cell pip-installs `helpers` and `schedulefree` without their
    dependencies, so Colab's own torch (with its GPU) and ipywidgets 7.7 stay as they are."""
    import subprocess
    import sys
    import types

    first_code = next(c for c in read(solution_path(assignment)).cells if c.cell_type == "code")
    install_part = first_code.source.split("import helpers")[0]
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(install_part, {})
    assert calls == [], "outside Colab the set-up cell installs nothing"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(install_part, {})
    (cmd, kwargs), = calls
    assert cmd[:5] == [sys.executable, "-m", "pip", "install", "-q"] and kwargs == {"check": True}
    assert "--no-deps" in cmd
    packages = [a for a in cmd[5:] if not a.startswith("-")]
    assert sorted(packages) == sorted(["schedulefree", *COLAB_EXTRAS.get(assignment, []),
                                       "git+https://github.com/lr-course/learning-rate-strategies"])


def test_cells_are_short_enough_to_read_at_once(assignment):
    for cell in read(solution_path(assignment)).cells:
        if cell.cell_type == "code":
            assert len(cell.source.splitlines()) <= MAX_CELL_LINES, cell.source[:80]


def test_relative_links_point_to_existing_files(assignment):
    folder = solution_path(assignment).parent
    for cell in read(solution_path(assignment)).cells:
        if cell.cell_type != "markdown":
            continue
        for target in re.findall(r"\]\((?!https?:|#)([^)\s]+)\)", cell.source):
            path = target.split("#")[0]
            assert (ROOT / "notebooks" / assignment / path).resolve().exists() or \
                (folder / path).resolve().exists(), f"{assignment}: broken link {target}"


@pytest.mark.parametrize("aid", [a for a in ASSIGNMENTS if not a.startswith("00")])
def test_course_notebooks_meet_the_bar(aid):
    """Objectives, summary, graded exercises, quick checks, a demo, a hand-graded question."""
    cells = read(solution_path(aid)).cells
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "Learning objectives" in markdown and "## Summary" in markdown
    assert "$$" in markdown, "real formulas"
    assert sum(is_test_cell(c) for c in cells) >= 2
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert code.count("quick_check(") >= 2
    answers = [c for c in cells if c.cell_type == "markdown" and nbgrader_meta(c).get("grade")]
    assert answers and all("YOUR ANSWER HERE" not in c.source and len(c.source) > 200 for c in answers), \
        "a manually graded question with a model answer"
    demos = [o for c in cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {}) and "image/png" in o["data"]]
    assert demos, "an interactive demo"
