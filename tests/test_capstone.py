"""The capstone's grading round trip (notebook 08): what each kind of recipe scores.

The solution notebook runs once in a kernel, as the autograder runs it; then each recipe
below replaces the solution cell and every test cell of the exercise (visible and hidden)
runs, as nbgrader would grade it. The course's reference recipe gets full marks; a
constant learning rate far too low gets at most the points for following the rules; a
recipe that breaks the budget, and the untouched stub, get nothing. A failing test's
message (what the learner's feedback shows) names no hidden budget, seed, module,
reference peak or threshold.
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
        errors = {gid: kernel.run(test) for gid, test in zip(ids, tests)}
        run.messages[code] = {gid: e for gid, e in errors.items() if e is not None}
        return {gid: (p if errors[gid] is None else 0.0) for gid, p in zip(ids, points)}

    run.solution, run.messages = solution, {}
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


# What the hidden tests hold and the feedback must not: budgets, seeds, held-out modules,
# the reference peak and the score thresholds.
HIDDEN = ["150", "450", "21", "57", "2718", "3141", "1618", "csv", "gettext", "pprint", "0.015", "0.10", "0.04"]


def test_the_hidden_parameters_are_the_ones_listed():
    """The list above is the hidden tests' own (if they change, the leak test below must follow)."""
    hidden = "".join(t.split("### BEGIN HIDDEN TESTS", 1)[1] for t in exercises(AID)[GID][1] if "HIDDEN" in t)
    assert [h for h in HIDDEN if h not in hidden] == []


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["a constant learning rate far too low (AdamW at 1e-4, no schedule)",
                                     "tuned to the notebook's budget: OneCycleLR with total_steps=200",
                                     "ReduceLROnPlateau (needs a metric the grader does not pass)",
                                     "SGD at a learning rate far too high (diverges)"])
def test_failure_messages_name_no_hidden_parameter(grade, mistake):
    code = wrong_answers(AID)[GID][mistake]
    if code not in grade.messages:
        grade(code)
    messages = grade.messages[code]
    assert messages, f"'{mistake}' should fail some test"
    leaks = {gid: [h for h in HIDDEN if h in message] for gid, message in messages.items()}
    assert not any(leaks.values()), f"failure messages name hidden parameters: {leaks} in {messages}"
