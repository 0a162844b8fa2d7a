"""Grade the free-text answers of an assignment without a browser.

    python3 course.py grade 01                                   # list the answers waiting for a grade
    python3 course.py grade 01 ada q1-answer 2.5 --comment "..."  # give ada 2.5 points on q1-answer

Run it after ``nbgrader autograde``, from the repository root (it uses ./gradebook.db).
The listing shows each learner's answer next to the points available; the model
answer is in ``solutions/<id>/<id>.ipynb``. Giving a grade records the score and
the comment, and clears the "needs manual grade" flag, exactly as the formgrader
does; ``nbgrader autograde`` keeps it when it grades other submissions later.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

ROOT = Path(__file__).resolve().parents[1]


def assignment_id(spec: str) -> str:
    ids = sorted(p.stem for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
    prefix = spec.zfill(2) if spec.isdigit() else spec
    matches = [i for i in ids if i.startswith(prefix)]
    if len(matches) != 1:
        raise SystemExit(f"'{spec}' should name one assignment; they are: " + ", ".join(ids))
    return matches[0]


def _answer(student: str, aid: str, grade_id: str) -> str:
    path = ROOT / "autograded" / student / aid / f"{aid}.ipynb"
    if not path.exists():
        return "(no autograded notebook found)"
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source.strip() or "(empty)"
    return "(the answer cell was deleted)"


def pending(gb: Gradebook, aid: str) -> list[str]:
    """Report lines for every free-text grade that still needs a hand grade."""
    lines = []
    for sub in gb.assignment_submissions(aid):
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.cell_type == "markdown" and grade.needs_manual_grade:
                    text = _answer(sub.student_id, aid, grade.name).replace("\n", "\n      ")
                    lines.append(f"{sub.student_id}  {grade.name}  (0–{grade.max_score:g} points)\n      {text}")
    return lines


def give(gb: Gradebook, aid: str, student: str, grade_id: str, score: float, comment: str | None) -> str:
    try:
        grade = gb.find_grade(grade_id, aid, aid, student)
    except MissingEntry:
        raise SystemExit(f"no grade '{grade_id}' for student '{student}' in {aid}: "
                         "check the names with `python3 course.py grade " + aid + "`") from None
    if not 0 <= score <= grade.max_score:
        raise SystemExit(f"score must lie in [0, {grade.max_score:g}] for {grade_id}, got {score:g}")
    grade.manual_score = score
    grade.needs_manual_grade = False
    if comment is not None:
        gb.find_comment(grade_id, aid, aid, student).manual_comment = comment
    gb.db.commit()
    return f"{student} {aid} {grade_id}: {score:g} / {grade.max_score:g}" + (" (with a comment)" if comment else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:5]))
    parser.add_argument("assignment", help="assignment id or its number (01)")
    parser.add_argument("student", nargs="?", help="student id")
    parser.add_argument("grade_id", nargs="?", help="the answer's grade id, e.g. q1-answer")
    parser.add_argument("score", nargs="?", type=float, help="points to give")
    parser.add_argument("--comment", help="a comment shown in the learner's feedback")
    parser.add_argument("--db", default=str(ROOT / "gradebook.db"), help="gradebook (default ./gradebook.db)")
    args = parser.parse_args(argv)
    aid = assignment_id(args.assignment)
    if not Path(args.db).exists():
        raise SystemExit(f"no gradebook at {args.db}: release and autograde first (docs/instructors.md)")
    with Gradebook(f"sqlite:///{Path(args.db).resolve()}") as gb:
        if args.student is None:
            lines = pending(gb, aid)
            print("\n".join(lines) if lines else f"{aid}: no answer is waiting for a hand grade.")
            return 0
        if args.grade_id is None or args.score is None:
            parser.error("give the student, the grade id and the score (or only the assignment, to list)")
        print(give(gb, aid, args.student, args.grade_id, args.score, args.comment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
