"""Rebuild the student notebooks in notebooks/ from the instructor sources in solutions/.

    python3 course.py generate            # rewrite notebooks/
    python tools/generate_notebooks.py --out DIR   # write somewhere else (tests compare)

Runs ``nbgrader generate_assignment`` for every ``solutions/<id>/`` with the
repository's nbgrader_config.py and a throw-away gradebook, so the result is
exactly what an instructor's release contains: solutions replaced by stubs,
hidden tests and outputs removed, graded cells locked and checksummed.
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


def generate(out: Path, root: Path = ROOT) -> list[Path]:
    """Write the student version of every assignment under ``out``; return the notebooks."""
    out = out.resolve()
    ids = assignment_ids(root)
    with tempfile.TemporaryDirectory() as tmp:
        for aid in ids:
            cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", aid, "--force",
                   f"--CourseDirectory.release_directory={tmp}/release",
                   f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db", "--log-level=WARN"]
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
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks",
                        help="where to write the student notebooks (default: notebooks/)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(f"wrote {path.relative_to(args.out.resolve().parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
