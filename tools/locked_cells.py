"""Autograde's check of locked cells, without a false alarm for every hidden test.

nbgrader's ``OverwriteCells`` compares each locked cell of a submission with the copy in
the gradebook and, when they differ, logs "Attribute 'checksum' for cell ... has
changed!" and puts the gradebook's copy back. The gradebook keeps a test cell *with*
its hidden tests (that restoration is how the hidden tests come back for grading),
while learners got it without them, so the warning fired for every test cell with
hidden tests on every submission, untouched ones included (nbgrader issue #1961), and
a real edit of a locked cell drowned among them.

``RestoreLockedCells`` restores exactly as before, and warns only when the learner's
cell differs from the released one (the gradebook's copy with its hidden tests
removed, as ``generate_assignment`` removes them), naming the submission.
"""
from __future__ import annotations

import copy

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells


class RestoreLockedCells(OverwriteCells):
    """``OverwriteCells`` that reports a locked cell only when the learner really edited it."""

    def preprocess(self, nb, resources):
        self._student = resources["nbgrader"].get("student", "?")
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        self._cell = cell  # report_change runs before the source is restored
        return super().preprocess_cell(cell, resources, cell_index)

    def _as_released(self, name: str):
        """The gradebook's copy of the cell, hidden tests removed: what the learner was given."""
        source_cell = self.gradebook.find_source_cell(name, self.notebook_id, self.assignment_id)
        released = copy.deepcopy(self._cell)
        released.source = source_cell.source
        ClearHiddenTests(parent=self)._remove_hidden_test_region(released)
        return released

    def report_change(self, name, attr, old, new):
        if attr != "checksum":
            return super().report_change(name, attr, old, new)
        if utils.compute_checksum(self._as_released(name)) == new:
            return  # as released: only the hidden tests are put back, which is how they run
        self.log.warning("Submission of '%s': the locked cell '%s' was edited; it is graded as "
                         "the course wrote it", self._student, name)
        return None


def configure_locked_cells(c) -> None:
    """Use :class:`RestoreLockedCells` where autograde would use ``OverwriteCells``."""
    from nbgrader.converters import Autograde

    default = Autograde.class_traits()["sanitize_preprocessors"].make_dynamic_default()
    c.Autograde.sanitize_preprocessors = [RestoreLockedCells if pp is OverwriteCells else pp
                                          for pp in default]
