"""Run the solution notebooks top to bottom and store their fresh outputs.

    python3 course.py execute                 # every notebook in solutions/
    python3 course.py execute 01 03           # those whose id starts with 01 or 03

Each notebook runs in a new kernel from its own folder, as a learner would run it;
the wall time of each is printed. Run ``python3 course.py generate`` afterwards.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place; return the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            record_timing=False, store_widget_state=False)
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="notebook id prefixes (default: all)")
    args = parser.parse_args(argv)
    paths = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    if args.prefixes:
        paths = [p for p in paths if p.stem.startswith(tuple(args.prefixes))]
    for path in paths:
        print(f"{path.relative_to(ROOT)}: {execute(path):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
