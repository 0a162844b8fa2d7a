"""The README's other command, `python3 course.py lab`, serves the course and opens the start page."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_command_serves_the_repository_and_opens_the_start_page(tmp_path):
    port, opened = _free_port(), tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"  # stands in for a web browser: records what it was asked to open
    browser.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    args = [sys.executable, str(ROOT / "course.py"), "lab", f"--port={port}", "--ServerApp.token=",
            f"--ServerApp.browser={sys.executable} {browser} %s"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    server = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.time() + 120
        while not opened.exists() and time.time() < deadline and server.poll() is None:
            time.sleep(0.5)
        assert opened.exists(), "JupyterLab did not start"
        page = Path(opened.read_text().removeprefix("file://")).read_text()
        start = f"http://localhost:{port}/lab/tree/notebooks/00_start_here/00_start_here.ipynb"
        assert start in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks") as reply:
            listing = json.load(reply)
        assert {c["name"] for c in listing["content"]} >= {"00_start_here", "01_why_lr_matters"}
        with urllib.request.urlopen(start.replace("localhost", "127.0.0.1")) as reply:
            assert reply.status == 200 and re.search(rb"JupyterLab", reply.read())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
