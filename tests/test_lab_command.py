"""The README's other command, `python3 course.py lab`: it serves the course, opens the start
page, works as root (common in containers) and takes its server down when it is stopped."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_args(tmp_path, port) -> tuple[list[str], Path]:
    """`python3 course.py lab` exactly as the README gives it (no --allow-root), plus a port."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"  # stands in for a web browser: records what it was asked to open
    browser.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    return [sys.executable, str(ROOT / "course.py"), "lab", f"--port={port}", "--ServerApp.token=",
            f"--ServerApp.browser={sys.executable} {browser} %s"], opened


def _start(tmp_path, port):
    args, opened = _lab_args(tmp_path, port)
    server = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    deadline = time.time() + 120
    while not opened.exists() and time.time() < deadline and server.poll() is None:
        time.sleep(0.5)
    if not opened.exists():
        os.killpg(server.pid, signal.SIGKILL)
        raise AssertionError("JupyterLab did not start:\n" + server.communicate()[0].decode()[-2000:])
    return server, opened


def _answers(port) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2):
            return True
    except OSError:
        return False


def test_lab_command_serves_the_repository_and_opens_the_start_page(tmp_path):
    """Also as root (CI runs as root): Jupyter refuses root unless course.py adds --allow-root."""
    port = _free_port()
    server, opened = _start(tmp_path, port)
    try:
        page = Path(opened.read_text().removeprefix("file://")).read_text()
        start = f"http://localhost:{port}/lab/tree/notebooks/00_start_here/00_start_here.ipynb"
        assert start in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks") as reply:
            listing = json.load(reply)
        assert {c["name"] for c in listing["content"]} >= {"00_start_here", "01_why_lr_matters"}
        with urllib.request.urlopen(start.replace("localhost", "127.0.0.1")) as reply:
            assert reply.status == 200 and re.search(rb"JupyterLab", reply.read())
        # The instructors' guide sends graders to the formgrader at this URL.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/formgrader") as reply:
            assert reply.status == 200 and b"formgrade" in reply.read().lower()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl+C twice"])
def test_stopping_the_command_stops_the_server(tmp_path, stop):
    port = _free_port()
    server, _ = _start(tmp_path, port)
    try:
        assert _answers(port)
        if stop == "SIGTERM":  # `kill <pid of course.py>`, the process itself, not its group
            server.send_signal(signal.SIGTERM)
        else:  # Jupyter asks for confirmation on the first Ctrl+C; a second one stops it
            server.send_signal(signal.SIGINT)
            time.sleep(0.5)
            server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=60)[0].decode()
        assert not _answers(port), "the server still answers after the command ended"
        assert "Traceback" not in output, output[-2000:]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)


def test_a_lab_started_in_the_background_stops_with_kill_as_the_readme_says(tmp_path):
    """`python3 course.py lab &` in a shell: Jupyter answers Ctrl+C (SIGINT) only on a terminal,
    and a shell starts background jobs with SIGINT ignored, so the README says `kill <pid>`."""
    readme = (ROOT / "README.md").read_text()
    assert "python3 course.py lab &" in readme and "kill <pid>" in readme, "the README does not say how"
    port = _free_port()
    args, opened = _lab_args(tmp_path, port)
    shell = subprocess.run(["bash", "-c", " ".join(map(shlex.quote, args)) + " >/dev/null 2>&1 & echo $!"],
                           cwd=ROOT, capture_output=True, text=True, timeout=30, start_new_session=True)
    pid = int(shell.stdout.strip())
    try:
        deadline = time.time() + 120
        while not _answers(port) and time.time() < deadline:
            time.sleep(0.5)
        assert _answers(port), "JupyterLab did not start in the background"
        os.kill(pid, signal.SIGINT)  # what Ctrl+C would send: ignored in the background
        time.sleep(2)
        assert _answers(port), "a background lab stopped on SIGINT: the README's advice is out of date"
        os.kill(pid, signal.SIGTERM)  # `kill <pid>`
        deadline = time.time() + 60
        while _answers(port) and time.time() < deadline:
            time.sleep(0.5)
        assert not _answers(port), "`kill <pid>` did not stop the background lab"
    finally:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
