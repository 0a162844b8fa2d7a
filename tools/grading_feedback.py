"""What learners get back: nbgrader feedback that cannot carry the hidden tests.

A submission runs in the same kernel as the hidden tests during autograde, so anything
the grading run printed may hold them: a learner's code can print ``In`` (every cell
run so far, hidden tests included), raise ``AssertionError(In[-1])``, name an
exception class after a hidden line, or encode the text so that no scrubber can
recognise it. The feedback therefore never shows what the grading run printed:

* a graded test cell shows its source with the hidden region replaced by a note, and
  one line of verdict written by the course, not by the run: "passed"; for a failed
  assert, the message the course's author gave that assert, read from the *source*
  notebook (a string as written, an f-string with each ``{...}`` shown as "…"), and
  only when the run's error fits that message; otherwise one fixed line, "this test
  cell stopped with an error from your code", without the exception's name or text
  (code that can read the hidden tests could otherwise pick the exception it raises
  to spell them out); a cell stopped by the per-cell time limit says "timed out
  after N s";
* every other cell (the learner's own, and the course's locked cells) shows the outputs
  the learner *submitted* (their notebook in submitted/, matched by cell id), which
  were made without any hidden test in the kernel;
* last, no line of any hidden test (from the source notebook: stripped, at least
  MIN_HIDDEN_LINE characters, not also a visible line) may appear anywhere in the
  notebook that is rendered: a source line that holds one is replaced, an output that
  holds one is withheld.

What remains is a narrow channel: which of a few fixed lines a test cell shows (passed,
one of its author's messages, an error, a time-out) is still chosen by the run, so code
that reads the hidden tests in the kernel could signal a few bits per test cell.
``tools/suspicious.py`` flags the reading (``In``, frames, ``globals()``).
"""
from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import nbformat
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from nbgrader.preprocessors import GetGrades
from traitlets import Bool

HIDDEN_REGION = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*$", re.M | re.S)
HIDDEN_NOTE = "# (hidden tests ran here; they are not shown)"
LINE_WITHHELD = "# (line withheld: it is part of a hidden test)"
OUTPUT_WITHHELD = "(output withheld: it contained part of a hidden test)\n"
PASSED = "Test passed."
MIN_HIDDEN_LINE = 12  # shorter lines ("pass", "import math") give nothing away
ELLIPSIS = "…"
DEFAULT_TIMEOUT = 30  # nbgrader's ExecutePreprocessor.timeout when the config sets none
TIMEOUT_ENAMES = ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError")



# ---------------------------------------------------------------- the verdict of a test cell

def is_test_cell(cell) -> bool:
    """An autograded test cell: graded code that is not the learner's answer."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def message_template(msg: ast.expr | None) -> tuple[str, str] | None:
    """(text shown, regex the run's error value must fit) of an assert's message, or None.

    A string literal is shown as written and must match exactly; an f-string is shown
    with each ``{...}`` as "…", which matches any text. Any other message (a variable,
    a tuple, a call) has no fixed text: None.
    """
    if isinstance(msg, ast.Constant) and isinstance(msg.value, str):
        return msg.value, re.escape(msg.value)
    if isinstance(msg, ast.JoinedStr):
        text, pattern = "", ""
        for part in msg.values:
            if isinstance(part, ast.Constant):
                text, pattern = text + str(part.value), pattern + re.escape(str(part.value))
            else:
                text, pattern = text + ELLIPSIS, pattern + ".*"
        return text, pattern
    return None


def assert_templates(source: str) -> list[tuple[int, str, str]]:
    """(line, text, regex) of every assert with a fixed message in ``source``, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            template = message_template(node.msg)
            if template:
                found.append((node.lineno, *template))
    return sorted(found)


def matching_message(source: str, evalue: str) -> str | None:
    """The author's message of an assert in ``source`` that the error value ``evalue`` fits.

    Only the template is ever returned, never ``evalue``: its fixed parts are the
    author's and must all appear in ``evalue``, so a learner who raises an error of
    their own learns nothing from it they did not write themselves. An empty template
    part ("…" alone) fits anything and is never used.
    """
    for _, text, pattern in assert_templates(source):
        if text.replace(ELLIPSIS, "").strip() and re.fullmatch(pattern, evalue, flags=re.S):
            return text
    return None


ERROR_TEXT = "this test cell stopped with an error from your code (run the visible tests to see it)"


def timeout_text(seconds: float) -> str:
    return f"timed out after {seconds:g} s"


def timed_out(ename: str, cell=None, timeout: float | None = None) -> bool:
    """Whether an error output is the per-cell time limit stopping the cell.

    nbgrader writes ``CellTimeoutError`` when the kernel gives no reply in time, and the
    kernel answers the interrupt with ``KeyboardInterrupt``. A ``KeyboardInterrupt`` the
    learner raised themselves is told apart by the cell's recorded run time, where the
    notebook has one (nbclient records it), being well under the limit.
    """
    if ename == "CellTimeoutError":
        return True
    if ename not in TIMEOUT_ENAMES:
        return False
    took = run_time(cell) if cell is not None else None
    return took is None or timeout is None or took >= 0.9 * timeout


def run_time(cell) -> float | None:
    """Seconds between the start of a cell and its reply, from nbclient's timing metadata."""
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    try:
        return (datetime.fromisoformat(end.replace("Z", "+00:00"))
                - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    except (AttributeError, TypeError, ValueError):
        return None


def verdict(cell, source: str, timeout: float) -> tuple[bool, str]:
    """(passed, text) for an autograded test cell, from its outputs and its source in the course.

    ``source`` is the cell as the course wrote it (hidden tests included): the only
    place a failure message is taken from.
    """
    outputs = cell.get("outputs", [])
    error = next((o for o in outputs if o.get("output_type") == "error"), None)
    if error is not None:
        ename, evalue = str(error.get("ename", "")), str(error.get("evalue", ""))
        if timed_out(ename, cell, timeout):
            return False, timeout_text(timeout)
        if ename == "AssertionError":
            message = matching_message(source, evalue)
            if message is not None:
                return False, f"AssertionError: {message}"
        return False, ERROR_TEXT
    if any(o.get("output_type") == "stream" and o.get("name") == "stderr" and str(o.get("text", "")).strip()
           for o in outputs):
        return False, "this test cell wrote to stderr (an error or a warning), which counts as a failure"
    earned = partial_credit(cell)
    if earned is not None:
        return True, earned
    return True, PASSED


def partial_credit(cell) -> str | None:
    """The text for a test cell that ended with a number below its points (nbgrader's partial
    credit: the notebook's capstone scores a share of a test's points), else None."""
    top = float((cell.get("metadata", {}).get("nbgrader") or {}).get("points") or 0)
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result":
            try:
                got = float(str(output.get("data", {}).get("text/plain", "")).strip())
            except ValueError:
                return None
            return f"Partial credit: {got:g} of {top:g} points." if 0 <= got < top else None
    return None


def verdict_output(passed: bool, text: str):
    """The one output a test cell shows in the feedback."""
    if passed:
        return nbformat.v4.new_output("stream", name="stdout", text=text + "\n")
    ename = text.split(":", 1)[0] if text.startswith("AssertionError:") else "TestFailed"
    evalue = text.split(": ", 1)[1] if ename == "AssertionError" else text
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[text if ename == "AssertionError" else f"Test failed: {text}"])


# ---------------------------------------------------------------- the outputs the learner submitted

def submitted_outputs(cells: list, submitted: list) -> list[list | None]:
    """For each of ``cells``, the outputs of the same cell in the ``submitted`` notebook.

    Matched by cell id; a cell without a matching id takes the next submitted cell, in
    order, with the same source (cells re-added by the autograder shift positions);
    otherwise None (no output is shown).
    """
    by_id = {c.get("id"): c for c in submitted if c.get("id")}
    taken = {c.get("id") for c in cells if c.get("id") in by_id}  # submitted cells matched by id
    free = [j for j, c in enumerate(submitted) if c.get("id") not in taken]
    found, after = [], 0
    for cell in cells:
        twin = by_id.get(cell.get("id")) if cell.get("id") in taken else None
        if twin is None:
            at = next((k for k in range(after, len(free)) if submitted[free[k]].get("source") == cell.get("source")),
                      None)
            if at is not None:
                twin, after = submitted[free[at]], at + 1
        found.append(None if twin is None or twin.get("cell_type") != "code" else list(twin.get("outputs", [])))
    return found


# ---------------------------------------------------------------- the safety net

def _squash(text: str) -> str:
    return " ".join(text.split())


def hidden_lines(notebook) -> set[str]:
    """Lines of the hidden tests that would give them away: long enough, and not also visible."""
    hidden, visible = set(), set()
    for cell in notebook.cells:
        source = cell.get("source", "")
        for region in HIDDEN_REGION.findall(source):
            hidden |= {_squash(line) for line in region.splitlines()[1:-1]}
        visible |= {_squash(line) for line in HIDDEN_REGION.sub("", source).splitlines()}
    return {line for line in hidden - visible if len(line) >= MIN_HIDDEN_LINE}


def _text_of(value) -> str:
    """Every string inside an output (text, mime data, traceback), as one text to search."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_text_of(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(_text_of(v) for v in value)
    return str(value)


def leaks(text: str, secrets: set[str]) -> bool:
    """Whether ``text`` (raw, or as HTML with tags removed and entities decoded) holds a hidden line."""
    if not secrets:
        return False
    plain = html.unescape(re.sub(r"<[^>]*>", "", text))
    squashed = {_squash(text), _squash(plain), _squash(html.unescape(text))}
    return any(secret in s for s in squashed for secret in secrets)


def scrub_cell(cell, secrets: set[str]) -> None:
    """Replace every source line and withhold every output of ``cell`` that holds a hidden line."""
    if leaks(cell.get("source", ""), secrets):
        lines = cell.source.splitlines()
        indent = [line[:len(line) - len(line.lstrip())] for line in lines]
        cell.source = "\n".join(ind + LINE_WITHHELD if leaks(line, secrets) else line
                                for ind, line in zip(indent, lines))
        if leaks(cell.source, secrets):  # a hidden line spread over several source lines
            cell.source = LINE_WITHHELD
    if cell.get("attachments") and leaks(_text_of(cell.attachments), secrets):
        cell.attachments = {}
    if "outputs" in cell:
        cell.outputs = [o if not leaks(_text_of(o), secrets)
                        else nbformat.v4.new_output("stream", name="stdout", text=OUTPUT_WITHHELD)
                        for o in cell.outputs]


# ---------------------------------------------------------------- the preprocessor

def _notebook(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


class HideHiddenTests(Preprocessor):
    """Feedback from what the course wrote and what the learner submitted, never from the grading run."""

    enabled = Bool(True)  # nbconvert's preprocessors are off unless enabled

    def _course(self):
        from nbgrader.coursedir import CourseDirectory
        return CourseDirectory(parent=self)

    def _timeout(self) -> float:
        return timeout_of(self.config)

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        course = self._course()
        aid, student, name = info.get("assignment", ""), info.get("student", ""), info.get("notebook", "")
        source = _notebook(Path(course.format_path(course.source_directory, ".", aid)) / f"{name}.ipynb")
        submitted = _notebook(Path(course.format_path(course.submitted_directory, student, aid)) / f"{name}.ipynb")
        if source is None:
            raise FileNotFoundError(f"the source notebook of {aid}/{name} is needed to write feedback without "
                                    f"hidden tests; looked in {course.format_path(course.source_directory, '.', aid)}")
        originals = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in source.cells
                     if is_test_cell(c)}
        outputs = submitted_outputs(nb.cells, submitted.cells if submitted is not None else [])
        secrets = hidden_lines(source)
        timeout = self._timeout()
        for cell, mine in zip(nb.cells, outputs):
            if is_test_cell(cell):
                gid = cell.metadata["nbgrader"].get("grade_id")
                passed, text = verdict(cell, originals.get(gid, cell.source), timeout)
                cell.source = HIDDEN_REGION.sub(HIDDEN_NOTE, originals.get(gid, cell.source))
                cell.outputs = [verdict_output(passed, text)]
            elif cell.cell_type == "code":
                cell.outputs = mine if mine is not None else []
            scrub_cell(cell, secrets)
        return nb, resources


def configure_feedback(c) -> None:
    """Set nbgrader's feedback preprocessors on the config object ``c``."""
    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]


def configured_timeout(course: Path) -> float:
    """The per-cell time limit (ExecutePreprocessor.timeout) of the course's nbgrader_config.py."""
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    except ConfigFileNotFound:
        return DEFAULT_TIMEOUT
    except Exception:  # noqa: BLE001 (it does not load here, e.g. a check of the machine fails: read the line)
        text = (course / "nbgrader_config.py").read_text(encoding="utf-8", errors="replace")
        found = re.findall(r"^c\.(?:Execute|ExecutePreprocessor)\.timeout\s*=\s*(\d+(?:\.\d*)?)\s*(?:#.*)?$",
                           text, flags=re.M)
        return float(found[-1]) if found else DEFAULT_TIMEOUT
    return timeout_of(config)


def timeout_of(config) -> float:
    """The per-cell time limit a traitlets config sets (nbgrader's Execute, or ExecutePreprocessor)."""
    for section in ("Execute", "ExecutePreprocessor"):
        value = config[section].get("timeout") if section in config else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return DEFAULT_TIMEOUT
