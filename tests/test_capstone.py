"""The capstone's grading round trip (notebook 08): what each kind of recipe scores.

The solution notebook runs once in a kernel, as the autograder runs it; then each recipe
below replaces the solution cell and every test cell of the exercise (visible and hidden)
runs, as nbgrader would grade it. The course's reference recipe gets full marks; a
constant learning rate far too low gets at most the points for following the rules; a
recipe that breaks the budget, and the untouched stub, get nothing.
"""
from __future__ import annotations

import pytest

from conftest import nbgrader_meta, read, solution_path
from test_wrong_answers import Kernel, exercises, wrong_answers

AID = "08_capstone"
GID = "cap-recipe"
STUB = '''
def recipe(model, budget_steps):
    """(optimizer, scheduler or None) for a run of exactly `budget_steps` optimizer steps on `model`."""
    # YOUR CODE HERE
    raise NotImplementedError()
'''


def test_cells():
    """The test cells of the capstone, in order, with their points."""
    ids = [nbgrader_meta(c)["grade_id"] for c in read(solution_path(AID)).cells
           if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    assert ids == ["cap-rules", "cap-runs", "cap-short", "cap-long", "cap-tight"]


@pytest.fixture(scope="module")
def grade():
    """grade(code) -> {test cell grade id: passed} with `code` in place of the solution."""
    nb = read(solution_path(AID))
    solution, tests = exercises(AID)[GID]
    points = [float(nbgrader_meta(c)["points"]) for c in nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    kernel = Kernel(solution_path(AID).parent)
    kernel.run("import matplotlib; matplotlib.use('Agg')")
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert kernel.run(cell.source) is None

    def run(code: str) -> dict[str, float]:
        assert kernel.run(code) is None, "the recipe itself does not run"
        return {gid: (p if kernel.run(test) is None else 0.0) for gid, p, test in zip(ids, points, tests)}

    run.solution = solution
    yield run
    kernel.close()


@pytest.mark.slow
def test_reference_recipe_gets_full_marks(grade):
    scores = grade(grade.solution)
    assert all(scores.values()), scores


@pytest.mark.slow
def test_constant_badly_chosen_lr_gets_low_marks(grade):
    scores = grade(wrong_answers(AID)[GID]["a constant learning rate far too low (AdamW at 1e-4, no schedule)"])
    assert not any(scores[g] for g in ("cap-short", "cap-long", "cap-tight")), scores
    assert sum(scores.values()) <= 3, scores


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["pre-trains the model inside recipe (more updates than the budget)",
                                     "an optimizer that makes two updates per step() call",
                                     "a scheduler whose factor steps the optimizer again"])
def test_budget_cheating_recipe_gets_nothing(grade, mistake):
    scores = grade(wrong_answers(AID)[GID][mistake])
    assert sum(scores.values()) == 0, scores


@pytest.mark.slow
def test_untouched_stub_gets_nothing(grade):
    scores = grade(STUB)
    assert sum(scores.values()) == 0, scores
