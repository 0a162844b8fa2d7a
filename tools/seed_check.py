"""Re-run the solution notebooks on shifted seeds and compare what their prose relies on.

    python3 course.py seedcheck                  # every notebook, seed shifts 1 and 2
    python3 course.py seedcheck 01 03 --shifts 3 # notebooks 01 and 03, shift 3 only

A learner re-runs a notebook on another CPU, where chaotic training runs end
differently. So every claim about training is backed by a verdict line
("verdict: ...: True", printed by ``helpers.verdict``), and this check re-runs each
notebook with ``LR_COURSE_SEED_SHIFT`` set, which moves every seed set. It reports

* a verdict line that differs from the stored one (the claim depends on the seed);
* a number quoted in the markdown that the stored outputs print (to the quoted
  precision) but a shifted run does not (the prose quotes a seed-dependent number);
* a cell marked ``# NBVAL_CHECK_OUTPUT`` whose output changes with the seed (nbval
  would compare raw training numbers exactly), or a verdict printed by a cell
  that is not marked (nbval would not check it).

Exit status 0 when nothing is reported.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SHIFT_ENV = "LR_COURSE_SEED_SHIFT"
CHECKED = "# NBVAL_CHECK_OUTPUT"
VERDICT = "verdict: "
# Numbers worth checking: with a decimal point, a percent sign or an exponent. Plain
# integers (epochs, seeds, layer sizes) are set by the code, not measured.
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?%|\d+(?:\.\d+)?e[-+−]?\d+|\d+\.\d+)(?![\w%])")


def cell_text(cell) -> str:
    """The text a code cell printed or returned (no images, no widget state)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in {"execute_result", "display_data"}:
            data = out.get("data", {})
            if "image/png" not in data and "application/vnd.jupyter.widget-view+json" not in data:
                parts.append(data.get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def verdict_lines(nb) -> list[str]:
    return [line for cell in nb.cells if cell.cell_type == "code"
            for line in cell_text(cell).splitlines() if line.startswith(VERDICT)]


def _value(token: str) -> tuple[float, float, bool]:
    """(value, rounding step, is percent) of a number as written."""
    percent = token.endswith("%")
    body = token.rstrip("%").replace("−", "-")
    mantissa = body.split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(body.split("e")[1]) if "e" in body else 0
    return float(body), 10.0 ** (exponent - decimals), percent


def numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(text))


def _matches(quoted: str, printed: set[str]) -> bool:
    """Does some printed number equal ``quoted`` when rounded to the precision it is quoted at?"""
    q, step, q_percent = _value(quoted)
    for token in printed:
        v, _, percent = _value(token)
        if percent == q_percent and abs(v - q) <= step / 2 * (1 + 1e-9):
            return True
    return False


def quoted_numbers(nb) -> set[str]:
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return numbers(text)


def output_numbers(nb) -> set[str]:
    return set().union(*(numbers(cell_text(c)) for c in nb.cells if c.cell_type == "code"))


def compare(stored, shifted, shift: int) -> list[str]:
    """Problems found between the stored outputs and a run at seed shift ``shift``."""
    problems = []
    before, after = verdict_lines(stored), verdict_lines(shifted)
    if before != after:
        changed = [f"    stored:  {a}\n    shift {shift}: {b}" for a, b in zip(before, after) if a != b]
        if len(before) != len(after):
            changed.append(f"    {len(before)} verdict lines stored, {len(after)} at shift {shift}")
        problems.append("verdicts differ:\n" + "\n".join(changed))
    printed_before, printed_after = output_numbers(stored), output_numbers(shifted)
    for quoted in sorted(quoted_numbers(stored)):
        if _matches(quoted, printed_before) and not _matches(quoted, printed_after):
            problems.append(f"the markdown quotes {quoted}, which the stored outputs print "
                            f"but the run at shift {shift} does not")
    for index, (a, b) in enumerate(zip(stored.cells, shifted.cells)):
        if a.cell_type != "code":
            continue
        checked = a.source.lstrip().startswith(CHECKED)
        if checked and cell_text(a) != cell_text(b):
            first = next((l for l in a.source.splitlines()[1:] if l.strip()), "")
            problems.append(f"cell {index} ({first[:60]!r}) is marked NBVAL_CHECK_OUTPUT but prints "
                            f"other text at shift {shift}")
        if not checked and any(l.startswith(VERDICT) for l in cell_text(a).splitlines()):
            problems.append(f"cell {index} prints a verdict but is not marked {CHECKED}")
    return problems


def run_shifted(path: Path, shift: int, timeout: int = 600):
    """Execute a copy of ``path`` with every seed set shifted by ``shift``; return it."""
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, PYTHONHASHSEED="0", **{SHIFT_ENV: str(shift)})
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}},
                            record_timing=False, store_widget_state=False)
    client.execute(env=env)
    return nb


def _check_one(job: tuple[Path, int]) -> tuple[Path, int, list[str]]:
    path, shift = job
    stored = nbformat.read(path, as_version=4)
    return path, shift, compare(stored, run_shifted(path, shift), shift)


def check(paths: list[Path], shifts: list[int], workers: int = 2) -> dict[tuple[str, int], list[str]]:
    """Run every (notebook, shift) pair, ``workers`` at a time; return the problems of each."""
    jobs = [(p, s) for p in paths for s in shifts]
    # spawn, not fork: the caller may hold threads (torch, a test runner) that fork would copy badly
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return {(p.stem, s): problems for p, s, problems in pool.map(_check_one, jobs)}


def solution_paths(prefixes: list[str] | None = None) -> list[Path]:
    paths = sorted(p for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
    if prefixes:
        paths = [p for p in paths if p.stem.startswith(tuple(prefixes))]
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="notebook id prefixes (default: all)")
    parser.add_argument("--shifts", nargs="+", type=int, default=[1, 2], help="seed shifts (default: 1 2)")
    args = parser.parse_args(argv)
    paths = solution_paths(args.prefixes)
    if not paths:
        print(f"no solution notebook matches {args.prefixes}", file=sys.stderr)
        return 2
    results = check(paths, args.shifts)
    bad = 0
    for (stem, shift), problems in results.items():
        print(f"{stem} at shift {shift}: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
        for p in problems:
            print("  - " + p)
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
