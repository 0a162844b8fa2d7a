"""Key press -> new figure, in a real browser, for every slider of every demo.

JupyterLab serves fresh copies of the solution notebooks; headless Chromium runs each
one, then moves every slider of every demo with the keyboard (``--repeats`` times, one
step right or left) and measures, in the browser's clock, the time from the key press
to the first frame that shows the new figure. Prints a table (median and max per demo)
against the targets: 250 ms for demos that only redraw, 1.5 s for demos that train a
model on every move. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/bench_widgets.py                  # every notebook, ~8 min on 2 cores
    .venv/bin/python benchmarks/bench_widgets.py 01 02 --repeats 3

Needs Debian's ``chromium`` (installed with apt-get when run as root) and the ``dev``
extra (playwright).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from browser_driver import (browser_page, close_lab_notebooks, copy_without_outputs,  # noqa: E402
                            exercise_demos, jupyter_lab, open_lab_notebook, run_all_lab)
from generate_notebooks import assignment_ids  # noqa: E402

# Demos that train a model on every move (the others only redraw), by title.
TRAINING = ("LR range test", "Warmup on the digits MLP")
TARGET_MS = {"redraw": 250, "training": 1500}


def measure(ids: list[str], repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for aid in ids:
            copy_without_outputs(ROOT / "solutions" / aid / f"{aid}.ipynb", tmp / "root" / aid / f"{aid}.ipynb")
        with jupyter_lab(tmp / "root", tmp) as url, browser_page() as page:
            if page is None:
                sys.exit("Chromium is not installed (Debian: apt-get install chromium)")
            for aid in ids:
                open_lab_notebook(page, url, f"{aid}/{aid}.ipynb")
                run = run_all_lab(page)
                print(f"{aid}: ran in {run['seconds']:.1f} s", file=sys.stderr)
                for rec in exercise_demos(page, repeats=repeats):
                    rows.append({"notebook": aid, **rec})
                close_lab_notebooks(page)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| notebook | demo | kind | sliders | moves | median | max | target | meets |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["notebook"], row["demo"]), []).append(row)
    for (aid, demo), recs in groups.items():
        kind = "training" if demo.startswith(TRAINING) else "redraw"
        times = [t for r in recs for t in r.get("ms", [])]
        failed = [r["slider"] for r in recs if "error" in r]
        med, top = (statistics.median(times), max(times)) if times else (float("nan"),) * 2
        verdict = "no: " + ", ".join(failed) + " failed" if failed else (
            "yes" if med <= TARGET_MS[kind] else "no")
        lines.append(f"| {aid} | {demo[:40]} | {kind} | {len(recs)} | {len(times)} | {med:.0f} ms | "
                     f"{top:.0f} ms | ≤ {TARGET_MS[kind]} ms | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="id prefixes (default: every notebook)")
    parser.add_argument("--repeats", type=int, default=5, help="moves per slider (default 5)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be an integer >= 1, got {args.repeats}")
    ids = [a for a in assignment_ids(ROOT) if not args.notebooks or a.startswith(tuple(args.notebooks))]
    if not ids:
        parser.error(f"no notebook matches {args.notebooks}")
    print(table(measure(ids, args.repeats)))


if __name__ == "__main__":
    main()
