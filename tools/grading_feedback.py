"""What learners get back: nbgrader feedback without the hidden tests."""
from __future__ import annotations

# Feedback without hidden tests. nbgrader's feedback HTML shows each test cell as it
# ran, hidden tests included, so one cohort's feedback would publish them. This
# preprocessor replaces the hidden region of every test cell by a one-line note and
# shortens the traceback of a failing test to its last line (the assertion's message),
# which is what a learner needs; the learner's own cells and outputs stay as they are.
import re

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from nbgrader.preprocessors import GetGrades
from traitlets import Bool

HIDDEN_REGION = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*$", re.M | re.S)
HIDDEN_NOTE = "# (hidden tests ran here; they are not shown)"


class HideHiddenTests(Preprocessor):
    """Blank the hidden tests of every autograded test cell in the feedback."""

    enabled = Bool(True)  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.source = HIDDEN_REGION.sub(HIDDEN_NOTE, cell.source)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources


def configure_feedback(c) -> None:
    """Set nbgrader's feedback preprocessors on the config object ``c``."""
    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
