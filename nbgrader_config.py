"""nbgrader configuration for the course (run nbgrader from the repository root).

Layout: one nbgrader *assignment per notebook*. ``solutions/<id>/<id>.ipynb`` is the
instructor source (solutions, hidden tests, model answers); ``notebooks/<id>/<id>.ipynb``
is the generated student version that learners open. One notebook per assignment keeps
releases, deadlines and grades per topic, and lets a class skip or reorder topics.
"""
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "lr-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# submitted/, autograded/ and feedback/ keep nbgrader's default names; gradebook.db
# lives at the root. All of them are git-ignored.

# Student versions: solution regions become this stub (a call then fails its tests
# instead of passing silently).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding. Each cell may run for 60 s (every notebook runs in well under 60 s
# in total); a cell that runs longer, e.g. an infinite loop, is interrupted and
# scores 0 while the rest of the notebook still runs.
c.ExecutePreprocessor.timeout = 60
c.ExecutePreprocessor.interrupt_on_timeout = True
# A learner who deletes a test cell still gets graded by it.
c.OverwriteCells.add_missing_cells = True
# nbgrader scores a test cell 0 when it writes anything to stderr. Python warnings
# (PyTorch, NumPy, matplotlib) are not errors: drop them before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\w*Warning: "

# nbgrader's gradebook triggers harmless SQLAlchemy "not in session" warnings on every
# submission; they bury the lines an instructor should read.
import warnings  # noqa: E402

from sqlalchemy.exc import SAWarning  # noqa: E402

warnings.filterwarnings("ignore", category=SAWarning)

# Feedback without hidden tests. nbgrader's feedback HTML shows each test cell as it
# ran, hidden tests included, so one cohort's feedback would publish them. This
# preprocessor replaces the hidden region of every test cell by a one-line note and
# shortens the traceback of a failing test to its last line (the assertion's message),
# which is what a learner needs; the learner's own cells and outputs stay as they are.
import re  # noqa: E402

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402
from traitlets import Bool  # noqa: E402

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


c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
