"""A whole class on one JupyterHub: real Unix users, a real hub, nbgrader's exchange.

The "A whole class on JupyterHub" section of docs/instructors.md, command for command,
with three local accounts: an instructor and two learners. The test creates them (so
it needs root; otherwise it is skipped), starts JupyterHub with configurable-http-proxy
(installed from npm into ~/.cache/lr-course/ once) and the LocalProcessSpawner, which
runs each user's Jupyter server as that Unix user. The administrator's command runs as
root; every instructor's and learner's command is typed into a terminal of that user's
own server (the Jupyter server's terminal websocket), the learners' work is saved through their server's contents API, and the
exchange lives in a temporary folder. Notebook 00 (the cheapest to autograde) stands in
for the guide's 01. The accounts run this checkout's .venv (or, when its base Python is
out of their reach, a hard-linked twin of it: see ``course_environment``).

ada submits the solution, bob a plausible wrong answer (tests/wrong_answers/). The
checks: every step succeeds; the submissions in the inbound belong to their learners;
a learner can list neither the inbound nor the released feedback, and can read neither
the other learner's work nor the instructor's course (solutions, hidden tests,
gradebook, collected submissions); the gradebook holds full marks for ada and a loss
on the wrong exercise for bob; autograde ran bob's code in the grading sandbox (uid
65534, none of the instructor's home or course in sight), although the instructor is
an ordinary user; each learner's fetched feedback shows their own score
and no hidden test. Everything started is stopped and the accounts are removed, even
when a step fails.
"""
from __future__ import annotations

import html
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, ensure_grading_sandbox
from test_grading import edited
from test_instructor_cycle import fresh_copy, hidden_lines, hub_steps
from test_wrong_answers import exercises, wrong_answers

pytestmark = pytest.mark.slow

AID = "00_start_here"
GUIDE_AID = "01_why_lr_matters"  # the assignment the guide's commands name
GUIDE_EXCHANGE = "/srv/nbgrader/exchange"
BIN = ROOT / ".venv" / "bin"
CHP_DIR = Path.home() / ".cache" / "lr-course" / "configurable-http-proxy"
CHP = CHP_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
COPIED = ["course.py", "nbgrader_config.py", "pyproject.toml", "requirements.txt", "README.md", "tools", "helpers"]
STEP_TIMEOUT = 300  # seconds for one step of the guide (autograde of notebook 00 takes ~15 s)


def _skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux (local Unix accounts)"
    if os.geteuid() != 0:
        return "needs root: creates Unix accounts and runs JupyterHub's LocalProcessSpawner"
    for tool in ("useradd", "userdel", "runuser", "npm", "node"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    if not (BIN / "jupyterhub").exists():
        return "jupyterhub is not installed in .venv"
    return None


def _chp() -> Path:
    """configurable-http-proxy from npm, installed once into a cache outside the repository."""
    if not CHP.exists():
        CHP_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--prefix", str(CHP_DIR), "--no-audit", "--no-fund",
                               "configurable-http-proxy@4"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not CHP.exists():
            pytest.skip(f"could not install configurable-http-proxy from npm: {done.stderr[-500:]}")
    return CHP


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _sh(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)


def as_user(user: str, *args: str) -> subprocess.CompletedProcess:
    return _sh("runuser", "-u", user, "--", *args)


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def course_environment(users: list[str], shared: Path) -> tuple[Path, dict]:
    """The Python environment the accounts run: its bin/ folder and extra variables.

    That is this .venv when the accounts run it with the same Python as this one. A
    virtual environment uses its base Python's standard library, though, and when that
    lies where the accounts cannot read it (e.g. a Python installed under /root), their
    interpreter silently falls back to another one (the system's). Then the accounts
    get a twin of .venv under ``shared``: the base Python's standard library and
    libpython, hard-linked (no copying), with .venv's own packages, data and scripts.
    """
    venv, here = ROOT / ".venv", f"{sys.version}|{sys.base_prefix}"
    probe = [str(venv / "bin" / "python"), "-c", "import sys; print(f'{sys.version}|{sys.base_prefix}')"]
    if all(as_user(u, *probe).stdout.strip() == here for u in users):
        return venv / "bin", {}
    base, lib = Path(sys.base_prefix), f"python{sys.version_info.major}.{sys.version_info.minor}"
    python, twin = shared / "python", shared / "venv"
    (python / "bin").mkdir(parents=True)
    stdlib = base / "lib" / lib

    def not_needed(folder, names):  # the base Python's own packages and its test suite
        return {"site-packages", "test"} & set(names) if folder == str(stdlib) else set()

    shutil.copytree(stdlib, python / "lib" / lib, copy_function=_link_or_copy, ignore=not_needed)
    for so in (base / "lib").glob("libpython*.so*"):
        _link_or_copy(so, python / "lib" / so.name)
    (twin / "bin").mkdir(parents=True)
    (twin / "lib" / lib).mkdir(parents=True)
    (twin / "lib" / lib / "site-packages").symlink_to(venv / "lib" / lib / "site-packages")
    for name in ("share", "etc"):
        if (venv / name).exists():
            (twin / name).symlink_to(venv / name)
    config = (venv / "pyvenv.cfg").read_text()
    config = re.sub(r"(?m)^home = .*$", f"home = {python / 'bin'}", config)
    (twin / "pyvenv.cfg").write_text(config)
    if (venv / ".course-installed").exists():  # course.py's record of the installation, and where
        shutil.copy(venv / ".course-installed", twin / ".course-installed")
    (twin / ".course-location").write_text(str(twin))
    for script in (venv / "bin").iterdir():
        target = twin / "bin" / script.name
        if script.is_symlink():
            target.symlink_to(os.readlink(script))
            continue
        content = script.read_bytes()
        if b"\0" in content[:4096]:
            _link_or_copy(script, target)  # the interpreter itself
            continue
        target.write_bytes(content.replace(str(venv).encode(), str(twin).encode()))  # shebangs, activate
        target.chmod(script.stat().st_mode & 0o777)
    return twin / "bin", {"LD_LIBRARY_PATH": str(python / "lib")}


def _processes_of(uids: set[int]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    pids.append(int(entry.name))
            except FileNotFoundError:
                pass
    return pids


class Hub:
    """JupyterHub on 127.0.0.1 with free ports; its state in ``folder``."""

    def __init__(self, folder: Path, users: list[str], admin: str, bin_dir: Path, environment: dict):
        import requests

        self.requests = requests
        port, hub_port, api_port = _free_ports(3)
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.token = secrets.token_hex(32)
        singleuser_args = ['--ServerApp.terminado_settings={"shell_command": ["/bin/bash"]}']
        config = textwrap.dedent(f"""\
            c = get_config()  # noqa
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {hub_port}
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
            c.ConfigurableHTTPProxy.command = [{str(_chp())!r}]
            c.JupyterHub.db_url = "sqlite:///{folder}/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "{folder}/jupyterhub_cookie_secret"
            c.JupyterHub.pid_file = "{folder}/jupyterhub.pid"
            c.JupyterHub.authenticator_class = "dummy"
            c.Authenticator.allowed_users = {set(users)!r}
            c.Authenticator.admin_users = {{{admin!r}}}
            c.JupyterHub.spawner_class = "localprocess"
            c.Spawner.cmd = [{str(bin_dir / "jupyterhub-singleuser")!r}]
            c.Spawner.environment = {environment!r}
            c.Spawner.args = {singleuser_args!r}
            c.Spawner.start_timeout = 180
            c.Spawner.http_timeout = 180
            c.JupyterHub.cleanup_servers = True
            c.JupyterHub.services = [{{"name": "class-admin", "api_token": {self.token!r}}}]
            c.JupyterHub.load_roles = [{{"name": "class-admin", "services": ["class-admin"],
                                        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
            """)
        (folder / "jupyterhub_config.py").write_text(config)
        env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "HOME": str(Path.home())}
        self.log = folder / "jupyterhub.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(folder / "jupyterhub_config.py")],
                                         cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.wait(lambda: self.api("get", "/").status_code == 200, 90, "JupyterHub did not come up")

    def logs(self) -> str:
        return self.log.read_text()[-4000:]

    def wait(self, ready, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterHub exited ({self.proc.returncode}):\n{self.logs()}")
            try:
                if ready():
                    return
            except self.requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{what} within {timeout} s:\n{self.logs()}")

    def api(self, method: str, path: str, **kw):
        return self.requests.request(method, f"{self.url}/hub/api{path}", timeout=30,
                                     headers={"Authorization": f"token {self.token}"}, **kw)

    def start_server(self, user: str) -> str:
        """Start ``user``'s Jupyter server; return a token of that user's for it."""
        r = self.api("post", f"/users/{user}/server")
        assert r.status_code in (201, 202), (r.status_code, r.text)
        r = self.api("post", f"/users/{user}/tokens", json={"note": "class", "expires_in": 3600})
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()["token"]

    def wait_ready(self, user: str):
        self.wait(lambda: (self.api("get", f"/users/{user}").json().get("servers", {}).get("", {})
                           .get("ready")), 180, f"{user}'s server did not start")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the hub stops the servers and the proxy
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


class Server:
    """One user's own Jupyter server, through the hub's proxy, with that user's token."""

    def __init__(self, hub: Hub, user: str, token: str):
        self.hub, self.user, self.token = hub, user, token
        self.base = f"{hub.url}/user/{user}"
        self.headers = {"Authorization": f"token {token}"}

    def api(self, method: str, path: str, **kw):
        return self.hub.requests.request(method, f"{self.base}/api{path}", headers=self.headers,
                                         timeout=60, **kw)

    def read_notebook(self, path: str):
        r = self.api("get", f"/contents/{path}", params={"content": "1"})
        assert r.status_code == 200, (r.status_code, r.text)
        return nbformat.from_dict(r.json()["content"])

    def save_notebook(self, path: str, nb):
        r = self.api("put", f"/contents/{path}", json={"type": "notebook", "format": "json", "content": nb})
        assert r.status_code in (200, 201), (r.status_code, r.text)

    def run(self, script: str, cwd: str, timeout: float = STEP_TIMEOUT) -> tuple[int, str]:
        """Type ``script`` into a new terminal of the server, in ``cwd``; its exit status and output."""
        import websocket

        r = self.api("post", "/terminals")
        assert r.status_code == 200, (r.status_code, r.text)
        name = r.json()["name"]
        url = f"ws://127.0.0.1:{self.hub.port}/user/{self.user}/terminals/websocket/{name}"
        terminal = websocket.create_connection(url, header=[f"Authorization: token {self.token}"], timeout=5)
        try:
            # A subshell, so that a failing command ends the step, not the terminal. The
            # quotes keep the echoed input from matching the end marker.
            typed = f"( set -euo pipefail\ncd {cwd}\n{script}\n); echo \"__EX\"\"IT__ $?\"\n"
            terminal.send(json.dumps(["stdin", typed]))
            out, deadline = "", time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    raw = terminal.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if not raw:  # the server closed the terminal
                    break
                message = json.loads(raw)
                if message[0] == "stdout":
                    out += message[1]
                    found = re.search(r"__EXIT__ (\d+)", out)
                    if found:
                        return int(found.group(1)), out
                elif message[0] == "disconnect":
                    break
        finally:
            terminal.close()
            self.api("delete", f"/terminals/{name}")
        raise AssertionError(f"{self.user}: the step did not end (terminal closed, or over {timeout} s):\n"
                             f"{out[-3000:]}\n--- hub log:\n{self.hub.logs()}")


def sandbox_probe(course: Path) -> str:
    """A learner's cell that prints its uid and what it sees of the instructor's home and course."""
    return ("import os\n"
            f"seen = [sorted(os.listdir(p)) for p in ({str(course.parent)!r}, {str(course)!r})]\n"
            "print('SANDBOX-PROBE', os.getuid(), seen)\n")


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def _let_others_traverse(path: Path) -> list[tuple[Path, int]]:
    """Add search permission (o+x: enter, not list) to every folder above ``path`` lacking it.

    The accounts must reach the repository: .venv's packages and the editable install of
    ``helpers`` live there. A checkout in a private folder (``mktemp -d`` makes mode 700)
    would hide them. Returns what was changed, for :func:`_restore_modes`.
    """
    changed = []
    for folder in [*reversed(path.parents), path]:
        mode = folder.stat().st_mode & 0o7777
        if not mode & 0o001:
            folder.chmod(mode | 0o001)
            changed.append((folder, mode))
    return changed


def _restore_modes(changed: list[tuple[Path, int]]) -> None:
    for folder, mode in reversed(changed):
        folder.chmod(mode)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    ensure_grading_sandbox()  # autograde refuses to grade without its sandbox
    _chp()
    suffix = secrets.token_hex(3)
    teacher, ada, bob = (f"lrc-{role}-{suffix}" for role in ("teacher", "ada", "bob"))
    learners = (ada, bob)
    created, hub, servers = [], None, {}
    shared = Path(tempfile.mkdtemp(prefix="lrc-class-"))  # everyone may enter; the exchange goes here
    shared.chmod(0o755)
    exchange = shared / "exchange"
    opened = _let_others_traverse(ROOT)
    try:
        for user in (teacher, ada, bob):
            done = _sh("useradd", "--create-home", "--shell", "/bin/bash", "-K", "HOME_MODE=0700", user)
            assert done.returncode == 0, done.stderr
            created.append(user)
        home = {user: Path(pwd.getpwnam(user).pw_dir) for user in created}
        bin_dir, environment = course_environment(created, shared)
        check = as_user(ada, "env", *(f"{k}={v}" for k, v in environment.items()), str(bin_dir / "python"),
                        "-c", "import sys, nbgrader, jupyterhub, torch; print(sys.version)")
        assert check.returncode == 0 and check.stdout.strip() == sys.version, \
            f"the accounts cannot run the course's Python: {check.stdout} {check.stderr[-2000:]}"

        steps, config = hub_steps()
        assert len(steps) == 6, "the guide's JupyterHub commands changed shape"
        steps = [s.replace(GUIDE_EXCHANGE, str(exchange)).replace(GUIDE_AID, AID) for s in steps]
        config = config.replace(GUIDE_EXCHANGE, str(exchange))

        # 1. The instructor's clone of the course (notebook 00 only), its .venv the accounts' environment.
        course = fresh_copy(home[teacher] / "lr-course", venv=bin_dir.parent, names=COPIED)
        shutil.copytree(ROOT / "solutions" / AID, course / "solutions" / AID)
        with (course / "nbgrader_config.py").open("a") as f:
            f.write("\n" + config.replace("c = get_config()  # noqa\n", ""))
        # ... and the learners' configuration (the exchange and the course id).
        for user in learners:
            (home[user] / ".jupyter").mkdir()
            (home[user] / ".jupyter" / "nbgrader_config.py").write_text(config)
        for user in created:
            _sh("chown", "-R", f"{user}:{user}", str(home[user]))

        # 2. The exchange, as the administrator.
        done = _sh("bash", "-c", "set -euo pipefail\n" + steps[0])
        assert done.returncode == 0, done.stderr

        start = time.monotonic()
        hub = Hub(tmp_path_factory.mktemp("hub"), list(created), teacher, bin_dir, environment)
        for user in created:
            servers[user] = Server(hub, user, hub.start_server(user))
        for user in created:
            hub.wait_ready(user)
        print(f"hub and servers up: {time.monotonic() - start:.1f} s")

        logs = {}

        def step(i: int, user: str, cwd: str):
            start = time.monotonic()
            status, out = servers[user].run(steps[i], cwd)
            print(f"step {i} ({user}): {time.monotonic() - start:.1f} s")
            logs[i, user] = out
            assert status == 0, f"step failed for {user}:\n{steps[i]}\n{out[-4000:]}"

        step(1, teacher, str(course))  # release
        for user in learners:
            step(2, user, str(home[user]))  # fetch
        gid, mistakes = next(iter(wrong_answers(AID).items()))
        mistake, wrong_code = next(iter(mistakes.items()))
        answers = {g: "\n".join(l for l in src.splitlines() if not l.strip().startswith("### "))
                   for g, (src, _) in exercises(AID).items()}
        work = {ada: answers, bob: {**answers, gid: wrong_code}}
        notebook = f"{AID}/{AID}.ipynb"
        for user in learners:  # the learners' work, saved through their own servers
            fetched = servers[user].read_notebook(notebook)
            assert fetched.cells, f"{user} fetched an empty notebook"
            mine = edited(AID, work[user], student=home[user] / notebook)
            if user == bob:  # a curious learner: who grades me, and what can I see?
                mine.cells.append(nbformat.v4.new_code_cell(sandbox_probe(course)))
            servers[user].save_notebook(notebook, mine)
        for user in learners:
            step(3, user, str(home[user]))  # submit
        inbound = exchange / "lr-course" / "inbound"
        submitted = {user: sorted(inbound.glob(f"{user}+{AID}+*")) for user in learners}
        step(4, teacher, str(course))  # collect, autograde, grade, feedback
        for user in learners:
            step(5, user, str(home[user]))  # fetch the feedback

        yield {"teacher": teacher, "ada": ada, "bob": bob, "home": home, "course": course,
               "exchange": exchange, "inbound": inbound, "submitted": submitted, "logs": logs,
               "wrong": (gid, mistake)}
    finally:
        if hub is not None:
            hub.stop()
        uids = {pwd.getpwnam(u).pw_uid for u in created}
        for _ in range(3):  # anything still running as the accounts (kernels, terminals)
            pids = _processes_of(uids)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids:
                break
            time.sleep(0.5)
        for user in created:
            _sh("userdel", "--remove", user)
        shutil.rmtree(shared, ignore_errors=True)
        _restore_modes(opened)


def test_submissions_in_the_inbound_belong_to_their_learners(klass):
    for role in ("ada", "bob"):
        user = klass[role]
        found = klass["submitted"][user]
        assert len(found) == 1, f"{user}'s submission in the inbound: {found}"
        uid = pwd.getpwnam(user).pw_uid
        files = [found[0], *found[0].rglob("*")]
        assert any(f.name == f"{AID}.ipynb" for f in files)
        assert all(f.stat().st_uid == uid for f in files), f"files of {user}'s submission owned by someone else"


def test_learners_cannot_list_the_inbound_or_the_released_feedback(klass):
    course = klass["exchange"] / "lr-course"
    for folder in (course / "inbound", course / "feedback"):
        assert not folder.stat().st_mode & 0o004, f"{folder} is readable by everyone"
        for role in ("ada", "bob"):
            done = as_user(klass[role], "ls", str(folder))
            assert done.returncode != 0 and "Permission denied" in done.stderr, \
                f"{klass[role]} can list {folder}: {done.stdout}"
    done = as_user(klass["ada"], "bash", "-c", f"ls {course}/inbound/{klass['bob']}+*")
    assert done.returncode != 0 and klass["bob"] not in done.stdout


def test_a_learner_cannot_read_the_other_learners_work_or_the_instructors_course(klass):
    ada, bob, home, course = klass["ada"], klass["bob"], klass["home"], klass["course"]
    assert not course.stat().st_mode & 0o077, "the instructor's course is open to others"
    private = {
        "bob's notebook": home[bob] / AID / f"{AID}.ipynb",
        "bob's feedback": next((home[bob] / AID / "feedback").rglob(f"{AID}.html")),
        "the solutions and hidden tests": course / "solutions" / AID / f"{AID}.ipynb",
        "the gradebook": course / "gradebook.db",
        "bob's collected submission": course / "submitted" / bob / AID / f"{AID}.ipynb",
        "bob's autograded notebook": course / "autograded" / bob / AID / f"{AID}.ipynb",
    }
    for what, path in private.items():
        assert path.exists(), path
        done = as_user(ada, "cat", str(path))
        assert done.returncode != 0 and "Permission denied" in done.stderr, f"ada can read {what} ({path})"
    done = as_user(bob, "cat", str(home[ada] / AID / f"{AID}.ipynb"))
    assert done.returncode != 0 and "Permission denied" in done.stderr, "bob can read ada's notebook"


def test_the_gradebook_has_every_grade(klass):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{klass['course'] / 'gradebook.db'}") as gb:
        grades = {(sub.student_id, g.name): (g.score, g.max_score)
                  for sub in gb.assignment_submissions(AID) for nb in sub.notebooks for g in nb.grades}
    ada, bob = klass["ada"], klass["bob"]
    tests = {name for (student, name) in grades if student == ada}
    assert tests and {s for s, _ in grades} == {ada, bob}, grades
    assert all(grades[ada, t][0] == grades[ada, t][1] > 0 for t in tests), f"ada lost points: {grades}"
    gid, mistake = klass["wrong"]
    assert sum(grades[bob, t][0] for t in tests) < sum(grades[bob, t][1] for t in tests), \
        f"bob's wrong answer ({mistake}) got full marks: {grades}"


def test_autograde_ran_in_the_sandbox(klass):
    """The instructor is an ordinary user: bwrap runs unprivileged, in a user namespace."""
    nb = nbformat.read(klass["course"] / "autograded" / klass["bob"] / AID / f"{AID}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    # Of the home and the course, only the path down to its own working copy exists there
    # (and the course's public helpers package, when the environment imports it from there).
    seen = [f"SANDBOX-PROBE 65534 [['{klass['course'].name}'], {course}]"
            for course in (['autograded'], ['autograded', 'helpers'])]
    assert any(line in printed for line in seen), \
        f"bob's code ran outside the sandbox (uid, course and home in reach): {printed[-2000:]}"


def test_each_learner_fetched_their_own_feedback_without_hidden_tests(klass):
    secret = hidden_lines(AID)
    assert secret
    scores = {}
    for role in ("ada", "bob"):
        user = klass[role]
        pages = list((klass["home"][user] / AID / "feedback").rglob(f"{AID}.html"))
        assert len(pages) == 1, f"{user}'s feedback: {pages}"
        assert pages[0].stat().st_uid == pwd.getpwnam(user).pw_uid
        text = _text(pages[0])
        leaked = [line for line in secret if line in text]
        assert not leaked, f"hidden tests in {user}'s feedback: {leaked[:3]}"
        assert "hidden tests ran here" in text
        found = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)
        assert found, f"no score in {user}'s feedback"
        scores[role] = float(found.group(1)), float(found.group(2))
    assert scores["ada"][0] == scores["ada"][1] > 0, scores
    assert scores["bob"][0] < scores["bob"][1] == scores["ada"][1], scores
