"""Autograde a class: every submission of an assignment, on several workers, each in its sandbox.

    python3 course.py autograde 01                      # as many local workers as cores
    python3 course.py autograde 01 --workers 4
    python3 course.py autograde 01 --cluster tcp://scheduler:8786   # a Dask cluster's workers
    python3 course.py autograde 01 --force              # grade again what is already graded

Grades the submissions in submitted/<student>/<assignment>/ that are not autograded yet
(or whose timestamp.txt is newer; all of them with --force), as ``nbgrader autograde
<assignment>`` does one at a time, and with the same result: each worker runs nbgrader's
own autograde on a private copy of what grading needs (the configuration, tools/, a
snapshot of the gradebook, the assignment's source files but no solution notebook), in
the grading sandbox (tools/grading_sandbox.py), and sends back the notebook as the kernel
left it; this process alone then records it in the real gradebook, running nbgrader's
autograde with the execute step replayed (tools/grading_replay.py). One writer, no
locking, and a worker needs no access to the course folder.

--workers N (1 to 64; default: the machine's cores) runs N submissions at a time on this
machine. --cluster ADDRESS sends them to the workers of a running Dask distributed
scheduler instead (docs/instructors.md, "Grading a class"): each worker needs the
course's Python environment (the same versions of nbgrader, torch and the course's
``helpers`` package) and ``bwrap``; everything else travels with each submission.

A progress bar shows the submissions done; lines that deserve a look (a timeout, a
locked cell edited, a submission not graded) appear as they happen, and a summary at the
end gives the time, the throughput, the CPU seconds per submission, the scores and every
submission with a timed-out cell. Exit status: 0 when every submission was graded, 1 when
some were not (they are listed), 2 for a usage error (unknown assignment, no gradebook,
no sandbox).
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
MAX_WORKERS = 64
SLOWEST = 3  # submissions named in the summary's line on time
SLACK_SECONDS = 300  # a worker's nbgrader may run this much past the sandbox's per-submission limit
PRIVATE_ENV = "LR_COURSE_PRIVATE"
LOCAL_ONLY_ENV = ("LR_COURSE_BWRAP", PRIVATE_ENV)  # paths on this machine: not sent to a cluster


# ----------------------------------------------------------------- on a worker
# Standard library only: under --cluster this code travels to the workers by value.

WORKER_CONFIG = """

# Added for a worker of `course.py autograde` (tools/parallel_autograde.py): a private
# copy of the course; keep each executed notebook for the grading process to record.
import sys as _sys
_sys.path.insert(0, {tools!r})
from grading_replay import keep_executed as _keep_executed  # noqa: E402
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
_keep_executed(c, {executed!r})
"""


def _extract(bundle: bytes, folder: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")


def _tree_cpu(pid: int, seen: dict) -> None:
    """Record the CPU seconds so far of ``pid`` and every process under it (the sandboxed kernel
    is not reaped into its grader's resource usage, so it is read while it runs)."""
    import psutil  # a dependency of nbgrader's Jupyter stack and of Dask

    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for process in tree:
        try:
            with process.oneshot():
                times = process.cpu_times()
                seen[process.pid, process.create_time()] = times.user + times.system
        except psutil.Error:
            continue


def _wait(proc: subprocess.Popen, seconds: float) -> tuple[int, float]:
    """(exit status, CPU seconds of the process and everything it started); killed after ``seconds``."""
    deadline = time.monotonic() + seconds
    seen: dict = {}
    while True:
        _tree_cpu(proc.pid, seen)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            seen.pop(next((k for k in seen if k[0] == proc.pid), None), None)  # its own: exact below
            return proc.returncode, usage.ru_utime + usage.ru_stime + sum(seen.values())
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.25)


def _limit_seconds(env: dict) -> float:
    try:
        return float(env.get("LR_COURSE_SANDBOX_SUBMISSION_SECONDS") or 1200) + SLACK_SECONDS
    except ValueError:
        return 1200 + SLACK_SECONDS


_RUNNING: set = set()  # process groups of this process's workers, stopped on Ctrl+C


def run_submission(bundle: bytes, job: dict) -> dict:
    """Autograde one submission in a private copy of the course; return its executed notebooks.

    ``job``: student, assignment, submitted (the submitted folder's name), files
    ({relative path: bytes} of the learner's folder), env (variables to set), private
    (the name, inside the bundle, of the capstone's private parameters, or None).
    Returns student, executed ({notebook: json text}), log, wall and cpu seconds,
    returncode and host.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lr-grade-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        _extract(bundle, course)
        executed = Path(tmp) / "executed"
        with open(course / "nbgrader_config.py", "a", encoding="utf-8") as config:
            config.write(WORKER_CONFIG.format(tools=str(course / "tools"), root=str(course),
                                              db_url=f"sqlite:///{course / 'gradebook.db'}", executed=str(executed)))
        folder = course / job["submitted"] / job["student"] / job["assignment"]
        for name, data in job["files"].items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        # This environment's Python by its real folder: the sandbox shows the kernel the
        # environment at its real path only (a course reached through a symlinked .venv).
        python = os.path.join(os.path.realpath(os.path.dirname(sys.executable)), os.path.basename(sys.executable))
        env = dict(os.environ, **job["env"])
        env["PATH"] = os.path.dirname(python) + os.pathsep + env.get("PATH", "")
        if job.get("private"):
            env[PRIVATE_ENV] = str(course / job["private"])
        log = Path(tmp) / "log.txt"
        cmd = [python, "-m", "nbgrader", "autograde", job["assignment"], f"--student={job['student']}",
               "--force", "--log-level=WARN"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        _RUNNING.add(proc.pid)
        try:
            returncode, cpu = _wait(proc, _limit_seconds(env))
        finally:
            _RUNNING.discard(proc.pid)
        notebooks = {p.stem: p.read_text(encoding="utf-8") for p in sorted(executed.glob("*.ipynb"))}
        return {"student": job["student"], "executed": notebooks, "log": log.read_text(errors="replace"),
                "wall": time.monotonic() - started, "cpu": cpu, "returncode": returncode,
                "host": socket.gethostname()}


# ----------------------------------------------------------------- in the grading process

class UsageError(Exception):
    """Something the instructor can fix: one line, exit status 2."""


def nbgrader_app(course: Path):
    """nbgrader's autograde application for ``course``, configured as ``nbgrader autograde`` is
    there (nbgrader_config.py and Jupyter's config folders), printing nothing itself."""
    import logging

    from nbgrader.apps.autogradeapp import AutogradeApp

    os.chdir(course)
    app = AutogradeApp()
    app.initialize([])
    for handler in list(app.log.handlers):
        app.log.removeHandler(handler)
    app.log.setLevel(logging.WARNING)
    app.log.propagate = False
    return app


def resolve_assignment(app, spec: str) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(app.coursedir.db_url, app.coursedir.course_id) as gb:
        names = [a.name for a in gb.assignments]
    if spec in names:
        return spec
    prefix = spec.zfill(2) if spec.isdigit() else spec
    matches = [n for n in names if n.startswith(prefix)]
    if len(matches) != 1:
        raise UsageError(f"unknown assignment '{spec}'; the gradebook has: {', '.join(sorted(names)) or 'none'} "
                         "(python3 course.py generate registers them)")
    return matches[0]


def pending_students(app, aid: str, force: bool) -> tuple[list[str], list[str]]:
    """(students to grade, students already graded), as ``nbgrader autograde`` decides without --force."""
    cd = app.coursedir
    submitted = Path(cd.format_path(cd.submitted_directory, ".", aid)).parent
    todo, done = [], []
    for folder in sorted(submitted.glob(f"*/{aid}")):
        if not folder.is_dir():
            continue
        student = folder.parent.name
        dest = Path(cd.format_path(cd.autograded_directory, student, aid))
        new, old = cd.get_existing_timestamp(str(folder)), cd.get_existing_timestamp(str(dest))
        if force or not dest.exists() or (new is not None and old is not None and new > old):
            todo.append(student)
        else:
            done.append(student)
    return todo, done


def _sqlite_path(db_url: str) -> Path:
    if not db_url.startswith("sqlite:///"):
        raise UsageError(f"parallel autograde needs an SQLite gradebook; this course's is {db_url}")
    return Path(db_url[len("sqlite:///"):])


def make_bundle(app, aid: str) -> tuple[bytes, str | None]:
    """What every worker gets once: (tar.gz bytes, the private file's name inside it or None).

    nbgrader_config.py, tools/, a consistent snapshot of the gradebook (the hidden tests
    come back from it), the assignment's source folder without its notebooks (the
    solutions) and its released folder; and the capstone's private parameters file when
    LR_COURSE_PRIVATE names one.
    """
    cd = app.coursedir
    root = Path(cd.root)
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="lr-bundle-") as tmp, tarfile.open(fileobj=buf, mode="w:gz") as tar:
        snapshot = Path(tmp) / "gradebook.db"
        source = sqlite3.connect(f"file:{_sqlite_path(cd.db_url)}?mode=ro", uri=True)
        target = sqlite3.connect(snapshot)
        with target:
            source.backup(target)
        source.close()
        target.close()
        tar.add(snapshot, "gradebook.db")
        tar.add(root / "nbgrader_config.py", "nbgrader_config.py")
        skip = lambda info: None if "__pycache__" in info.name else info  # noqa: E731
        tar.add(root / "tools", "tools", filter=skip)
        for directory, keep_notebooks in ((cd.source_directory, False), (cd.release_directory, True)):
            folder = root / directory / aid
            for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
                if path.is_file() and "__pycache__" not in path.parts and (keep_notebooks or path.suffix != ".ipynb"):
                    tar.add(path, str(path.relative_to(root)))
        private = None
        name = (os.environ.get(PRIVATE_ENV) or "").strip()
        if name:
            path = Path(name).expanduser()
            if not path.is_file():
                raise UsageError(f"{PRIVATE_ENV}={name} is not a file (docs/instructors.md, "
                                 "\"Private hidden parameters\")")
            private = "private/parameters" + path.suffix
            tar.add(path, private)
    return buf.getvalue(), private


def make_job(app, aid: str, student: str, private: str | None, cluster: bool) -> dict:
    cd = app.coursedir
    folder = Path(cd.format_path(cd.submitted_directory, student, aid))
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    env = {k: v for k, v in os.environ.items() if k.startswith("LR_COURSE_") and k != PRIVATE_ENV}
    for key in ("PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if key in os.environ:
            env[key] = os.environ[key]
    if cluster:
        env = {k: v for k, v in env.items() if k not in LOCAL_ONLY_ENV}
    return {"student": student, "assignment": aid, "submitted": cd.submitted_directory, "files": files,
            "env": env, "private": private}


def local_results(bundle: bytes, jobs: list[dict], workers: int):
    """Each job's result as it finishes, on ``workers`` local processes at a time."""
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = {pool.submit(run_submission, bundle, job): job for job in jobs}
    try:
        for future in as_completed(futures):
            yield _result_or_failure(future, futures[future])
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for pgid in list(_RUNNING):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cluster_results(bundle: bytes, jobs: list[dict], address: str):
    """Each job's result as it finishes, on the workers of the Dask scheduler at ``address``."""
    import cloudpickle
    from distributed import Client
    from distributed import as_completed as finished

    module = sys.modules[run_submission.__module__]
    if module.__name__ != "__main__":  # workers cannot import tools/: send the worker's code by value
        cloudpickle.register_pickle_by_value(module)
    try:
        client = Client(address, timeout="30s")
    except OSError as err:
        raise UsageError(f"no Dask scheduler answers at {address}: {err}") from None
    with client:
        shared = client.scatter(bundle, broadcast=True)
        run = uuid.uuid4().hex[:8]
        futures = {client.submit(run_submission, shared, job, pure=False,
                                 key=f"autograde-{job['assignment']}-{job['student']}-{run}"): job for job in jobs}
        for future in finished(futures):
            yield _result_or_failure(future, futures[future])


def _result_or_failure(future, job: dict) -> dict:
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 (the worker could not run it: say so, grade the rest)
        return {"student": job["student"], "executed": {}, "log": f"[ERROR] the worker failed: {err!r}",
                "wall": 0.0, "cpu": 0.0, "returncode": -1, "host": "?"}


GENERIC = ("There was an error processing", "Traceback (most recent call last)", "Please see the",
           "Removing failed assignment", "Removing existing assignment")  # lines that say nothing of their own


def _lines(log: str, levels: tuple[str, ...]) -> list[str]:
    return [line.strip() for line in log.splitlines()
            if any(f"{level}]" in line for level in levels) and not any(g in line for g in GENERIC)]


def _not_graded_reason(result: dict) -> str:
    """The most specific error line of a log (the first that is not one of nbgrader's generic ones)."""
    errors = _lines(result["log"], ("ERROR", "CRITICAL"))
    if errors:
        return errors[0]
    last = [line.strip() for line in result["log"].splitlines() if line.strip()]
    return last[-1] if last else f"the worker's autograde ended with status {result['returncode']}"


def record(app, aid: str, result: dict, results: Path) -> dict:
    """Write the worker's notebooks under ``results`` and record them with nbgrader (the one writer)."""
    from nbgrader.converters import Autograde
    from nbgrader.utils import capture_log

    from grading_replay import FAILED

    folder = results / result["student"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in result["executed"].items():
        (folder / f"{name}.ipynb").write_text(text, encoding="utf-8")
    if not result["executed"]:
        (folder / FAILED).write_text(_not_graded_reason(result))
    app.coursedir.assignment_id, app.coursedir.student_id = aid, result["student"]
    converter = Autograde(coursedir=app.coursedir, parent=app)
    converter.force = True
    converter.create_student = True
    return capture_log(converter)


def timed_out_cells(app, aid: str, student: str) -> list[str]:
    """The cells of a graded submission stopped by the time limit (grade ids, else positions)."""
    import nbformat

    from grading_feedback import timed_out, timeout_of

    cd = app.coursedir
    limit = timeout_of(app.config)
    out = []
    for path in sorted(Path(cd.format_path(cd.autograded_directory, student, aid)).glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if any(timed_out(o.get("ename", ""), cell, limit) for o in errors):
                out.append(cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {i + 1}")
    return out


def scores(app, aid: str, students: list[str]) -> tuple[list[float], float]:
    from nbgrader.api import Gradebook, MissingEntry

    got, top = [], 0.0
    with Gradebook(app.coursedir.db_url, app.coursedir.course_id) as gb:
        for student in students:
            try:
                sub = gb.find_submission(aid, student)
            except MissingEntry:
                continue
            got.append(sub.score)
            top = sub.max_score
    return got, top


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


class Tally:
    """What the run did so far: graded and failed submissions, timeouts, time and CPU per submission."""

    def __init__(self):
        self.graded, self.failed, self.timeouts, self.cpu, self.took = [], {}, {}, [], {}

    def add(self, app, aid: str, result: dict, results: Path) -> list[str]:
        """Record one worker's result in the gradebook; the lines worth showing the instructor."""
        student = result["student"]
        self.took[student] = result["wall"]
        outcome = record(app, aid, result, results)
        shown = _lines(outcome.get("log", ""), ("WARNING", "ERROR", "CRITICAL"))
        shown += [line for line in _lines(result["log"], ("ERROR", "CRITICAL")) if line not in shown]
        if outcome.get("success"):
            self.graded.append(student)
            self.cpu.append(result["cpu"])
            cells = timed_out_cells(app, aid, student)
            if cells:
                self.timeouts[student] = cells
        else:
            parent = {"log": outcome.get("log", "") + outcome.get("error", ""), "returncode": 1}
            self.failed[student] = _not_graded_reason(parent if result["executed"] else result)
            shown.append(f"NOT graded: {self.failed[student]}")
        return [line if f"'{student}'" in line else f"{line} (submission of '{student}')"
                for line in dict.fromkeys(shown)]

    def summary(self, aid: str, wall: float, where: str, got: list[float], top: float, skipped: list[str]) -> str:
        n = len(self.graded) + len(self.failed)
        lines = [f"{aid}: {len(self.graded)} of {n} submission(s) graded in {_duration(wall)} on {where}"
                 + (f": {60 * n / wall:.1f} per minute, {statistics.mean(self.cpu):.1f} CPU s per submission "
                    "(its grading process and kernel)." if n and wall > 0 and self.cpu else ".")]
        if skipped:
            lines.append(f"{len(skipped)} already graded and left as they are (--force grades them again).")
        if self.took:
            slowest = sorted(self.took.items(), key=lambda kv: -kv[1])[:SLOWEST]
            lines.append(f"Seconds per submission on its worker: median {statistics.median(self.took.values()):.0f}; "
                         "slowest: " + ", ".join(f"{s} {t:.0f}" for s, t in slowest) + ".")
        if got:
            lines.append(f"Scores of the graded: min {min(got):g}, median {statistics.median(got):g}, "
                         f"max {max(got):g} of {top:g} points (hand-graded answers count once graded).")
        if self.timeouts:
            lines.append(f"Timed out ({len(self.timeouts)} submission(s); each such cell scores 0):")
            lines += [f"  {student}: {', '.join(cells)}" for student, cells in sorted(self.timeouts.items())]
        if self.failed:
            lines.append(f"NOT graded ({len(self.failed)}): fix the cause and run the command again:")
            lines += [f"  {student}: {reason}" for student, reason in sorted(self.failed.items())]
        lines.append(f"Next: python3 course.py report {aid}")
        return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="course.py autograde", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:6]))
    parser.add_argument("assignment", help="assignment id or its number (01)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help=f"submissions graded at a time on this machine, 1 to {MAX_WORKERS} (default: its cores)")
    where.add_argument("--cluster", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--force", action="store_true", help="grade again submissions already autograded")
    parser.add_argument("--course", default=".", help="course folder (default: the current one, the "
                        "repository root through course.py)")
    args = parser.parse_args(argv)
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be between 1 and {MAX_WORKERS}, got {args.workers}")
    return args


def grade_class(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(TOOLS))
    course = Path(args.course).resolve()
    if not (course / "nbgrader_config.py").exists():
        raise UsageError(f"{course} has no nbgrader_config.py: run this from the course folder")
    if not args.cluster:
        from grading_sandbox import SandboxUnavailable, check_available, opted_out

        try:
            opted_out() or check_available()
        except SandboxUnavailable as err:
            raise UsageError(str(err)) from None
    app = nbgrader_app(course)
    if not _sqlite_path(app.coursedir.db_url).exists():
        raise UsageError("no gradebook.db yet: run `python3 course.py generate` first")
    aid = resolve_assignment(app, args.assignment)
    todo, skipped = pending_students(app, aid, args.force)
    if not todo:
        print(f"{aid}: nothing to grade ({len(skipped)} already graded; --force grades them again).")
        return 0
    bundle, private = make_bundle(app, aid)
    jobs = [make_job(app, aid, s, private, bool(args.cluster)) for s in todo]
    workers = args.workers or os.cpu_count() or 1
    where = f"the Dask cluster at {args.cluster}" if args.cluster else f"{workers} local worker(s)"
    from grading_replay import replay_executed
    from tqdm import tqdm

    replay_executed(app.config, "")
    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lr-results-") as results:
        app.config.ReplayExecute.results = results
        stream = (cluster_results(bundle, jobs, args.cluster) if args.cluster
                  else local_results(bundle, jobs, min(workers, len(jobs))))
        with tqdm(total=len(jobs), desc=f"autograde {aid}", unit="submission", file=sys.stdout) as bar:
            for result in stream:
                for line in tally.add(app, aid, result, Path(results)):
                    bar.write(line)
                bar.update()
    got, top = scores(app, aid, tally.graded)
    print(tally.summary(aid, time.monotonic() - started, where, got, top, skipped))
    return 1 if tally.failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return grade_class(args)
    except UsageError as err:
        print(f"autograde: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
