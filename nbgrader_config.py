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

# The course's grading code lives in tools/ (next to this file): the sandbox every
# submission's kernel runs in (tools/grading_sandbox.py) and the feedback filter that
# keeps hidden tests out of what learners get back (tools/grading_feedback.py).
# The sandbox (bubblewrap: no network, no view of the course, its own unprivileged
# user, memory/process/file limits) is required: without `bwrap` autograde refuses,
# unless LR_COURSE_UNSANDBOXED_GRADING=1 is set (docs/instructors.md, "Grading
# untrusted code"). Limits: LR_COURSE_SANDBOX_MEMORY_GB, _PROCESSES, _FILE_GB,
# _SUBMISSION_SECONDS.
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
from grading_feedback import configure_feedback  # noqa: E402
from grading_sandbox import configure_sandbox  # noqa: E402
from locked_cells import configure_locked_cells  # noqa: E402

configure_sandbox(c)
configure_feedback(c)
# A locked cell is reported only when a learner edited it, not for every test cell whose
# hidden tests come back for grading (tools/locked_cells.py).
configure_locked_cells(c)
