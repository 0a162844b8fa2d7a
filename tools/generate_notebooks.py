"""Release: rebuild the student notebooks in notebooks/ from solutions/ and register them.

    python3 course.py generate                     # rewrite notebooks/, register in ./gradebook.db
    python tools/generate_notebooks.py --out DIR   # write somewhere else, register nowhere (tests)

Runs ``nbgrader generate_assignment <id> --force`` for every ``solutions/<id>/``
with the repository's nbgrader_config.py, so the result is exactly what an
instructor's release contains: solutions replaced by stubs, hidden tests and
outputs removed, graded cells locked and checksummed. Each assignment and its
graded cells are registered in the course's gradebook, which ``nbgrader
autograde`` needs; registering again after an edit keeps the grades already there.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def assignment_ids(root: Path = ROOT) -> list[str]:
    """Every folder of solutions/ that holds a notebook of the same name."""
    return sorted(p.parent.name for p in (root / "solutions").glob("*/*.ipynb")
                  if p.stem == p.parent.name)


def nbgrader_env() -> dict:
    # nbgrader starts helper executables (alembic) that live next to this Python.
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def generate(out: Path, root: Path = ROOT, gradebook: Path | None = None) -> list[Path]:
    """Write the student version of every assignment under ``out``; return the notebooks.

    ``gradebook``: the database to register the assignments in (a throw-away one if None).
    """
    out = out.resolve()
    ids = assignment_ids(root)
    with tempfile.TemporaryDirectory() as tmp:
        db = (gradebook or Path(tmp) / "gradebook.db").resolve()
        for aid in ids:
            cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", aid, "--force",
                   f"--CourseDirectory.release_directory={tmp}/release",
                   f"--CourseDirectory.db_url=sqlite:///{db}", "--log-level=WARN"]
            done = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stdout + done.stderr)
                raise SystemExit(f"nbgrader could not generate {aid}")
        if out.exists():
            for child in out.iterdir():
                if child.is_dir() and child.name not in ids:
                    shutil.rmtree(child)  # a notebook removed from solutions/
        for aid in ids:
            target = out / aid
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(Path(tmp) / "release" / aid, target)
    return sorted(out.glob("*/*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the student notebooks (default: notebooks/, registered "
                             "in ./gradebook.db; elsewhere: registered nowhere)")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "notebooks"
    gradebook = ROOT / "gradebook.db" if args.out is None else None
    for path in generate(out, gradebook=gradebook):
        print(f"wrote {path.relative_to(out.resolve().parent)}")
    if gradebook:
        print(f"registered {len(assignment_ids())} assignments in {gradebook.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
