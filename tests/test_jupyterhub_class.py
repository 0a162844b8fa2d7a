"""A whole class on one JupyterHub, exactly as docs/instructors.md gives it.

The ```bash blocks of the guide's "A whole class on JupyterHub" section run in order, as
written, with the accounts they name (teacher, ada, bob): the administrator's blocks in
a root shell, the hub's start block in the background, and every instructor's and
learner's block typed into a terminal of that user's own Jupyter server (the server's
terminal websocket, a login shell as JupyterLab opens it), through the hub's proxy. The
hub runs docs/jupyterhub_config.py as the guide copies it. Only what a test machine
must change is changed, by substitution: the folders /opt/lr-course,
/srv/nbgrader/exchange and /etc/jupyterhub become temporary ones, GitHub's address
becomes this repository's committed state served by `git daemon` on 127.0.0.1, the
hub's port 8000 a free one; and the test adds to the hub's configuration only what it
needs to drive the hub (the proxy from npm's cache, free ports for the hub and the
proxy's API, a service token to start servers) and sets the passwords the guide leaves
to `passwd`. It needs root, Linux, node and npm (configurable-http-proxy, installed into
~/.cache/lr-course/ once), git and the system's Python >= 3.10; it is skipped otherwise,
or when an account the guide names exists already.

ada submits the solution, bob a plausible wrong answer (tests/wrong_answers/) and a
cell that looks around. The checks: only the listed accounts log in, with their
passwords; the course environment holds no hidden test; every step succeeds; the
submissions in the inbound belong to their learners; a learner can list neither the
inbound nor the released feedback, and can read neither the other learner's work nor
the instructor's clone; autograde ran bob's code in the grading sandbox (uid 65534,
nothing of the instructor's home in sight), although the instructor is an ordinary
user; the gradebook holds full marks for ada, a loss for bob, and both hand grades;
each learner's fetched feedback shows their own score and comment and no hidden test.
Everything started is stopped and the accounts are removed, even when a step fails.
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
from test_instructor_cycle import GUIDE, hidden_lines
from test_wrong_answers import exercises, wrong_answers

pytestmark = pytest.mark.slow

AID = "01_why_lr_matters"
TEACHER, LEARNERS = "teacher", ("ada", "bob")
OUTSIDER = "eve"  # an account of the machine that is not in allowed_users
GITHUB = "https://github.com/lr-course/learning-rate-strategies"
GUIDE_FOLDERS = ("/opt/lr-course", "/srv/nbgrader/exchange", "/etc/jupyterhub")
CHP_DIR = Path.home() / ".cache" / "lr-course" / "configurable-http-proxy"
CHP = CHP_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
STEP_TIMEOUT = 600  # seconds for one block (building the environment takes about 70 s)


def guide_blocks() -> list[str]:
    """The ```bash blocks of the JupyterHub section, in order."""
    section = GUIDE.read_text().split("## A whole class on JupyterHub", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(b).strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


# The guide's blocks, by what they do; who runs each.
BLOCKS = [("useradd", "root"), ("course.py setup", "root"), ("Exchange.root", "root"),
          ("jupyterhub -f", "root"), ("release_assignment", TEACHER), ("fetch_assignment", "learners"),
          ("nbgrader submit", "learners"), ("nbgrader autograde", TEACHER), ("course.py grade", TEACHER),
          ("release_feedback", TEACHER), ("fetch_feedback", "learners")]


def test_the_guide_has_the_blocks_this_test_runs():
    blocks = guide_blocks()
    assert [next((k for k, _ in BLOCKS if k in b), None) for b in blocks] == [k for k, _ in BLOCKS], blocks
    assert "cp /opt/lr-course/docs/jupyterhub_config.py" in blocks[3]
    assert all(re.search(rf"\b{name}\b", blocks[0]) for name in (TEACHER, *LEARNERS))
    config = (ROOT / "docs" / "jupyterhub_config.py").read_text()
    assert f"allowed_users = {{{TEACHER!r}, {LEARNERS[0]!r}, {LEARNERS[1]!r}}}".replace("'", '"') in config


def _skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux (local Unix accounts)"
    if os.geteuid() != 0:
        return "needs root: creates Unix accounts and runs JupyterHub's LocalProcessSpawner"
    for tool in ("useradd", "userdel", "runuser", "chpasswd", "npm", "node", "git"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    done = subprocess.run(["/usr/bin/python3", "-c", "import sys, venv, ensurepip; assert sys.version_info >= (3, 10)"],
                          capture_output=True)
    if done.returncode != 0:
        return "needs the system's Python >= 3.10 with venv (/usr/bin/python3), as the guide builds with it"
    for name in (TEACHER, *LEARNERS, OUTSIDER):
        try:
            pwd.getpwnam(name)
            return f"the account `{name}` exists already on this machine"
        except KeyError:
            pass
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


def as_root(script: str, timeout: float = STEP_TIMEOUT) -> str:
    """A block of the guide in a root shell (a login environment, from the root folder)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "HOME": str(Path.home())}
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd="/", env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"guide block failed as root:\n{script}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


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
    """The hub as the guide starts it (its block 4, in the background); the test drives it with a service token."""

    def __init__(self, start_block: str, etc: Path, config_source: Path, put_in):
        import requests

        self.requests = requests
        port, hub_port, api_port = _free_ports(3)
        self.url, self.port = f"http://127.0.0.1:{port}", port
        self.token = secrets.token_hex(32)
        config = put_in(config_source.read_text())  # the guide's folders, as in its blocks
        assert 'c.JupyterHub.bind_url = "http://:8000"' in config
        config = config.replace('c.JupyterHub.bind_url = "http://:8000"', f'c.JupyterHub.bind_url = "{self.url}"')
        config += textwrap.dedent(f"""
            # --- added by tests/test_jupyterhub_class.py to drive the hub on a test machine
            c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
            c.ConfigurableHTTPProxy.command = [{str(_chp())!r}]
            c.JupyterHub.services = [{{"name": "class-test", "api_token": {self.token!r}}}]
            c.JupyterHub.load_roles = [{{"name": "class-test", "services": ["class-test"],
                                        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
            """)
        config_source.write_text(config)  # what the guide's block copies to the hub's folder
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": str(Path.home())}
        self.log = etc.parent / "jupyterhub.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(["bash", "-c", "set -euo pipefail\n" + start_block], cwd="/", env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait(lambda: self.api("get", "/").status_code == 200, 120, "JupyterHub did not come up")

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

    def login(self, user: str, password: str) -> bool:
        """Log in on the hub's login page as a browser does; whether the hub let the user in."""
        session = self.requests.Session()
        session.get(f"{self.url}/hub/login", timeout=30)
        reply = session.post(f"{self.url}/hub/login", timeout=60, allow_redirects=False,
                             data={"username": user, "password": password, "_xsrf": session.cookies.get("_xsrf", "")})
        return reply.status_code == 302 and "login" not in reply.headers.get("Location", "login")

    def start_server(self, user: str) -> str:
        """Start ``user``'s Jupyter server; return a token of that user's for it."""
        r = self.api("post", f"/users/{user}/server")
        assert r.status_code in (201, 202), f"{r.status_code} {r.text}\n{self.logs()}"
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


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def _git_daemon(shared: Path) -> tuple[subprocess.Popen, str]:
    """This repository's committed state, served read-only on 127.0.0.1: GitHub's stand-in."""
    (shared / "git").mkdir()
    _sh("git", "clone", "--quiet", "--bare", str(ROOT), str(shared / "git" / "lr-course.git"), timeout=300)
    (port,) = _free_ports(1)
    daemon = subprocess.Popen(["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={shared / 'git'}",
                               "--listen=127.0.0.1", f"--port={port}", str(shared / "git")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"git://127.0.0.1:{port}/lr-course.git"
    deadline = time.monotonic() + 30
    while _sh("git", "ls-remote", url).returncode != 0:
        assert time.monotonic() < deadline and daemon.poll() is None, "git daemon did not start"
        time.sleep(0.3)
    return daemon, url


@pytest.fixture(scope="module")
def klass():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    ensure_grading_sandbox()  # autograde refuses to grade without its sandbox
    _chp()
    shared = Path(tempfile.mkdtemp(prefix="lrc-class-"))  # everyone may enter: the guide's folders go here
    shared.chmod(0o755)
    folders = dict(zip(GUIDE_FOLDERS, (shared / "opt-lr-course", shared / "exchange", shared / "etc-jupyterhub")))
    env_dir, exchange, etc = folders.values()
    users = (TEACHER, *LEARNERS)
    hub, daemon, servers = None, None, {}
    try:
        daemon, url = _git_daemon(shared)

        def put_in(block: str) -> str:
            block = block.replace(GITHUB, url)
            for guide_folder, here in folders.items():
                block = block.replace(guide_folder, str(here))
            return block

        blocks = [put_in(b) for b in guide_blocks()]
        assert len(blocks) == len(BLOCKS), "the guide's JupyterHub blocks changed: update BLOCKS"
        logs = {}
        start = time.monotonic()
        as_root(blocks[0])  # 1. the accounts
        as_root(blocks[1])  # 2. the course environment
        print(f"accounts and environment: {time.monotonic() - start:.1f} s")
        python = env_dir / ".venv" / "bin" / "python"
        check = as_user(LEARNERS[0], str(python), "-c", "import helpers, nbgrader, torch, jupyterhub; print('ok')")
        assert check.stdout.strip() == "ok", f"a learner cannot run the course environment: {check.stderr[-2000:]}"
        as_root(blocks[2])  # 3. the exchange and everyone's nbgrader configuration
        _sh("useradd", "--create-home", "--shell", "/bin/bash", OUTSIDER)
        passwords = {u: secrets.token_urlsafe(12) for u in (*users, OUTSIDER)}  # the guide's `passwd NAME`
        done = _sh("chpasswd", input="".join(f"{u}:{p}\n" for u, p in passwords.items()))
        assert done.returncode == 0, done.stderr
        hub = Hub(blocks[3], etc, env_dir / "docs" / "jupyterhub_config.py", put_in)  # 4. the hub
        assert (etc / "jupyterhub_config.py").exists()
        logins = {"ada": hub.login("ada", passwords["ada"]), "ada, wrong password": hub.login("ada", "not-it"),
                  OUTSIDER: hub.login(OUTSIDER, passwords[OUTSIDER])}
        for user in users:
            servers[user] = Server(hub, user, hub.start_server(user))
        for user in users:
            hub.wait_ready(user)
        print(f"hub and servers up: {time.monotonic() - start:.1f} s")

        def step(i: int, who: str):
            for user in (LEARNERS if who == "learners" else (who,)):
                begin = time.monotonic()
                status, out = servers[user].run(blocks[i], "~")
                print(f"block {i + 1} ({user}): {time.monotonic() - begin:.1f} s")
                logs[i, user] = out
                assert status == 0, f"guide block failed for {user}:\n{blocks[i]}\n{out[-4000:]}"

        home = {u: Path(pwd.getpwnam(u).pw_dir) for u in (*users, OUTSIDER)}
        course = home[TEACHER] / "lr-course"
        step(4, TEACHER)  # 5. release
        step(5, "learners")  # 6. fetch
        gid, mistakes = next(iter(wrong_answers(AID).items()))
        mistake, wrong_code = next(iter(mistakes.items()))
        answers = {g: "\n".join(l for l in src.splitlines() if not l.strip().startswith("### "))
                   for g, (src, _) in exercises(AID).items()}
        work = {"ada": answers, "bob": {**answers, gid: wrong_code}}
        notebook = f"{AID}/{AID}.ipynb"
        for user in LEARNERS:  # the learners' work, saved through their own servers
            fetched = servers[user].read_notebook(notebook)
            assert fetched.cells, f"{user} fetched an empty notebook"
            mine = edited(AID, work[user], student=home[user] / notebook)
            if user == "bob":  # a curious learner: who grades me, and what can I see?
                mine.cells.append(nbformat.v4.new_code_cell(sandbox_probe(course)))
            servers[user].save_notebook(notebook, mine)
        step(6, "learners")  # 7. submit
        inbound = exchange / "lr-course" / "inbound"
        submitted = {user: sorted(inbound.glob(f"{user}+{AID}+*")) for user in LEARNERS}
        for i in (7, 8, 9):  # 8. collect and autograde, 9. grade by hand, 10. feedback
            step(i, TEACHER)
        step(10, "learners")  # 11. fetch the feedback
        yield {"home": home, "course": course, "env": env_dir, "exchange": exchange, "inbound": inbound,
               "submitted": submitted, "logs": logs, "logins": logins, "wrong": (gid, mistake)}
    finally:
        if hub is not None:
            hub.stop()
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)
        made = [u for u in (TEACHER, *LEARNERS, OUTSIDER) if _exists(u)]
        uids = {pwd.getpwnam(u).pw_uid for u in made}
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
        for user in made:  # _skip_reason made sure none of them existed before
            _sh("userdel", "--remove", user)
        shutil.rmtree(shared, ignore_errors=True)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def test_only_the_listed_accounts_log_in_with_their_passwords(klass):
    assert klass["logins"] == {"ada": True, "ada, wrong password": False, OUTSIDER: False}, klass["logins"]


def test_the_course_environment_holds_no_hidden_test(klass):
    secret = hidden_lines(AID)
    assert secret and not (klass["env"] / "solutions").exists()
    for path in klass["env"].rglob("*"):
        if ".venv" in path.parts or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        assert not [line for line in secret if line in text], f"a hidden test of {AID} in {path}"


def test_submissions_in_the_inbound_belong_to_their_learners(klass):
    for user in LEARNERS:
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
        for user in LEARNERS:
            done = as_user(user, "ls", str(folder))
            assert done.returncode != 0 and "Permission denied" in done.stderr, f"{user} can list {folder}: {done.stdout}"
    done = as_user("ada", "bash", "-c", f"ls {course}/inbound/bob+*")
    assert done.returncode != 0 and "bob+" not in done.stdout


def test_a_learner_cannot_read_the_other_learners_work_or_the_instructors_clone(klass):
    home, course = klass["home"], klass["course"]
    assert not course.stat().st_mode & 0o077, "the instructor's clone is open to others"
    private = {
        "bob's notebook": home["bob"] / AID / f"{AID}.ipynb",
        "bob's feedback": next((home["bob"] / AID / "feedback").rglob(f"{AID}.html")),
        "the solutions and hidden tests": course / "solutions" / AID / f"{AID}.ipynb",
        "the gradebook": course / "gradebook.db",
        "bob's collected submission": course / "submitted" / "bob" / AID / f"{AID}.ipynb",
        "bob's autograded notebook": course / "autograded" / "bob" / AID / f"{AID}.ipynb",
    }
    for what, path in private.items():
        assert path.exists(), path
        done = as_user("ada", "cat", str(path))
        assert done.returncode != 0 and "Permission denied" in done.stderr, f"ada can read {what} ({path})"
    done = as_user("bob", "cat", str(home["ada"] / AID / f"{AID}.ipynb"))
    assert done.returncode != 0 and "Permission denied" in done.stderr, "bob can read ada's notebook"


def test_collect_wrote_the_submission_times(klass):
    for user in LEARNERS:
        stamp = klass["course"] / "submitted" / user / AID / "timestamp.txt"
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp.read_text()), stamp.read_text()


def test_the_gradebook_has_every_grade(klass):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{klass['course'] / 'gradebook.db'}") as gb:
        grades = {(sub.student_id, g.name): (g.score, g.max_score, g.cell_type)
                  for sub in gb.assignment_submissions(AID) for nb in sub.notebooks for g in nb.grades}
    tests = {name for (student, name), (_, _, kind) in grades.items() if student == "ada" and kind == "code"}
    assert tests and {s for s, _ in grades} == set(LEARNERS), grades
    assert all(grades["ada", t][0] == grades["ada", t][1] > 0 for t in tests), f"ada lost points: {grades}"
    gid, mistake = klass["wrong"]
    assert sum(grades["bob", t][0] for t in tests) < sum(grades["bob", t][1] for t in tests), \
        f"bob's wrong answer ({mistake}) got full marks: {grades}"
    assert grades["ada", "q1-answer"][0] == 3 and grades["bob", "q1-answer"][0] == 1, "the hand grades"


def test_autograde_ran_in_the_sandbox(klass):
    """The instructor is an ordinary user: bwrap runs unprivileged, in a user namespace."""
    nb = nbformat.read(klass["course"] / "autograded" / "bob" / AID / f"{AID}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    # Of the home and the clone, only the path down to its own working copy exists there.
    seen = [f"SANDBOX-PROBE 65534 [['{klass['course'].name}'], {course}]"
            for course in (['autograded'], ['autograded', 'helpers'])]
    assert any(line in printed for line in seen), \
        f"bob's code ran outside the sandbox (uid, course and home in reach): {printed[-2000:]}"


def test_each_learner_fetched_their_own_feedback_with_the_hand_grade_and_no_hidden_test(klass):
    secret = hidden_lines(AID)
    assert secret
    scores = {}
    comments = {"ada": "Both fixes, and why the limit drops", "bob": "One fix; say why the limit drops."}
    for user in LEARNERS:
        pages = list((klass["home"][user] / AID / "feedback").rglob(f"{AID}.html"))
        assert len(pages) == 1, f"{user}'s feedback: {pages}"
        assert pages[0].stat().st_uid == pwd.getpwnam(user).pw_uid
        text = _text(pages[0])
        leaked = [line for line in secret if line in text]
        assert not leaked, f"hidden tests in {user}'s feedback: {leaked[:3]}"
        assert "hidden tests ran here" in text and comments[user] in text
        found = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)
        assert found, f"no score in {user}'s feedback"
        scores[user] = float(found.group(1)), float(found.group(2))
    assert scores["ada"][0] == scores["ada"][1] > 0, scores
    assert scores["bob"][0] < scores["bob"][1] == scores["ada"][1], scores


def test_autograde_raised_no_false_alarm_about_locked_cells(klass):
    """Notebooks saved by JupyterLab, test cells untouched: no 'checksum has changed' for the hidden tests."""
    out = klass["logs"][7, TEACHER]
    assert "Sanitizing" in out, f"autograde's log is not in the terminal's output: {out[-2000:]}"
    assert "Attribute 'checksum'" not in out and "locked cell" not in out, out[-3000:]
