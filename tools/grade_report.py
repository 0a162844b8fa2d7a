"""Write grade analytics for one autograded assignment: how each question went, and why tests failed.

    python3 course.py report 01                          # writes reports/01_why_lr_matters/
    python3 course.py report 01 --course DIR --out DIR   # another course directory / output folder

Run it after ``nbgrader autograde`` (and, if you like, after grading by hand), in the
course directory (the repository root when run through course.py; --course to change
it). Scores come from the gradebook (gradebook.db, through nbgrader's API); the
messages of failing tests come from the autograded notebooks
(autograded/<student>/<assignment>/). The output folder (default
reports/<assignment>/) gets:

    report.md    per question: mean, median, shares with full / partial / zero marks;
                 per test cell: the share of students failing it and its three most
                 frequent failure messages, which usually name the misconception
    scores.png   one histogram panel per question
    scores.csv   one row per student and question: student, notebook, grade_id, score,
                 max_score, failed, message, error, suspicious

A test cell stopped by the per-cell time limit is reported as "timed out after N s"
(N: ExecutePreprocessor.timeout of the course's nbgrader_config.py). Suspicious
submissions (tools/suspicious.py: the learner's own cells reach for the grading, e.g.
IPython hooks, globals(), In, a type whose == is always true) are listed at the top of
report.md with every reason, cell and line, and in the csv's suspicious column.

Students in the gradebook who submitted nothing are left out of every statistic (they
would only add zeros that say nothing about a question), counted at the top of the
report, and listed in scores.csv with an empty score and the message "no submission".
Hand-graded answers still waiting for a grade are left out of their question's
statistics in the same way ("not graded by hand yet").

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
from suspicious import scan_submission  # noqa: E402

TOP = 3  # failure messages listed per test cell
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_SUBMISSION = "no submission"
NOT_GRADED = "not graded by hand yet"


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


def notebook_failures(path: Path, timeout: float | None = None) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Grade ids in notebook order, and {grade id: (label, error)} for every cell with an error."""
    if not path.exists():
        return [], {}
    order, failures = [], {}
    for cell in nbformat.read(path, as_version=4).cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid and cell.metadata["nbgrader"].get("grade"):
            order.append(gid)
            if cell.cell_type == "code":
                failures[gid] = cell_failure(cell, timeout)
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
        row.message, row.error = failures.get(grade.name, ("no autograded notebook found", ""))
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
                seen, failures = notebook_failures(course / "autograded" / student / aid / f"{nb.name}.ipynb",
                                                   timeout)
                order += [gid for gid in seen if gid not in order]
                tests = {gc.name for gc in nb.notebook.grade_cells if gc.cell_type == "code"} - \
                        {sc.name for sc in nb.notebook.solution_cells}
                for g in nb.grades:
                    rows.append(_grade_row(g, student, nb.name, g.name in tests, failures))
                    rows[-1].suspicious = flags
        missing = sorted({s.id for s in gb.students} - set(submissions))
    return aid, rows, order, missing


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
                      "suspicious"])
        for r in sorted(rows, key=lambda r: (r.student, r.notebook, r.grade_id)):
            failed = "" if r.failed is None else int(r.failed)
            out.writerow([r.student, r.notebook, r.grade_id, "" if r.score is None else r.score,
                          r.max_score, failed, r.message, r.error, " | ".join(r.suspicious)])


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
    share = _pct(fails / judged if judged else None)
    lines = [f"### {key[1]}", "", f"Failing: {fails} of {judged} students ({share})."]
    top = top_messages([r.message for r in mine if r.failed])
    if top:
        lines += ["", "Most frequent failure messages:", ""]
        lines += [f"{i}. {count} × {inline_code(label)}" for i, (label, count) in enumerate(top, 1)]
    return lines + [""]


def render(aid: str, rows: list[Row], keys: list[tuple[str, str]], missing: list[str], plot: str) -> str:
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
        lines += ["", "## Questions"]
    lines += ["", "| question | kind | points | students | mean | median | full | partial | zero | failing |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        lines.append(_table_row(rows, key))
    if any(r.message == NOT_GRADED for r in rows):
        lines += ["", "Answers still waiting for a hand grade are left out of their question until graded."]
    lines += ["", f"![score distribution per question]({plot})", "", "## Failing tests", ""]
    for key in keys:
        lines += _section(rows, key)
    return "\n".join(lines)


def _table_row(rows: list[Row], key: tuple[str, str]) -> str:
    mine = [r for r in rows if (r.notebook, r.grade_id) == key]
    scored = _scored(rows, key)
    top = mine[0].max_score
    s = question_stats([r.score for r in scored], top)
    test = any(r.test for r in mine)
    fails, judged = failing(mine)
    fail = f"{_pct(fails / judged)} ({fails} of {judged})" if test and judged else "–"
    name = key[1] if len({r.notebook for r in rows}) == 1 else f"{key[0]}: {key[1]}"
    return (f"| {name} | {'test' if test else 'by hand'} | {top:g} | {s['n']} | {_num(s['mean'])} | "
            f"{_num(s['median'])} | {_pct(s['full'])} | {_pct(s['partial'])} | {_pct(s['zero'])} | {fail} |")


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
    (out / "report.md").write_text(render(aid, rows, keys, missing, "scores.png"), encoding="utf-8")
    print(f"{aid}: report written to {out / 'report.md'} (with scores.png and scores.csv)")
    flagged = suspicious_students(rows)
    if flagged:
        print(f"{len(flagged)} suspicious submission(s), listed in report.md: {', '.join(flagged)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
