"""How fast does a class grade? ``course.py autograde`` on a synthetic class, several ways.

    .venv/bin/python benchmarks/bench_autograde.py                       # 40 submissions of 01
    .venv/bin/python benchmarks/bench_autograde.py --students 12         # a smaller class
    .venv/bin/python benchmarks/bench_autograde.py --modes 2,cluster     # only some ways

A throw-away course releases one notebook (default 01_why_lr_matters) and receives a
class: one submission whose first exercise loops forever, a tenth untouched, three
tenths with one plausible wrong answer each (tests/wrong_answers/), the rest the
solution. The same class is then graded from scratch each way:

    nbgrader   plain ``nbgrader autograde <id>``, one submission at a time
    1, 2, ...  ``course.py autograde <id> --workers N``
    cluster    ``course.py autograde <id> --cluster`` on a Dask LocalCluster of 2 worker
               processes with 1 thread each, on this machine

and the script prints, per way: wall time, submissions per minute, CPU seconds per
submission (every process involved: nbgrader, workers, sandboxes, kernels, the
scheduler; sampled every 0.5 s), the speed-up over one worker, and whether every grade
equals plain nbgrader's. Then, on a graded solution, where a submission's time goes:
kernel start and set-up, test cells, and the cells no test depends on (a def-use slice
over the notebook's cells); the notebook is run whole and without those cells, to
measure what skipping them would save and whether the tests still give the same
verdicts. It prints figures and asserts nothing about timing.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests" / "wrong_answers"))
COPIED = ["course.py", "nbgrader_config.py", "pyproject.toml", "requirements.txt", "requirements-no-deps.txt", "tools"]
LOOP = "    while True:\n        pass\n"


def env() -> dict:
    out = dict(os.environ, OMP_NUM_THREADS="1")
    out["PATH"] = str(Path(sys.executable).parent) + os.pathsep + out.get("PATH", "")
    return out


def sh(course: Path, *args: str) -> str:
    done = subprocess.run(list(args), cwd=course, env=env(), capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: some submission not graded (reported in the output)
        raise SystemExit(f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


# ----------------------------------------------------------------- the class

def answers(aid: str) -> dict[str, str]:
    """Each exercise's solution, as a learner would write it (the solution markers removed)."""
    out = {}
    for cell in nbformat.read(ROOT / "solutions" / aid / f"{aid}.ipynb", as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            out[meta["grade_id"]] = "\n".join(l for l in cell.source.splitlines() if not l.strip().startswith("### "))
    return out


def looping(source: str) -> str:
    """The exercise's first function with a body that never returns."""
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    header = source.splitlines()[fn.lineno - 1]
    return header + "\n" + LOOP


def learner(released, edits: dict[str, str]):
    nb = nbformat.from_dict(released)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in edits and cell.cell_type == "code":
            cell.source = edits[gid]
    return nb


def the_class(aid: str, released, n: int) -> dict:
    """student -> (kind, notebook): 1 looping, a tenth untouched, three tenths wrong, the rest right."""
    import importlib

    solved = answers(aid)
    wrong = [(gid, code) for gid, mistakes in importlib.import_module(f"n{aid}").WRONG.items()
             for code in mistakes.values()]
    first = next(iter(solved))
    kinds = ["looping"] + ["untouched"] * max(1, n // 10) + ["wrong"] * round(0.3 * n)
    kinds += ["solution"] * (n - len(kinds))
    out = {}
    for i, kind in enumerate(kinds[:n]):
        if kind == "solution":
            nb = learner(released, solved)
        elif kind == "untouched":
            nb = learner(released, {})
        elif kind == "looping":
            nb = learner(released, {**solved, first: looping(solved[first])})
        else:
            gid, code = wrong[i % len(wrong)]
            nb = learner(released, {**solved, gid: code})
        out[f"s{i:03d}"] = (kind, nb)
    return out


def template(folder: Path, aid: str, n: int) -> tuple[Path, dict]:
    folder.mkdir()
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, folder / name)
    shutil.copytree(ROOT / "solutions" / aid, folder / "solutions" / aid)
    (folder / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    sh(folder, "nbgrader", "generate_assignment", aid, "--force", "--log-level=WARN")
    released = nbformat.read(folder / "notebooks" / aid / f"{aid}.ipynb", as_version=4)
    kinds = {}
    for student, (kind, nb) in the_class(aid, released, n).items():
        (folder / "submitted" / student / aid).mkdir(parents=True)
        nbformat.write(nb, folder / "submitted" / student / aid / f"{aid}.ipynb")
        kinds[student] = kind
    return folder, kinds


# ----------------------------------------------------------------- measuring

class CpuMeter:
    """CPU seconds of this process and every process under it, sampled while a block runs."""

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self.seen: dict = {}
        self.stop = threading.Event()

    def sample(self):
        import psutil

        try:
            tree = self.me.children(recursive=True)
        except psutil.Error:
            return
        for p in tree:
            try:
                t = p.cpu_times()
                self.seen[p.pid, p.create_time()] = t.user + t.system
            except psutil.Error:
                pass

    def run(self):
        while not self.stop.wait(0.5):
            self.sample()

    def __enter__(self):
        t = self.me.cpu_times()
        self.own = t.user + t.system
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sample()
        self.stop.set()
        self.thread.join()
        t = self.me.cpu_times()
        self.seconds = sum(self.seen.values()) + (t.user + t.system - self.own)


def grades(course: Path, aid: str) -> dict:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(aid):
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[sub.student_id, g.name] = (g.auto_score, g.max_score, g.needs_manual_grade)
    return out


def grade(way: str, course: Path, aid: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, output) of grading the class in ``course`` one way."""
    cmd = [sys.executable, "course.py", "autograde", aid]
    with CpuMeter() as cpu:
        started = time.monotonic()
        if way == "nbgrader":
            out = sh(course, "nbgrader", "autograde", aid, "--log-level=WARN")
        elif way == "cluster":
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:
                started = time.monotonic()  # the cluster's start is not grading
                out = sh(course, *cmd, "--cluster", cluster.scheduler_address)
                wall = time.monotonic() - started
        else:
            out = sh(course, *cmd, "--workers", way)
        if way != "cluster":
            wall = time.monotonic() - started
    return wall, cpu.seconds, out


# ----------------------------------------------------------------- where a submission's time goes

def _names(source: str) -> tuple[set, set]:
    """(names a cell binds at top level, names it reads anywhere); magics and shell lines dropped."""
    code = "\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(), set()
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, read


def needed_cells(nb) -> set[int]:
    """Code cells the graded cells depend on: the first cell (set-up), every graded or solution
    cell, and, backwards, every cell that binds a name a needed cell reads."""
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    keep, wanted = set(), set()
    for i, cell in reversed(code):
        meta = cell.metadata.get("nbgrader", {})
        bound, read = _names(cell.source)
        if meta.get("grade") or meta.get("solution") or i == code[0][0] or bound & wanted:
            keep.add(i)
            wanted |= read
    return keep


def cell_seconds(nb) -> dict[int, float]:
    from grading_feedback import run_time

    return {i: run_time(c) or 0.0 for i, c in enumerate(nb.cells) if c.cell_type == "code"}


def run_notebook(nb, folder: Path) -> tuple[float, dict]:
    """Wall seconds of running ``nb`` as autograde would (fresh kernel, 60 s a cell, errors allowed),
    and each graded cell's error names."""
    from nbclient import NotebookClient

    os.environ["NBGRADER_EXECUTION"] = "autograde"
    started = time.monotonic()
    NotebookClient(nb, timeout=60, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    took = time.monotonic() - started
    verdicts = {c.metadata["nbgrader"]["grade_id"]: [o.get("ename") for o in c.outputs if o.output_type == "error"]
                for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    return took, verdicts


def where_time_goes(course: Path, aid: str, student: str, worker_seconds: float | None) -> None:
    graded = nbformat.read(course / "autograded" / student / aid / f"{aid}.ipynb", as_version=4)
    seconds, keep = cell_seconds(graded), needed_cells(graded)
    tests = {i for i, c in enumerate(graded.cells) if c.metadata.get("nbgrader", {}).get("grade")}
    total = sum(seconds.values())
    skippable = {i for i in seconds if i not in keep}
    print(f"\nWhere a solution's time goes ({student}, cells as nbclient timed them while grading):")
    print(f"  all cells {total:.1f} s; test cells {sum(seconds[i] for i in tests if i in seconds):.1f} s; "
          f"cells no test depends on ({len(skippable)} of {len(seconds)}) {sum(seconds[i] for i in skippable):.1f} s"
          + (f"; the rest of its {worker_seconds:.0f} s on the worker is starting nbgrader and the sandboxed "
             "kernel, and recording" if worker_seconds else ""))
    top = sorted(seconds.items(), key=lambda kv: -kv[1])[:5]
    print("  slowest cells: " + ", ".join(f"cell {i + 1}{'' if i in keep else ' (no test needs it)'} "
                                          f"{s:.1f} s" for i, s in top))
    with tempfile.TemporaryDirectory() as tmp:
        full = nbformat.from_dict(graded)
        for c in full.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        pruned = nbformat.from_dict(full)
        pruned.cells = [c for i, c in enumerate(pruned.cells) if c.cell_type != "code" or i in keep]
        whole, verdict_whole = run_notebook(full, Path(tmp))
        part, verdict_part = run_notebook(pruned, Path(tmp))
    print(f"  run whole (no sandbox): {whole:.1f} s; without the cells no test depends on: {part:.1f} s "
          f"({100 * (1 - part / whole):.0f} % less); same test verdicts: {verdict_whole == verdict_part}")


# ----------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40, help="class size, 2 to 1000 (default 40)")
    parser.add_argument("--assignment", default="01_why_lr_matters")
    parser.add_argument("--modes", default="nbgrader,1,2,cluster",
                        help="comma-separated: nbgrader, a number of local workers, cluster")
    args = parser.parse_args(argv)
    if not 2 <= args.students <= 1000:
        parser.error(f"--students must be between 2 and 1000, got {args.students}")
    ways = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        base, kinds = template(Path(tmp) / "template", args.assignment, args.students)
        counts = {k: list(kinds.values()).count(k) for k in dict.fromkeys(kinds.values())}
        print(f"{args.assignment}: a class of {args.students} ({', '.join(f'{v} {k}' for k, v in counts.items())}) "
              f"on {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f}")
        rows, reference, last = [], None, None
        for way in ways:
            course = Path(shutil.copytree(base, Path(tmp) / f"way-{way}", symlinks=True))
            wall, cpu, out = grade(way, course, args.assignment)
            got = grades(course, args.assignment)
            reference = reference if reference is not None else (got if way == "nbgrader" else None)
            loop = re.search(r"slowest: (s\d+) (\d+)", out)
            rows.append((way, wall, cpu, got, loop.group(2) if loop else "–"))
            print(f"  graded '{way}' in {wall:.0f} s (load average now {os.getloadavg()[0]:.1f})", flush=True)
            last = course
        one = next((r[1] for r in rows if r[0] == "1"), None)
        print(f"\n| way | wall s | submissions/min | CPU s/submission | speed-up over 1 worker | "
              "slowest submission s | grades = nbgrader's |")
        print("|---|---|---|---|---|---|---|")
        for way, wall, cpu, got, slowest in rows:
            same = "–" if reference is None else ("yes" if got == reference else "NO")
            label = {"nbgrader": "nbgrader autograde, one at a time", "cluster": "--cluster (LocalCluster, 2 workers)"}
            print(f"| {label.get(way, f'--workers {way}')} | {wall:.0f} | {60 * args.students / wall:.2f} | "
                  f"{cpu / args.students:.1f} | {f'{one / wall:.2f}' if one else '–'} | {slowest} | {same} |")
        solution = next((s for s, k in kinds.items() if k == "solution"), None)
        if solution is None:  # a class too small to hold a solution (the looping and untouched come first)
            print("\nNo solution in a class this small: no breakdown of where a submission's time goes.")
        else:
            where_time_goes(last, args.assignment, solution, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
