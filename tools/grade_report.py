"""Write grade analytics for one autograded assignment: how each question went, and why tests failed.

    python3 course.py report 01                          # writes reports/01_why_lr_matters/
    python3 course.py report 01 --course DIR --out DIR   # another course directory / output folder

Run it after ``nbgrader autograde`` (and, if you like, after grading by hand), in the
course directory (the repository root when run through course.py; --course to change
it). Scores come from the gradebook (gradebook.db, through nbgrader's API); the
messages of failing tests come from the autograded notebooks
(autograded/<student>/<assignment>/). The output folder (default
reports/<assignment>/) gets:

    report.md    each student's total and the class's distribution of totals; the
                 submissions with a timed-out test cell; per question: mean, median,
                 shares with full / partial / zero marks; per test cell: the students
                 who got it wrong (apart from those who had not attempted the exercise)
                 and its three most frequent failure messages, which usually name the
                 misconception, with the range of the numbers a computed message holds
    scores.png   one histogram panel per question
    totals.png   a histogram of the students' totals
    scores.csv   one row per student and question: student, notebook, grade_id, score,
                 max_score, failed, message, error, suspicious, not_attempted
    totals.csv   one row per student who submitted: student, total, max_total,
                 not_attempted, wrong, timed_out, waiting_for_hand_grade

A test cell stopped by the per-cell time limit is reported as "timed out after N s"
(N: ExecutePreprocessor.timeout of the course's nbgrader_config.py). Suspicious
submissions (tools/suspicious.py: the learner's own cells reach for the grading, e.g.
IPython hooks, globals(), In, a type whose == is always true) are listed at the top of
report.md with every reason, cell and line, and in the csv's suspicious column.

A test cell counts as "not attempted" when it failed while its exercise (the solution
cell above it) still holds the stub the learner was given, or with the stub's
NotImplementedError: an untouched exercise, not a misconception.

Students in the gradebook who submitted nothing are left out of every statistic (they
would only add zeros that say nothing about a question), counted at the top of the
report, and listed in scores.csv with an empty score and the message "no submission".
Hand-graded answers still waiting for a grade are left out of their question's
statistics in the same way ("not graded by hand yet").

For the capstone (08), graded in the sandbox, the scorer's own record (kept in each
autograded notebook's metadata by tools/grading_sandbox.py) adds a section: each
learner's mean held-out gap to the course's recipe at the short and the long hidden
budget (which the learner never sees), and the submissions whose test cells passed while
the scorer failed them or was never asked (their kernel replaced the grading: listed
as suspicious too), or that asked it more than once.

report.md quotes the hidden tests that failed: it is for instructors, not learners.
Exit status: 0 on success; 2, with a one-line message, for an unknown assignment, a
missing gradebook, or an assignment without autograded submissions.
"""
from __future__ import annotations

import argparse
import ast
import csv
import re
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grading_feedback import configured_timeout, timed_out, timeout_text  # noqa: E402
from grading_sandbox import SCORER_METADATA  # noqa: E402
from suspicious import scan_submission  # noqa: E402

TOP = 3  # failure messages listed per test cell
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_SUBMISSION = "no submission"
NOT_GRADED = "not graded by hand yet"
NOT_ATTEMPTED = "not attempted (the exercise is still the stub)"
STUB = "raise NotImplementedError()"  # the code stub of nbgrader_config.py's ClearSolutions
NUMBER = re.compile(r"[-+]?(?:inf\b|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)")


class ReportError(Exception):
    """Something the instructor can fix (wrong name, nothing graded yet): one line, exit 2."""


@dataclass
class Row:
    """One student's result on one grade cell (a question)."""

    student: str
    notebook: str
    grade_id: str
    score: float | None  # None: nothing submitted, or a hand grade still to give
    max_score: float
    test: bool  # an autograded test cell; otherwise an answer graded by hand
    failed: bool | None = None  # None where there is no test verdict
    message: str = ""  # the failure's group label: what report.md counts
    error: str = ""  # the error exactly as the notebook shows it
    suspicious: tuple[str, ...] = ()  # why the submission looks like it games the grading
    scorer: tuple | None = None  # the capstone scorer's records for this notebook (None: none kept)
    attempted: bool = True  # False: a failed test of an exercise still left as its stub
    numbers: tuple[tuple[str, float], ...] = ()  # the values a computed message filled in


# ---------------------------------------------------------------- failure messages

def failing_line(traceback: list[str]) -> int | None:
    """Line of the test cell that raised: the '---->' marker of the traceback's first frame."""
    for entry in traceback:
        found = re.search(r"^-+>\s*(\d+)", ANSI.sub("", entry), flags=re.M)
        if found:
            return int(found.group(1))
    return None


def _assert_at(source: str, line: int | None) -> ast.Assert | None:
    """The assert statement of ``source`` that spans ``line``, if there is one."""
    if line is None:
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    return next((node for node in ast.walk(tree) if isinstance(node, ast.Assert)
                 and node.lineno <= line <= (node.end_lineno or node.lineno)), None)


def _template(msg: ast.expr) -> tuple[str, str]:
    """A computed message as a template ("got {k}") and a regex matching what it can print."""
    if not isinstance(msg, ast.JoinedStr):  # a tuple or a variable: anything can come out
        return "{" + ast.unparse(msg) + "}", ".*"
    text, pattern = "", ""
    for part in msg.values:
        if isinstance(part, ast.Constant):
            text, pattern = text + str(part.value), pattern + re.escape(str(part.value))
        else:
            text, pattern = text + "{" + ast.unparse(part.value) + "}", pattern + ".*"
    return text, pattern


def failure_label(source: str, ename: str, evalue: str, line: int | None) -> str:
    """What groups failures together: the message, or the assertion's template.

    A literal message is kept exactly: it already names one check. A message computed
    by the test (an f-string with the learner's value in it) differs from learner to
    learner although the same check failed, so it is replaced by its template, but only
    when the error really comes from that assert (its text fits the template).
    Numbers are never rewritten otherwise: two messages that differ only in a number
    may well come from two different checks. An assert without a message is named by
    its condition. Any other error (raised in the learner's code) is kept exactly.
    """
    exact = f"{ename}: {evalue}" if evalue else ename
    stmt = _assert_at(source, line) if ename == "AssertionError" else None
    if stmt is None or isinstance(stmt.msg, ast.Constant):
        return exact
    if stmt.msg is None:
        return f"AssertionError (no message): assert {ast.unparse(stmt.test)}" if not evalue else exact
    text, pattern = _template(stmt.msg)
    return f"AssertionError: {text}" if re.fullmatch(pattern, evalue, flags=re.S) else exact


def message_numbers(source: str, ename: str, evalue: str, line: int | None) -> tuple[tuple[str, float], ...]:
    """The numbers a computed assert message filled in: (its field, e.g. ``{gap}``, the value).

    Only for an f-string message whose text fits the error, and only fields that printed
    exactly one number (a field that printed a list or a word is left out).
    """
    stmt = _assert_at(source, line) if ename == "AssertionError" else None
    if stmt is None or not isinstance(stmt.msg, ast.JoinedStr):
        return ()
    fields, pattern = [], ""
    for part in stmt.msg.values:
        if isinstance(part, ast.Constant):
            pattern += re.escape(str(part.value))
        else:
            fields.append("{" + ast.unparse(part.value) + "}")
            pattern += "(.*?)"
    found = re.fullmatch(pattern, evalue, flags=re.S)
    if not found:
        return ()
    values = [(field, NUMBER.findall(text)) for field, text in zip(fields, found.groups())]
    return tuple((field, float(numbers[0])) for field, numbers in values if len(numbers) == 1)


def cell_numbers(cell) -> tuple[tuple[str, float], ...]:
    """:func:`message_numbers` of a test cell's error, if it has one."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return message_numbers(cell.source, out.get("ename", ""), str(out.get("evalue", "")),
                                   failing_line(out.get("traceback", [])))
    return ()


def _raised_stub(cell) -> bool:
    return any(out.get("output_type") == "error" and out.get("ename") == "NotImplementedError"
               for out in cell.get("outputs", []))


def cell_failure(cell, timeout: float | None = None) -> tuple[str, str]:
    """(group label, exact error) of an autograded test cell that lost points.

    A cell stopped by the time limit (``timeout`` seconds) is "timed out after N s".
    """
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename, evalue = out.get("ename", "Error"), str(out.get("evalue", ""))
            if timeout is not None and timed_out(ename, cell, timeout):
                return (timeout_text(timeout),) * 2
            label = failure_label(cell.source, ename, evalue, failing_line(out.get("traceback", [])))
            return label, (f"{ename}: {evalue}" if evalue else ename)
    for out in cell.get("outputs", []):  # nbgrader also fails a test cell that writes to stderr
        if out.get("output_type") == "stream" and out.get("name") == "stderr" and out.get("text", "").strip():
            text = "output on stderr: " + out["text"].strip().splitlines()[0]
            return text, text
    return "failed without an error message", ""


def notebook_failures(path: Path, timeout: float | None = None) -> tuple[list[str], dict[str, tuple]]:
    """Grade ids in notebook order, and {grade id: (label, error, attempted, numbers)} for every
    graded code cell; ``attempted`` is False while the exercise above the cell is still its stub."""
    if not path.exists():
        return [], {}
    order, failures, stub = [], {}, False
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            stub = STUB in cell.source  # the learner has not replaced the stub (yet)
        gid = meta.get("grade_id")
        if gid and meta.get("grade"):
            order.append(gid)
            if cell.cell_type == "code":
                label, error = cell_failure(cell, timeout)
                attempted = not (stub or _raised_stub(cell)) or label.startswith("timed out")
                failures[gid] = (label, error, attempted, cell_numbers(cell))
    return order, failures


# ---------------------------------------------------------------- statistics

def top_messages(labels: list[str], k: int = TOP) -> list[tuple[str, int]]:
    """The k most frequent labels with their counts; ties in alphabetical order (stable reports)."""
    return sorted(Counter(labels).items(), key=lambda item: (-item[1], item[0]))[:k]


def question_stats(scores: list[float], max_score: float) -> dict:
    """Mean, median and the shares of full, partial and zero marks of one question's scores."""
    n = len(scores)
    if n == 0:
        return {"n": 0, "mean": None, "median": None, "full": None, "partial": None, "zero": None}
    full = sum(s >= max_score for s in scores)
    zero = sum(s <= 0 for s in scores)
    return {"n": n, "mean": statistics.fmean(scores), "median": statistics.median(scores),
            "full": full / n, "partial": (n - full - zero) / n, "zero": zero / n}


def failing(rows: list[Row]) -> tuple[int, int]:
    """(students failing, students with a verdict) among one test cell's rows."""
    verdicts = [r.failed for r in rows if r.failed is not None]
    return sum(verdicts), len(verdicts)


def wrong_and_untouched(rows: list[Row]) -> tuple[int, int, int]:
    """(students who got it wrong, who had not attempted it, students with a verdict)."""
    judged = [r for r in rows if r.failed is not None]
    untouched = sum(bool(r.failed) and not r.attempted for r in judged)
    return sum(bool(r.failed) for r in judged) - untouched, untouched, len(judged)


def number_ranges(rows: list[Row]) -> list[tuple[str, int, float, float, float]]:
    """(field, count, min, median, max) of each computed message field over ``rows``."""
    values: dict[str, list[float]] = {}
    for r in rows:
        for field, value in r.numbers:
            values.setdefault(field, []).append(value)
    return [(f, len(v), min(v), statistics.median(v), max(v)) for f, v in values.items()]


@dataclass
class Total:
    """One student's total over the assignment."""

    student: str
    total: float
    max_total: float
    not_attempted: int  # test cells failed on an untouched exercise
    wrong: int  # test cells failed otherwise
    timed_out: tuple[str, ...]  # test cells stopped by the time limit
    pending: int  # answers still waiting for a hand grade


def totals(rows: list[Row]) -> list[Total]:
    """Per student who submitted: the sum of their scores (pending hand grades count 0 until given)."""
    out = []
    for student in sorted({r.student for r in rows if r.message != NO_SUBMISSION}):
        mine = [r for r in rows if r.student == student]
        out.append(Total(student, sum(r.score or 0 for r in mine), sum(r.max_score for r in mine),
                         sum(bool(r.failed) and not r.attempted for r in mine),
                         sum(bool(r.failed) and r.attempted for r in mine),
                         tuple(r.grade_id for r in mine if r.message.startswith("timed out after")),
                         sum(r.message == NOT_GRADED for r in mine)))
    return out


# ---------------------------------------------------------------- reading the gradebook

def resolve(spec: str, names: list[str]) -> str:
    """The assignment named exactly ``spec``, or the one it is a prefix of ('1' or '01' -> 01_...)."""
    if spec in names:
        return spec
    prefix = spec.zfill(2) if spec.isdigit() else spec
    matches = [n for n in names if n.startswith(prefix)]
    if len(matches) != 1:
        raise ReportError(f"unknown assignment '{spec}'; the gradebook has: {', '.join(sorted(names)) or 'none'}")
    return matches[0]


def _grade_row(grade, student: str, notebook: str, test: bool, failures: dict) -> Row:
    """A row from a gradebook grade; a test that lost points gets its failure message."""
    row = Row(student, notebook, grade.name, grade.score, grade.max_score, test)
    if not test:
        if grade.needs_manual_grade:  # the gradebook says 0, but nobody has graded it yet
            row.score, row.message = None, NOT_GRADED
        return row
    # The verdict is the autograder's: a hand-given score can overrule the points, but
    # the test still failed, and its message still says how.
    row.failed = (grade.auto_score or 0) < grade.max_score
    if row.failed:
        row.message, row.error, row.attempted, row.numbers = failures.get(
            grade.name, ("no autograded notebook found", "", True, ()))
        if not row.attempted:
            row.message = NOT_ATTEMPTED
    return row


def read_gradebook(course: Path, spec: str) -> tuple[str, list[Row], list[str], list[str]]:
    """(assignment, rows, grade ids in notebook order, students who submitted nothing)."""
    from nbgrader.api import Gradebook  # slow to import: not needed for --help

    db = course / "gradebook.db"
    if not db.exists():  # opening a missing gradebook would create an empty one
        raise ReportError(f"no gradebook at {db}: run `nbgrader autograde` in the course directory first")
    with Gradebook(f"sqlite:///{db.resolve()}") as gb:
        aid = resolve(spec, [a.name for a in gb.assignments])
        assignment = gb.find_assignment(aid)
        submissions = {sub.student_id: sub for sub in assignment.submissions}
        if not submissions:
            raise ReportError(f"no autograded submissions of {aid}: run `nbgrader autograde {aid}` first")
        rows, order = [], []
        timeout = configured_timeout(course)
        for student in sorted(s.id for s in gb.students):
            if student not in submissions:
                rows += _missing_rows(student, assignment)
                continue
            flags = suspicion(course, student, aid)
            for nb in submissions[student].notebooks:
                path = course / "autograded" / student / aid / f"{nb.name}.ipynb"
                seen, failures = notebook_failures(path, timeout)
                records = scorer_records(path)
                order += [gid for gid in seen if gid not in order]
                tests = {gc.name for gc in nb.notebook.grade_cells if gc.cell_type == "code"} - \
                        {sc.name for sc in nb.notebook.solution_cells}
                for g in nb.grades:
                    rows.append(_grade_row(g, student, nb.name, g.name in tests, failures))
                    rows[-1].suspicious = flags
                    rows[-1].scorer = records
        missing = sorted({s.id for s in gb.students} - set(submissions))
    for student, mine in capstone_rows(rows).items():
        why = scorer_disagreement(mine)
        if why:
            for r in rows:
                if r.student == student:
                    r.suspicious = (*r.suspicious, why)
    return aid, rows, order, missing


def scorer_records(path: Path) -> tuple | None:
    """The capstone scorer's records kept in an autograded notebook ({"tests", "gaps"} per
    request), () when the notebook has none; None when the notebook cannot be read."""
    try:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except (OSError, ValueError):
        return None
    found = (nb.metadata.get("lr_course") or {}).get(SCORER_METADATA) if isinstance(
        nb.metadata.get("lr_course"), dict) else None
    return tuple(r for r in found if isinstance(r, dict)) if isinstance(found, list) else ()


def scorer_disagreement(rows: list[Row]) -> str | None:
    """Why one student's capstone grades disagree with the scorer's record, or None."""
    tests = [r for r in rows if r.test and r.score is not None]
    if not tests:
        return None
    records = rows[0].scorer or ()
    full = all(r.score >= r.max_score for r in tests)
    if len(records) > 1:
        return f"the capstone's scorer was asked {len(records)} times (once is the hidden tests' request)"
    if full and not records:
        return "every capstone test passed, but the scorer was never asked: the kernel replaced the grading"
    outcome = records[0].get("tests") if records else None
    if full and (not isinstance(outcome, dict) or not all(
            v is True or not isinstance(v, bool) and isinstance(v, (int, float)) and v >= 1
            for v in outcome.values())):  # every check passed and every share whole
        return "every capstone test passed, but the scorer failed the recipe: the kernel replaced the grading"
    return None


def capstone_rows(rows: list[Row]) -> dict[str, list[Row]]:
    """{student: rows} of the notebooks that kept scorer records (the capstone graded in the sandbox)."""
    if not any(r.scorer for r in rows):
        return {}
    return {student: [r for r in rows if r.student == student and r.scorer is not None]
            for student in sorted({r.student for r in rows if r.scorer is not None})}


def suspicion(course: Path, student: str, aid: str) -> tuple[str, ...]:
    """The findings of tools/suspicious.py on one submission, one line each."""
    found = scan_submission(course, student, aid)
    several = len(found) > 1
    return tuple(f"{name}: {f}" if several else str(f) for name, findings in found.items() for f in findings)


def suspicious_students(rows: list[Row]) -> dict[str, tuple[str, ...]]:
    """{student: findings} of the flagged submissions."""
    return {r.student: r.suspicious for r in sorted(rows, key=lambda r: r.student) if r.suspicious}


def _missing_rows(student: str, assignment) -> list[Row]:
    """Rows for a student who submitted nothing: no score, no verdict."""
    return [Row(student, nb.name, gc.name, None, gc.max_score, False, None, NO_SUBMISSION)
            for nb in assignment.notebooks for gc in nb.grade_cells]


# ---------------------------------------------------------------- writing the report

def questions(rows: list[Row], order: list[str]) -> list[tuple[str, str]]:
    """(notebook, grade id) of every question, in notebook order where known."""
    return sorted({(r.notebook, r.grade_id) for r in rows},
                  key=lambda k: (k[0], order.index(k[1]) if k[1] in order else len(order), k[1]))


def _scored(rows: list[Row], key: tuple[str, str]) -> list[Row]:
    return [r for r in rows if (r.notebook, r.grade_id) == key and r.score is not None]


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f}%"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def inline_code(text: str) -> str:
    """Inline Markdown code that survives backticks and line breaks in a message."""
    text = " ".join(text.split())
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["student", "notebook", "grade_id", "score", "max_score", "failed", "message", "error",
                      "suspicious", "not_attempted"])
        for r in sorted(rows, key=lambda r: (r.student, r.notebook, r.grade_id)):
            failed = "" if r.failed is None else int(r.failed)
            untouched = "" if r.failed is None else int(bool(r.failed) and not r.attempted)
            out.writerow([r.student, r.notebook, r.grade_id, "" if r.score is None else r.score,
                          r.max_score, failed, r.message, r.error, " | ".join(r.suspicious), untouched])


def write_totals_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["student", "total", "max_total", "not_attempted", "wrong", "timed_out",
                      "waiting_for_hand_grade"])
        for t in totals(rows):
            out.writerow([t.student, t.total, t.max_total, t.not_attempted, t.wrong, " ".join(t.timed_out),
                          t.pending])


def write_totals_plot(rows: list[Row], path: Path) -> None:
    """A histogram of the students' totals, one bar per point (or per twentieth of the maximum)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    found = totals(rows)
    top = max((t.max_total for t in found), default=1) or 1
    step = 1.0 if top <= 30 else top / 20
    edges = [step * (i - 0.5) for i in range(round(top / step) + 2)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist([t.total for t in found], bins=edges, color="tab:blue", edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"totals (n={len(found)})", fontsize=10)
    ax.set_xlabel(f"total (of {top:g})")
    ax.set_ylabel("students")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plot(rows: list[Row], keys: list[tuple[str, str]], path: Path) -> None:
    """One histogram panel per question: how many students got each score."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(keys))
    nrows = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        scored = _scored(rows, key)
        top = max((r.max_score for r in scored), default=1) or 1
        # Scores are few and discrete (a test gives 0 or all its points; hand grades go by
        # half points): one bar centred on each possible score, not ten arbitrary bins.
        step = 0.5 if top <= 5 else top / 10
        edges = [step * (i - 0.5) for i in range(round(top / step) + 2)]
        ax.hist([r.score for r in scored], bins=edges, color="tab:blue", edgecolor="white")
        ax.set_xticks([step * i for i in range(round(top / step) + 1)])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{key[1]} (n={len(scored)})", fontsize=10)
        ax.set_xlabel(f"score (of {top:g})")
        ax.set_ylabel("students")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _section(rows: list[Row], key: tuple[str, str]) -> list[str]:
    """The report's paragraph on one test cell: who fails it and with which message."""
    mine = [r for r in rows if (r.notebook, r.grade_id) == key]
    if not any(r.test for r in mine):
        return []
    fails, judged = failing(mine)
    wrong, untouched, _ = wrong_and_untouched(mine)
    share = _pct(fails / judged if judged else None)
    lines = [f"### {key[1]}", "", f"Failing: {fails} of {judged} students ({share}): {wrong} wrong, "
             f"{untouched} not attempted (exercise left as its stub)."]
    attempts = [r for r in mine if r.failed and r.attempted]
    top = top_messages([r.message for r in attempts])
    if top:
        lines += ["", "Most frequent failure messages (attempts only):", ""]
        for i, (label, count) in enumerate(top, 1):
            lines.append(f"{i}. {count} × {inline_code(label)}")
            for field, n, low, mid, high in number_ranges([r for r in attempts if r.message == label]):
                lines.append(f"   * {inline_code(field)} over {n}: min {low:.4g}, median {mid:.4g}, max {high:.4g}")
    return lines + [""]


def _totals_section(rows: list[Row], plot: str) -> list[str]:
    """The class's distribution of totals."""
    found = totals(rows)
    if not found:
        return []
    values = [t.total for t in found]
    untouched = sum(t.not_attempted > 0 for t in found)
    return ["## Totals", "",
            f"{len(found)} students: mean {_num(statistics.fmean(values))}, median {_num(statistics.median(values))}, "
            f"min {_num(min(values))}, max {_num(max(values))} of {found[0].max_total:g} points; "
            f"{untouched} left at least one exercise unattempted. Each student's total is in the last "
            "section and in totals.csv.", "", f"![distribution of totals]({plot})", ""]


def _students_section(rows: list[Row]) -> list[str]:
    """Each student's total, lowest first."""
    found = totals(rows)
    if not found:
        return []
    lines = ["## Students", "", "| student | total | not attempted | wrong | timed out | waiting for a hand grade |",
             "|---|---|---|---|---|---|"]
    for t in sorted(found, key=lambda t: (t.total, t.student)):
        lines.append(f"| {t.student} | {_num(t.total)} / {t.max_total:g} | {t.not_attempted} | {t.wrong} | "
                     f"{', '.join(t.timed_out) or '–'} | {t.pending or '–'} |")
    return lines + [""]


def _capstone_section(rows: list[Row]) -> list[str]:
    """Each learner's gap to the course's recipe at the hidden budgets, from the scorer's record."""
    found = capstone_rows(rows)
    if not found:
        return []
    gaps = {student: ((mine[0].scorer or ({},))[-1].get("gaps") or {}) for student, mine in found.items()}
    lines = ["## The capstone's scorer", "",
             "Each learner's mean held-out gap to the course's recipe (nats/char, over the hidden seeds; lower "
             "is better, negative beats the recipe) at the short and the long hidden budget, as the scorer "
             "measured it; learners never see these numbers. Empty: the recipe broke a rule or did not finish "
             "there.", ""]
    for budget in ("short", "long"):
        values = sorted(g[budget] for g in gaps.values() if isinstance(g.get(budget), (int, float)))
        if values:
            lines.append(f"* {budget} budget: {len(values)} recipes scored, gap min {values[0]:.3f}, median "
                         f"{statistics.median(values):.3f}, max {values[-1]:.3f}")
    lines += ["", "| student | short budget | long budget | scorer requests |", "|---|---|---|---|"]
    for student, g in sorted(gaps.items(), key=lambda kv: (kv[1].get("long", float("inf")), kv[0])):
        cells = [f"{g[b]:.3f}" if isinstance(g.get(b), (int, float)) else "–" for b in ("short", "long")]
        lines.append(f"| {student} | {cells[0]} | {cells[1]} | {len(found[student][0].scorer or ())} |")
    return lines + [""]


def _timeouts_section(rows: list[Row]) -> list[str]:
    """The submissions with a test cell stopped by the time limit, and which cells."""
    stopped = [t for t in totals(rows) if t.timed_out]
    if not stopped:
        return []
    lines = ["## Timeouts", "", f"{len(stopped)} submission(s) had test cells stopped by the per-cell time limit "
             "(an endless loop or a very slow answer; each such cell scores 0):", ""]
    return lines + [f"* **{t.student}**: {', '.join(t.timed_out)}" for t in stopped] + [""]


def render(aid: str, rows: list[Row], keys: list[tuple[str, str]], missing: list[str], plot: str,
           totals_plot: str = "totals.png") -> str:
    """report.md as text."""
    students = sorted({r.student for r in rows})
    lines = [f"# Grade report: {aid}", "",
             f"{len(students)} students in the gradebook, {len(students) - len(missing)} submitted."]
    if missing:
        lines += ["", f"{len(missing)} submitted nothing ({', '.join(missing)}). They are left out of every "
                  "statistic below (`nbgrader export` counts them as 0) and appear in scores.csv with an "
                  f"empty score and the message \"{NO_SUBMISSION}\"."]
    flagged = suspicious_students(rows)
    if flagged:
        lines += ["", "## Suspicious submissions", "",
                  f"{len(flagged)} submission(s) contain code that reaches for the grading (hooks, the notebook's "
                  "namespace, the test cells' names, comparisons that always hold, files outside the working "
                  "copy...). A flag is a reason to look, not proof: open the cell, re-grade by hand where the "
                  "score is in doubt, and talk to the learner (docs/instructors.md).", ""]
        for student, reasons in flagged.items():
            lines.append(f"* **{student}**")
            lines += [f"  * {inline_code(reason)}" for reason in reasons]
    lines += ["", *_timeouts_section(rows), *_totals_section(rows, totals_plot), *_capstone_section(rows),
              "## Questions"]
    lines += ["", "| question | kind | points | students | mean | median | full | partial | zero | wrong | "
              "not attempted |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        lines.append(_table_row(rows, key))
    if any(r.message == NOT_GRADED for r in rows):
        lines += ["", "Answers still waiting for a hand grade are left out of their question until graded."]
    lines += ["", f"![score distribution per question]({plot})", "", "## Failing tests", ""]
    for key in keys:
        lines += _section(rows, key)
    lines += _students_section(rows)
    return "\n".join(lines)


def _table_row(rows: list[Row], key: tuple[str, str]) -> str:
    mine = [r for r in rows if (r.notebook, r.grade_id) == key]
    scored = _scored(rows, key)
    top = mine[0].max_score
    s = question_stats([r.score for r in scored], top)
    test = any(r.test for r in mine)
    wrong, untouched, judged = wrong_and_untouched(mine)
    wrong_text = f"{_pct(wrong / judged)} ({wrong} of {judged})" if test and judged else "–"
    untouched_text = f"{_pct(untouched / judged)} ({untouched} of {judged})" if test and judged else "–"
    name = key[1] if len({r.notebook for r in rows}) == 1 else f"{key[0]}: {key[1]}"
    return (f"| {name} | {'test' if test else 'by hand'} | {top:g} | {s['n']} | {_num(s['mean'])} | "
            f"{_num(s['median'])} | {_pct(s['full'])} | {_pct(s['partial'])} | {_pct(s['zero'])} | {wrong_text} | "
            f"{untouched_text} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:4]))
    parser.add_argument("assignment", help="assignment id or its number (01)")
    parser.add_argument("--course", default=".", help="course directory with gradebook.db (default: the "
                        "current folder, which is the repository root through course.py)")
    parser.add_argument("--out", help="output folder (default: <course>/reports/<assignment>)")
    args = parser.parse_args(argv)
    course = Path(args.course)
    try:
        aid, rows, order, missing = read_gradebook(course, args.assignment)
    except ReportError as e:
        print(f"grade_report: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else course / "reports" / aid
    out.mkdir(parents=True, exist_ok=True)
    keys = questions(rows, order)
    write_csv(rows, out / "scores.csv")
    write_plot(rows, keys, out / "scores.png")
    write_totals_csv(rows, out / "totals.csv")
    write_totals_plot(rows, out / "totals.png")
    (out / "report.md").write_text(render(aid, rows, keys, missing, "scores.png"), encoding="utf-8")
    print(f"{aid}: report written to {out / 'report.md'} (with scores.png, totals.png, scores.csv and totals.csv)")
    flagged = suspicious_students(rows)
    if flagged:
        print(f"{len(flagged)} suspicious submission(s), listed in report.md: {', '.join(flagged)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
