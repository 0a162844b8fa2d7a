"""Split ``nbgrader autograde`` into running a submission and recording its grades.

``python3 course.py autograde`` (tools/parallel_autograde.py) runs submissions on several
workers, and the gradebook must still have one writer. So each worker runs nbgrader's
own autograde on a private copy of the course, in the grading sandbox, and keeps the
notebook exactly as the kernel left it (:class:`KeepExecuted`, right after the execute
step). The parent then runs nbgrader's autograde once more on the real course, with the
execute step replaced by :class:`ReplayExecute`, which takes that notebook instead of
starting a kernel. Every other step (creating the student, the timestamp, restoring
locked cells and hidden tests, the stderr filter, saving the scores, late penalties)
is nbgrader's, in one process, on the real gradebook: the grades are those of a
one-at-a-time ``nbgrader autograde``, as long as the two copies agree on what ran,
which :class:`ReplayExecute` checks cell by cell.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Unicode

EXECUTED = "executed"  # the worker's folder (in its private course) of executed notebooks
FAILED = "not-graded.txt"  # written by the parent next to a result the worker could not produce


class NotGraded(RuntimeError):
    """The worker did not produce an executed notebook: nbgrader records no grade, as it would."""


class KeepExecuted(NbGraderPreprocessor):
    """Write the notebook as the execute step left it to ``folder/<notebook>.ipynb`` (worker side)."""

    folder = Unicode("", help="Folder for the executed notebooks.").tag(config=True)

    def preprocess(self, nb, resources):
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{resources['nbgrader']['notebook']}.ipynb")
        return nb, resources


def _cell_key(cell) -> tuple:
    return cell.cell_type, cell.source, json.dumps(cell.metadata.get("nbgrader", {}), sort_keys=True)


class ReplayExecute(Execute):
    """The execute step, replayed: the notebook a worker executed for this submission (parent side).

    ``results/<student>/<notebook>.ipynb`` must hold the same cells, in the same order and
    with the same source and grading metadata, as the notebook nbgrader is about to
    execute here; otherwise the submission is not graded (NotGraded), rather than graded
    on something else.
    """

    results = Unicode("", help="Folder of executed notebooks, one sub-folder per student.").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        info = resources["nbgrader"]
        folder = Path(self.results) / info["student"]
        path = folder / f"{info['notebook']}.ipynb"
        if not path.exists():
            reason = (folder / FAILED).read_text().strip() if (folder / FAILED).exists() else "no executed notebook"
            raise NotGraded(f"submission of '{info['student']}' ({info['assignment']}) was not graded: {reason}")
        executed = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        ours, theirs = [_cell_key(c) for c in nb.cells], [_cell_key(c) for c in executed.cells]
        if ours != theirs:
            differ = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
            raise NotGraded(f"submission of '{info['student']}' ({info['assignment']}): the worker ran other "
                            f"cells than this course holds (first difference at cell {differ + 1}); was the "
                            "gradebook changed while grading? Grade it again.")
        return executed, resources


def _swap(preprocessors, new):
    swapped = [new if isinstance(p, type) and issubclass(p, Execute) else p for p in preprocessors]
    if new not in swapped:
        raise ValueError("the course's autograde has no execute step to replace")
    return swapped


def _autograde_steps(c) -> list:
    from nbgrader.converters import Autograde

    if "autograde_preprocessors" in c.Autograde:
        return list(c.Autograde.autograde_preprocessors)
    return list(Autograde.class_traits()["autograde_preprocessors"].default())


def keep_executed(c, folder: str) -> None:
    """Worker side: after the execute step, write each executed notebook to ``folder``."""
    steps = _autograde_steps(c)
    at = next(i for i, p in enumerate(steps) if isinstance(p, type) and issubclass(p, Execute))
    c.Autograde.autograde_preprocessors = steps[:at + 1] + [KeepExecuted] + steps[at + 1:]
    c.KeepExecuted.folder = folder


def replay_executed(c, results: str) -> None:
    """Parent side: take each submission's executed notebook from ``results`` instead of a kernel."""
    c.Autograde.autograde_preprocessors = _swap(_autograde_steps(c), ReplayExecute)
    c.ReplayExecute.results = results
