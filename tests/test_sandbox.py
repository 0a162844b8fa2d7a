"""Autograde runs every submission in the grading sandbox (tools/grading_sandbox.py).

Through the documented cycle (generate the assignment, put submissions in submitted/,
``nbgrader autograde``) in a throw-away course with notebook 00, each attack
submission answers the exercise correctly and tries one thing a curious learner
would. Every attack's *effect* is checked, not only that grading went on:

- read the hidden tests (solutions/, its own notebook file), the course's private
  folders, other learners' submitted/ and autograded/ work, the exchange, the
  instructor's home and environment: nothing of them reaches the attack's output;
- rewrite gradebook.db: every grade already there is unchanged;
- write into the course root, solutions/, the instructor's home and /tmp: no such
  file exists afterwards;
- connect to a TCP listener on 127.0.0.1 started by the test: it saw no connection;
- allocate 12 GB: refused (MemoryError); four processes of 700 MB and 2.4 GB of files
  in a 2 GiB sandbox: killed where a memory cgroup can be made (on CI);
- start 300 processes and leave them running: the process limit stops it short of
  300, and after grading no such process exists.

An honest submission scores full marks, as before. A submission past its wall-time
limit is stopped, with everything it started. Unit tests cover the refusal where
``bwrap`` cannot run and the documented opt-out (also end to end). The tests that run
autograde are marked slow (about 3 minutes on 2 busy cores).
"""
from __future__ import annotations

import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbgrader.api import Gradebook

from conftest import ROOT, ensure_grading_sandbox, read, solution_path, tool_env
from test_instructor_cycle import hidden_lines

AID = "00_start_here"
TOKEN = secrets.token_hex(4)
SECRET = f"PRIVATE-{TOKEN}"  # written into every place a submission must not read
SLEEP_MARK = f"{int(TOKEN, 16) % 90000 + 10000}.{4321}"  # the argument of the attack's `sleep`s


ensure_grading_sandbox()
sys.path.insert(0, str(ROOT / "tools"))
import grading_sandbox  # noqa: E402


def _sandbox_problem() -> str | None:
    try:
        grading_sandbox.check_available()
    except grading_sandbox.SandboxUnavailable as err:
        return str(err)
    return None


needs_sandbox = pytest.mark.skipif(_sandbox_problem() is not None, reason=f"{_sandbox_problem()}")


def test_ci_has_a_sandbox_to_test():
    """On CI (Linux, as root) the attack tests must run, not skip: a missing sandbox fails here."""
    if not (os.environ.get("CI") and sys.platform.startswith("linux")):
        pytest.skip("only CI must have the sandbox; elsewhere the attack tests skip with the reason")
    assert _sandbox_problem() is None, _sandbox_problem()


def nbgrader(course: Path, *args: str, env: dict | None = None, check: bool = True):
    done = subprocess.run(["nbgrader", *args, "--log-level=WARN"], cwd=course, env=env or tool_env(),
                          capture_output=True, text=True, timeout=1200)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def new_course(root: Path) -> Path:
    """A throw-away course with notebook 00 released, as tests/test_grading.py builds one."""
    root.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "solutions" / AID, root / "solutions" / AID)
    nbgrader(root, "generate_assignment", AID, "--force")
    return root


def submit(course: Path, student: str, nb) -> None:
    folder = course / "submitted" / student / AID
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{AID}.ipynb")


def with_cell(source: str | None, *, secret: bool = False):
    """The solution of notebook 00 (full marks), with an extra code cell before the test cell."""
    nb = read(solution_path(AID))
    if secret:
        nb.cells.append(nbformat.v4.new_markdown_cell(f"My private notes: {SECRET}"))
    if source is not None:
        test = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
        nb.cells.insert(test, nbformat.v4.new_code_cell(source))
    return nb


def grades(course: Path) -> dict:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {(sub.student_id, g.name): (g.auto_score, g.max_score)
                for sub in gb.assignment_submissions(AID) for nb in sub.notebooks for g in nb.grades}


def outputs(course: Path, student: str) -> str:
    """Every output text of the student's autograded notebook."""
    nb = read(course / "autograded" / student / AID / f"{AID}.ipynb")
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") + "".join(out.get("data", {}).get("text/plain", "")) +
                         " ".join([out.get("ename", ""), out.get("evalue", "")]))
    return "\n".join(texts)


def attacks(course: Path, exchange: Path, port: int) -> dict[str, str]:
    paths = f"COURSE, EXCHANGE, HOME = {str(course)!r}, {str(exchange)!r}, {str(Path.home())!r}\n"
    return {
        # Everything under the course's private folders, the exchange, the home, and
        # its own notebook file (which holds the hidden tests), wherever it may be.
        "attack-read": paths + f"""\
import glob, os, helpers
names = ["solutions", "source", "submitted", "autograded", "feedback", "gradebook.db", "nbgrader_config.py"]
roots = [COURSE + "/" + n for n in names] + [EXCHANGE, HOME, "../../..", "..", "."]
read, listed = [], []
for root in roots:
    for path in [root] + glob.glob(root + "/**", recursive=True):
        if os.path.isdir(path):
            try:
                listed += [path + "/" + n for n in os.listdir(path)]
            except OSError:
                pass
        elif os.path.isfile(path):
            try:
                with open(path, "rb") as f:
                    read.append((path, f.read().decode("utf-8", "replace")))
            except OSError:
                pass
text = "\\n".join(content for _, content in read)
print("SUMMARY files read:", len(read), "secret seen:", {SECRET!r} in text or {SECRET!r} in str(listed),
      "hidden tests seen:", "BEGIN HIDDEN TESTS" in text or "gamma" in text)
print("ENVIRONMENT", sorted(os.environ.items()))
print("LISTED", sorted(listed)[:200])
print("READ", [path for path, _ in read])
print(text[:20000])
print("CONTROL", open(helpers.__file__).read()[:20].replace("\\n", " "))
""",
        "attack-gradebook": paths + """\
import sqlite3
for path in [COURSE + "/gradebook.db", "../../../gradebook.db"]:
    try:
        db = sqlite3.connect(path)
        db.execute("UPDATE grade SET auto_score = 99.0")
        db.commit()
        print("REWROTE", path)
    except Exception as err:
        print("BLOCKED", path, type(err).__name__)
""",
        "attack-write": paths + f"""\
import os
for path in [COURSE + "/{SECRET}", COURSE + "/solutions/{SECRET}", "../../../{SECRET}",
             HOME + "/{SECRET}", "/tmp/{SECRET}", COURSE + "/autograded/honest/{AID}/{AID}.ipynb"]:
    try:
        with open(path, "w") as f:
            f.write("written by a submission")
        print("WROTE", path)
    except OSError as err:
        print("BLOCKED", path, type(err).__name__)
""",
        "attack-network": f"""\
import socket
for host in ["127.0.0.1", "localhost", socket.gethostname()]:
    try:
        socket.create_connection((host, {port}), timeout=3).close()
        print("CONNECTED", host)
    except OSError as err:
        print("BLOCKED", host, type(err).__name__)
""",
        "attack-memory": """\
try:
    hog = bytearray(12 * 1024 ** 3)
    print("ALLOCATED", len(hog))
    del hog
except MemoryError:
    print("BLOCKED MemoryError")
""",
        # Within the per-process limit each time, over the sandbox's limit together: four
        # processes of 700 MB, then 2.4 GB of files in its /tmp (three files, each under
        # the per-file limit). The autograde of the attacks runs with a 2 GiB sandbox.
        "attack-memory-total": """\
import subprocess, sys
child = ("b = bytearray(700 * 1024 ** 2)\\nfor i in range(0, len(b), 4096): b[i] = 1\\n"
         "import time; time.sleep(6)")
procs = [subprocess.Popen([sys.executable, "-c", child]) for _ in range(4)]
print("CHILDREN", [p.wait() for p in procs], flush=True)
try:
    for n in range(3):
        with open(f"/tmp/fill{n}", "wb") as f:
            for _ in range(16):
                f.write(bytes(50 * 1024 ** 2))
    print("FILLED 2.4 GB", flush=True)
except OSError as err:
    print("FILL BLOCKED", type(err).__name__, flush=True)
""",
        "attack-processes": f"""\
import subprocess
started, error = 0, None
for _ in range(300):
    try:
        subprocess.Popen(["sleep", "{SLEEP_MARK}"], start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started += 1
    except OSError as err:
        error = type(err).__name__
print("STARTED", started, error)
""",
    }


def _sleepers() -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if SLEEP_MARK in " ".join(proc.info["cmdline"] or []):
            found.append(proc.pid)
    return found


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """Honest and other learners graded first; then every attack; the evidence of both."""
    if _sandbox_problem():
        pytest.skip(_sandbox_problem())
    base = tmp_path_factory.mktemp("sandbox")
    course = new_course(base / "course")
    exchange = base / "exchange"
    (exchange / "lr-course" / "inbound").mkdir(parents=True)
    (exchange / "lr-course" / "inbound" / "notes.txt").write_text(SECRET)
    for folder in ("source", "feedback/other"):
        (course / folder).mkdir(parents=True, exist_ok=True)
        (course / folder / "notes.txt").write_text(SECRET)
    submit(course, "honest", with_cell(None))
    submit(course, "other", with_cell(None, secret=True))
    nbgrader(course, "autograde", AID)
    before = grades(course)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    host_tmp = set(os.listdir("/tmp"))
    for student, source in attacks(course, exchange, listener.getsockname()[1]).items():
        submit(course, student, with_cell(source))
    start = time.monotonic()
    env = {**tool_env(), "JUPYTERHUB_API_TOKEN": SECRET,  # a secret of the instructor's session
           "LR_COURSE_SANDBOX_MEMORY_GB": "2"}
    done = nbgrader(course, "autograde", AID, "--student=attack-*", env=env, check=False)
    seconds = time.monotonic() - start
    pending = select.select([listener], [], [], 0)[0]
    connections = 0
    while pending:
        try:
            listener.accept()[0].close()
            connections += 1
        except BlockingIOError:
            break
    # The listener works: a connection from here is seen.
    probe = socket.create_connection(listener.getsockname(), timeout=3)
    control = bool(select.select([listener], [], [], 3)[0])
    probe.close()
    listener.close()
    yield {"course": course, "exchange": exchange, "before": before, "after": grades(course), "done": done,
           "connections": connections, "control": control, "seconds": seconds, "host_tmp": host_tmp}


@pytest.mark.slow
def test_every_attack_submission_was_graded(attacked):
    """All but the one that goes over the sandbox's memory where that is limited as a whole:
    its kernel is killed, so it is not graded, and the log says why (see below)."""
    log = attacked["done"].stdout + attacked["done"].stderr
    over = set() if grading_sandbox.memory_cgroup_problem() else {"attack-memory-total"}
    assert attacked["done"].returncode == (1 if over else 0), log
    for student in set(attacks(attacked["course"], attacked["exchange"], 1)) - over:
        assert (student, "practice-tests") in attacked["after"], f"{student} was not graded"
        out = outputs(attacked["course"], student)
        assert any(word in out for word in ("SUMMARY", "BLOCKED", "STARTED", "REWROTE", "WROTE",
                                            "CONNECTED", "ALLOCATED", "CHILDREN")), f"{student}'s attack did not run: {out}"


@pytest.mark.slow
def test_honest_submissions_keep_full_marks(attacked):
    for student in ("honest", "other"):
        auto, top = attacked["before"][student, "practice-tests"]
        assert auto == top > 0, f"{student} lost points under the sandbox"


@pytest.mark.slow
def test_attack_cannot_read_hidden_tests_other_learners_or_the_course(attacked):
    out = outputs(attacked["course"], "attack-read")
    assert "SUMMARY files read: 0 secret seen: False hidden tests seen: False" in out, out[:3000]
    assert SECRET not in out
    leaked = [line for line in hidden_lines(AID) if line in out]
    assert not leaked, f"hidden tests in the attack's output: {leaked[:3]}"
    control = out.split("CONTROL", 1)[1].split("\n", 1)[0].strip()
    assert control, "the attack can read what it needs (helpers), and prints it"
    for name in ("solutions", "gradebook.db", "submitted/other", "inbound", "notes.txt"):
        assert name not in out.split("LISTED", 1)[1].split("READ", 1)[0], f"the attack listed {name}"


@pytest.mark.slow
def test_attack_sees_no_secret_of_the_instructors_environment(attacked):
    out = outputs(attacked["course"], "attack-read")
    environment = out.split("ENVIRONMENT", 1)[1].split("\n", 1)[0]
    assert "('HOME', '/tmp')" in environment, environment
    assert "JUPYTERHUB_API_TOKEN" not in environment and SECRET not in environment, environment


@pytest.mark.slow
def test_attack_cannot_rewrite_the_gradebook(attacked):
    out = outputs(attacked["course"], "attack-gradebook")
    assert "REWROTE" not in out and out.count("BLOCKED") == 2, out
    after = attacked["after"]
    assert all(after[key] == value for key, value in attacked["before"].items()), (attacked["before"], after)
    assert after["attack-gradebook", "practice-tests"] == attacked["before"]["honest", "practice-tests"]
    assert all(auto != 99.0 for auto, _ in after.values())


@pytest.mark.slow
def test_attack_cannot_write_outside_its_private_copy(attacked):
    course = attacked["course"]
    out = outputs(course, "attack-write")
    for path in (course / SECRET, course / "solutions" / SECRET, Path.home() / SECRET, Path("/tmp") / SECRET,
                 course / "autograded" / SECRET):
        assert not path.exists(), f"the submission wrote {path}"
    assert not list(course.rglob(f"*{SECRET}*"))
    honest = read(course / "autograded" / "honest" / AID / f"{AID}.ipynb")
    assert honest.cells, "the honest learner's graded notebook was overwritten"
    assert "WROTE /tmp/" in out, "the private /tmp is writable inside (and vanishes afterwards)"
    assert not {n for n in set(os.listdir("/tmp")) - attacked["host_tmp"] if SECRET in n}


@pytest.mark.slow
def test_attack_cannot_reach_a_listener_on_the_loopback(attacked):
    out = outputs(attacked["course"], "attack-network")
    assert "CONNECTED" not in out and out.count("BLOCKED") == 3, out
    assert attacked["connections"] == 0, "the listener on 127.0.0.1 saw a connection from the sandbox"
    assert attacked["control"], "the listener did not see the test's own connection"


@pytest.mark.slow
def test_attack_cannot_allocate_12_gb(attacked):
    out = outputs(attacked["course"], "attack-memory")
    assert "BLOCKED MemoryError" in out and "ALLOCATED" not in out, out


@pytest.mark.slow
def test_attack_cannot_exceed_the_sandbox_memory_with_many_processes_or_files(attacked):
    """Where a memory cgroup can be made (CI: Linux, as root) the sandbox's 2 GiB hold for
    its processes and its files together; elsewhere only the per-process limit exists."""
    problem = grading_sandbox.memory_cgroup_problem()
    if problem and not os.environ.get("CI"):
        pytest.skip(f"no memory cgroup here ({problem}): memory is limited per process only")
    assert problem is None, f"CI must be able to limit the sandbox's memory as a whole: {problem}"
    log = attacked["done"].stdout + attacked["done"].stderr
    named = [l for l in log.splitlines() if "went over its 2 GiB of memory" in l]
    assert named and "submission of 'attack-memory-total' (00_start_here)" in named[0], log
    score = attacked["after"].get(("attack-memory-total", "practice-tests"), (None,))[0]
    assert score is None, f"it was graded all the same: {score}"
    assert not (attacked["course"] / "autograded" / "attack-memory-total").exists() or \
        not list((attacked["course"] / "autograded" / "attack-memory-total").rglob("*.ipynb"))
    # A group is named after the grading process that made it: one whose process has ended was left
    # behind (a live one belongs to grading that other tests run at the same time).
    groups = [*Path(grading_sandbox.MemoryGroup.V1).glob("lr-course-sandbox-*"),
              *Path(grading_sandbox.MemoryGroup.V2).glob("lr-course-sandbox-*")]
    left = [g for g in groups if not Path(f"/proc/{g.name.split('-')[3]}").exists()]
    described = {str(g): {"age_s": round(time.time() - g.stat().st_mtime),
                          "members": grading_sandbox.MemoryGroup(g).members()} for g in left if g.exists()}
    assert not left, f"a sandbox's cgroup was left: {described}; log: {[l for l in log.splitlines() if 'cgroup' in l]}"


@pytest.mark.slow
def test_attack_cannot_start_300_processes_nor_leave_any_running(attacked):
    out = outputs(attacked["course"], "attack-processes")
    line = next(l for l in out.splitlines() if l.startswith("STARTED"))
    started = int(line.split()[1])
    assert 0 < started < 300, f"the process limit did not stop the attack: {line}"
    assert _sleepers() == [], "processes started by a submission outlived its grading"


@pytest.mark.slow
def test_grading_cost_per_submission(attacked):
    """The whole attack run (6 submissions of notebook 00, each a kernel start and a run)."""
    per_submission = attacked["seconds"] / 6
    print(f"autograde of one attack submission, sandbox included: {per_submission:.1f} s")
    assert per_submission < 120


# --- where bwrap cannot run -------------------------------------------------------

def test_missing_bwrap_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setenv("LR_COURSE_BWRAP", "/nonexistent/bwrap")
    with pytest.raises(grading_sandbox.SandboxUnavailable, match=r"apt-get install bubblewrap"):
        grading_sandbox.check_available()


def test_macos_and_windows_are_refused_with_the_fix(monkeypatch):
    for platform in ("darwin", "win32"):
        monkeypatch.setattr(grading_sandbox.sys, "platform", platform)
        with pytest.raises(grading_sandbox.SandboxUnavailable, match=rf"{platform}.*LR_COURSE_UNSANDBOXED_GRADING=1"):
            grading_sandbox.check_available()


def test_a_bwrap_that_cannot_start_a_sandbox_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LR_COURSE_BWRAP", str(fake))
    with pytest.raises(grading_sandbox.SandboxUnavailable, match=r"cannot start one here.*new namespace"):
        grading_sandbox.check_available()


@pytest.mark.parametrize("value, out", [("1", True), ("true", True), ("yes", True), ("", False), ("0", False),
                                        (None, False)])
def test_the_opt_out_is_one_explicit_variable(value, out):
    environ = {} if value is None else {grading_sandbox.OPT_OUT: value}
    assert grading_sandbox.opted_out(environ) is out


@pytest.mark.parametrize("name, value", [("LR_COURSE_SANDBOX_MEMORY_GB", "0"), ("LR_COURSE_SANDBOX_PROCESSES", "-3"),
                                         ("LR_COURSE_SANDBOX_FILE_GB", "lots")])
def test_limits_from_the_environment_are_checked(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        grading_sandbox.SandboxLimits.from_env()


@pytest.mark.parametrize("cwd", [None, "course"])
def test_a_kernel_without_a_submission_folder_is_refused(tmp_path, cwd):
    """No working folder, or the course root itself, would put the gradebook and every submission in the copy."""
    from grading_sandbox import SandboxedKernelManager, SandboxUnavailable

    (tmp_path / "gradebook.db").write_text("")
    manager = SandboxedKernelManager()
    manager._launch_args = {} if cwd is None else {"cwd": str(tmp_path)}
    with pytest.raises(SandboxUnavailable, match="working folder"):
        manager.format_kernel_cmd()


def test_a_course_inside_a_system_folder_is_refused():
    from grading_sandbox import SandboxUnavailable, python_view

    with pytest.raises(SandboxUnavailable, match="lies inside /usr"):
        python_view(Path("/usr/local/share/some-course"))


def test_the_view_never_holds_the_course(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    view = grading_sandbox.python_view(course)
    assert view.readable
    assert not [p for p in view.readable if p == course.resolve() or course.resolve() in p.parents
                or p in course.resolve().parents], view.readable


def test_a_folder_holding_the_environment_is_not_bound_whole(tmp_path, monkeypatch):
    """pytest puts the repository on sys.path; bound whole (with its own mode, 0700 in a fresh
    `mktemp -d` clone) it would hide the interpreter below it from the sandbox's user, and show
    the solutions beside it. Only the environment and helpers are bound; bwrap makes their
    parents 0755."""
    course = tmp_path / "course"
    course.mkdir()
    holder = Path(sys.prefix).resolve().parent
    monkeypatch.setattr(sys, "path", [str(holder), *sys.path])
    view = grading_sandbox.python_view(course)
    assert holder not in view.readable, view.readable
    assert Path(sys.prefix).resolve() in view.readable


def test_the_view_of_this_repository_holds_only_helpers_and_the_environment():
    """The real course: inside it, only the helpers package and the Python environment are bound."""
    root = ROOT.resolve()
    view = grading_sandbox.python_view(root)
    inside = [p for p in view.readable if root in p.parents or p == root]
    assert not [p for p in view.readable if p in root.parents or p == root], view.readable
    allowed = {root / "helpers", (root / ".venv").resolve()}
    assert inside and all(any(p == a or a in p.parents for a in allowed) for p in inside), inside
    assert not any((root / name) in (p, *p.parents) for p in view.readable
                   for name in ("solutions", "notebooks", "tools", "tests", "docs")), view.readable


@pytest.mark.slow
def test_autograde_refuses_without_bwrap_and_grades_with_the_opt_out(tmp_path):
    """End to end: no grade without a sandbox, unless the instructor opts out."""
    course = new_course(tmp_path / "course")
    submit(course, "ada", with_cell(None))
    env = {**tool_env(), "LR_COURSE_BWRAP": "/nonexistent/bwrap"}
    env.pop(grading_sandbox.OPT_OUT, None)
    done = nbgrader(course, "autograde", AID, env=env, check=False)
    assert done.returncode != 0
    assert "apt-get install bubblewrap" in done.stdout + done.stderr
    assert grading_sandbox.OPT_OUT in done.stdout + done.stderr
    assert grades(course).get(("ada", "practice-tests"), (None,))[0] is None, "graded without a sandbox"
    assert not (course / "autograded" / "ada" / AID / f"{AID}.ipynb").exists()
    env[grading_sandbox.OPT_OUT] = "1"
    done = nbgrader(course, "autograde", AID, "--force", env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WITHOUT a sandbox" in done.stdout + done.stderr
    auto, top = grades(course)["ada", "practice-tests"]
    assert auto == top > 0


@pytest.mark.slow
def test_a_submission_past_its_time_limit_is_stopped_with_everything_it_started(tmp_path):
    """The per-submission wall-time limit (here 20 s) kills the kernel and its processes."""
    course = new_course(tmp_path / "course")
    mark = f"{int(TOKEN, 16) % 90000 + 10000}.{8765}"
    submit(course, "slow", with_cell(f"import subprocess\nsubprocess.run(['sleep', '{mark}'])"))
    env = {**tool_env(), "LR_COURSE_SANDBOX_SUBMISSION_SECONDS": "20"}
    start = time.monotonic()
    done = nbgrader(course, "autograde", AID, env=env, check=False)
    took = time.monotonic() - start
    assert took < 55, f"the submission ran {took:.0f} s, past its limit and nbgrader's per-cell timeout"
    assert done.returncode != 0 and "ran past 20" in done.stdout + done.stderr, done.stdout + done.stderr
    assert grades(course).get(("slow", "practice-tests"), (None,))[0] is None, "scored after being stopped"
    assert not [p for p in psutil.process_iter(["cmdline"]) if mark in " ".join(p.info["cmdline"] or [])]


def test_a_cgroup_left_by_a_grading_process_that_ended_is_removed_by_the_next(monkeypatch):
    """A grader killed before its cleanup leaves its memory cgroup; the next one to make a group
    removes it once it is empty and old, and leaves a group in use (or too young) alone."""
    problem = grading_sandbox.memory_cgroup_problem()
    if problem:
        pytest.skip(f"no memory cgroup here ({problem})")
    base = grading_sandbox.MemoryGroup.V1 if grading_sandbox.MemoryGroup.V1.is_dir() else \
        grading_sandbox.MemoryGroup.V2
    gone = base / "lr-course-sandbox-999999999-0badc0de"  # no such process
    gone.mkdir()
    try:
        assert grading_sandbox.MemoryGroup.remove_stale(base) == [] and gone.exists()  # too young
        monkeypatch.setattr(grading_sandbox.MemoryGroup, "STALE_SECONDS", 0.0)
        mine = grading_sandbox.MemoryGroup.create(grading_sandbox.GiB)  # made by this live process
        try:
            assert not gone.exists() and mine.path.exists()
            assert grading_sandbox.MemoryGroup.remove_stale(base) == [] and mine.path.exists()
        finally:
            assert mine.remove()
    finally:
        if gone.exists():
            gone.rmdir()
