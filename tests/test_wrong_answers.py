"""Plausible wrong answers lose points, for every autograded exercise of every notebook.

``tests/wrong_answers/n<id>.py`` lists, per exercise (the grade id of its solution
cell), at least two wrong implementations a learner could plausibly write. The
solution notebook runs once in a kernel, as an autograder would run it; then each
wrong answer is executed in place of the solution and that exercise's test cells
(visible and hidden tests) are run: at least one must fail. The solution is put back
after each, and must pass the same test cells again at the end (so a failure is the
wrong answer's, not a side effect of running the notebook). ``test_grading.py``
shows that nbgrader scores these answers below full marks too.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from conftest import ASSIGNMENTS, ROOT, is_test_cell, nbgrader_meta, read, solution_path

WRONG_DIR = ROOT / "tests" / "wrong_answers"


def wrong_answers(aid: str) -> dict[str, dict[str, str]]:
    """{solution grade id: {mistake: code}} for notebook ``aid`` (empty if none listed)."""
    path = WRONG_DIR / f"n{aid.replace('-', '_')}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG


def exercises(aid: str) -> dict[str, tuple[str, list[str]]]:
    """{solution grade id: (solution source, [source of each test cell that follows it])}.

    A solution cell no test cell follows (the learner's own experiment, judged through a
    question graded by hand) is not an exercise here: it has no tests to fail."""
    found, current = {}, None
    for cell in read(solution_path(aid)).cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            current = meta["grade_id"]
            found[current] = (cell.source, [])
        elif is_test_cell(cell) and current is not None:
            found[current][1].append(cell.source)
    return {gid: entry for gid, entry in found.items() if entry[1]}


GRADED = [aid for aid in ASSIGNMENTS if exercises(aid)]


@pytest.mark.parametrize("aid", GRADED)
def test_every_exercise_lists_two_plausible_wrong_answers(aid):
    listed, solutions = wrong_answers(aid), exercises(aid)
    assert set(listed) == set(solutions), \
        f"{aid}: wrong answers listed for {sorted(listed)}, exercises are {sorted(solutions)}"
    for gid, mistakes in listed.items():
        assert len(mistakes) >= 2, f"{aid} {gid}: list at least two plausible wrong answers"
        for name, code in mistakes.items():
            assert code.strip() and code.strip() != solutions[gid][0].strip(), (gid, name)
            assert "NotImplementedError" not in code, f"{gid} {name}: a stub is not a plausible answer"


class Kernel:
    """A kernel in the notebook's folder; ``run`` returns None or the error it raised."""

    def __init__(self, folder: Path):
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(folder))

    def run(self, code: str, timeout: float = 120) -> str | None:
        results = []

        def keep(msg):
            if msg["msg_type"] == "execute_result":
                results.append(msg["content"]["data"].get("text/plain", ""))
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=keep, allow_stdin=False)
        self.result = results[-1] if results else None  # a test cell's number is nbgrader's partial credit
        content = reply["content"]
        if content["status"] == "ok":
            return None
        return f"{content.get('ename')}: {content.get('evalue', '')}"[:300]

    def points(self, test: str, top: float) -> float:
        """What nbgrader gives test cell ``test`` worth ``top`` points: 0 if it raises, the
        number it ends with (partial credit), else ``top``."""
        if self.run(test) is not None:
            return 0.0
        try:
            return float(self.result) if self.result is not None else top
        except ValueError:
            return top

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.mark.slow
@pytest.mark.parametrize("aid", GRADED)
def test_each_wrong_answer_fails_its_exercise_tests(aid):
    nb = read(solution_path(aid))
    solutions = exercises(aid)
    kernel = Kernel(solution_path(aid).parent)
    try:
        kernel.run("import matplotlib; matplotlib.use('Agg')")
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                error = kernel.run(cell.source)
                assert error is None, f"{aid}: solution cell {index} fails: {error}"
        slipped = []
        for gid, mistakes in wrong_answers(aid).items():
            solution, tests = solutions[gid]
            full = [kernel.points(test, 1.0) for test in tests]  # the solution's points, cell by cell
            for name, code in mistakes.items():
                error = kernel.run(code)
                assert error is None, f"{aid} {gid} '{name}': the wrong answer itself does not run: {error}"
                if all(kernel.points(test, 1.0) >= top for test, top in zip(tests, full)):  # partial credit loses
                    slipped.append(f"{gid}: '{name}' passes every test")
                assert kernel.run(solution) is None
            for test, top in zip(tests, full):  # the solution still passes: the failures above were the wrong answers'
                got = kernel.points(test, 1.0)
                assert got == top, f"{aid} {gid}: the solution fails its tests after the wrong answers: " \
                                   f"{kernel.run(test) or got}"
        assert not slipped, f"{aid}: wrong answers that get full marks:\n" + "\n".join(slipped)
    finally:
        kernel.close()
