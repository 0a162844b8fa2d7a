"""Run one of your notebooks from scratch and report its tests.

    python3 course.py check 01                       # notebooks/01_*/01_*.ipynb (or: check 1)
    python3 course.py check path/to/notebook.ipynb   # relative to the folder you are in

Runs a copy of the notebook top to bottom in a fresh kernel (your file is not
changed) and lists every graded test cell as passed or failed, with the score on the
visible tests. Hidden tests run only when an instructor grades the notebook. A
cell that runs longer than 60 s (an infinite loop, say) is stopped and reported as
timed out; the cells after it still run, as when the notebook is graded.
Exit status 0 when every visible test passes.
"""
from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


TIMED_OUT = "CellTimeout"


def notebook_ids() -> list[str]:
    return sorted(p.stem for p in (ROOT / "notebooks").glob("*/*.ipynb") if p.stem == p.parent.name)


def find_notebook(spec: str) -> Path:
    """A notebook from a path, an id (``01_why_lr_matters``) or its number (``01``, ``1``)."""
    path = Path(spec)
    if path.suffix == ".ipynb":
        if not path.exists():
            raise SystemExit(f"no such notebook: {spec}")
        return path.resolve()
    ids = notebook_ids()
    prefix = spec.zfill(2) if spec.isdigit() else spec
    matches = [i for i in ids if i.startswith(prefix)]
    if len(matches) != 1:
        found = f"'{spec}' matches " + ", ".join(matches) if matches else f"no notebook matches '{spec}'"
        raise SystemExit(f"{found}; the notebooks are: " + ", ".join(ids))
    return ROOT / "notebooks" / matches[0] / f"{matches[0]}.ipynb"


def _error(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            return f"{out.ename}: {out.evalue}".strip().splitlines()[0][:200]
    return None


def _heading(markdown: str) -> str | None:
    """The last heading of a Markdown cell (``## Exercise 1``), as the table of contents shows it."""
    found = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", markdown, flags=re.M)
    return found[-1] if found else None


def _first_line(source: str) -> str:
    """The cell's first line that is not blank or a comment, shortened: what the learner sees of it."""
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip() if len(line.strip()) <= 50 else line.strip()[:47] + "..."
    return source.strip().splitlines()[0][:50] if source.strip() else "(empty)"


def _where(cell, heading: str | None) -> str:
    """A cell named as a learner finds it in JupyterLab, which numbers no cells: the section
    it is in and its first line (``under "Practice exercise (1 point)", the cell "def f(x):"``)."""
    section = f'under "{heading}", ' if heading else ""
    return f'({section}the cell starting "{_first_line(cell.source)}")'


def _untouched(error: str) -> bool:
    """The stub of an exercise not attempted yet raises ``NotImplementedError``."""
    return error.startswith("NotImplementedError")


def check(path: Path, timeout: int = 60) -> tuple[float, float, list[str]]:
    """Execute ``path`` (a copy); return (points passed, visible points, report lines)."""
    nb = nbformat.read(path, as_version=4)
    timed_out: set[int] = set()

    def on_cell_executed(cell, cell_index, execute_reply):
        if execute_reply["content"].get("ename") == TIMED_OUT:
            timed_out.add(cell_index)

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True,
                            error_on_timeout={"ename": TIMED_OUT, "evalue": "", "traceback": []},
                            on_cell_executed=on_cell_executed,
                            resources={"metadata": {"path": str(path.parent)}},
                            record_timing=False, store_widget_state=False)
    client.log.setLevel(logging.CRITICAL)  # the report below says what timed out
    # The kernel's own start-up warnings (transport, debugger) are not the learner's business.
    client.execute(stderr=subprocess.DEVNULL)
    got = total = 0.0
    lines = []
    heading = None  # the section a cell is in, as JupyterLab's table of contents names it
    untouched = False  # the last exercise cell is still the stub: its tests fail for that reason
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown":
            heading = _heading(cell.source) or heading
        error = _error(cell) if cell.cell_type == "code" else None
        if index in timed_out:
            error = f"timed out after {timeout} s (an endless loop?), stopped"
        if meta.get("solution") and cell.cell_type == "code":
            untouched = error is not None and _untouched(error)
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            points = float(meta.get("points", 0))
            total += points
            if error is None:
                got += points
                lines.append(f"  passed  {meta['grade_id']} ({points:g} pt)")
            elif untouched or _untouched(error):
                lines.append(f"  FAILED  {meta['grade_id']} ({points:g} pt): the exercise is not attempted yet")
            else:
                lines.append(f"  FAILED  {meta['grade_id']} ({points:g} pt): {error}")
        elif meta.get("grade") and cell.cell_type == "markdown":
            state = "not answered yet" if "YOUR ANSWER HERE" in cell.source else "answered"
            lines.append(f"  by hand {meta['grade_id']} ({float(meta.get('points', 0)):g} pt): {state}")
        elif error is not None and meta.get("solution") and untouched:
            lines.append(f"  TO DO   your answer {_where(cell, heading)}: not attempted yet")
        elif error is not None and meta.get("solution"):
            lines.append(f"  ERROR   in your answer {_where(cell, heading)}: {error}")
        elif error is not None:
            lines.append(f"  ERROR   in a cell that is not a test, {_where(cell, heading)}: {error}")
    return got, total, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="a notebook number such as 01, an id, or a path")
    parser.add_argument("--timeout", type=int, default=60, help="seconds a cell may run (default 60, as in grading)")
    args = parser.parse_args(argv)
    path = find_notebook(args.notebook)
    print(f"Running {path} from scratch ...", flush=True)
    got, total, lines = check(path, timeout=args.timeout)
    print("\n".join(lines))
    print(f"Visible tests: {got:g} / {total:g} points.")
    return 0 if got == total else 1


if __name__ == "__main__":
    sys.exit(main())
