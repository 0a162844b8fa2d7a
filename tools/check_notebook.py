"""Run one of your notebooks from scratch and report its tests.

    python3 course.py check 01                       # notebooks/01_*/01_*.ipynb
    python3 course.py check path/to/notebook.ipynb

Runs a copy of the notebook top to bottom in a fresh kernel (your file is not
changed) and lists every graded test cell as passed or failed, with the score on the
visible tests. Hidden tests run only when an instructor grades the notebook.
Exit status 0 when every visible test passes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def find_notebook(spec: str) -> Path:
    path = Path(spec)
    if path.suffix == ".ipynb":
        if not path.exists():
            raise SystemExit(f"no such notebook: {spec}")
        return path
    matches = sorted((ROOT / "notebooks").glob(f"{spec}*/*.ipynb"))
    matches = [m for m in matches if m.stem == m.parent.name]
    if len(matches) != 1:
        found = ", ".join(m.stem for m in matches) or "none"
        raise SystemExit(f"'{spec}' should name one notebook in notebooks/ (matches: {found})")
    return matches[0]


def _error(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            return f"{out.ename}: {out.evalue}".strip().splitlines()[0][:200]
    return None


def check(path: Path, timeout: int = 60) -> tuple[float, float, list[str]]:
    """Execute ``path`` (a copy); return (points passed, visible points, report lines)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}},
                            record_timing=False, store_widget_state=False)
    client.execute()
    got = total = 0.0
    lines = []
    for index, cell in enumerate(nb.cells, start=1):
        meta = cell.metadata.get("nbgrader", {})
        error = _error(cell) if cell.cell_type == "code" else None
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            points = float(meta.get("points", 0))
            total += points
            if error is None:
                got += points
                lines.append(f"  passed  {meta['grade_id']} ({points:g} pt)")
            else:
                hint = " (exercise not attempted yet)" if "NotImplementedError" in error else ""
                lines.append(f"  FAILED  {meta['grade_id']} ({points:g} pt): {error}{hint}")
        elif meta.get("grade") and cell.cell_type == "markdown":
            state = "not answered yet" if "YOUR ANSWER HERE" in cell.source else "answered"
            lines.append(f"  by hand {meta['grade_id']} ({float(meta.get('points', 0)):g} pt): {state}")
        elif error is not None:
            lines.append(f"  ERROR   in cell {index} (not a test): {error}")
    return got, total, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="a notebook id prefix such as 01, or a path")
    args = parser.parse_args(argv)
    path = find_notebook(args.notebook)
    print(f"Running {path} from scratch ...", flush=True)
    got, total, lines = check(path)
    print("\n".join(lines))
    print(f"Visible tests: {got:g} / {total:g} points.")
    return 0 if got == total else 1


if __name__ == "__main__":
    sys.exit(main())
