"""Drive the course in headless Chromium: start a Jupyter front end, open a notebook,
run it, move every slider of every demo and click every quick check.

Shared by the browser tests (``tests/test_browser*.py``) and the widget latency
benchmark (``benchmarks/bench_widgets.py``). Needs Debian's ``chromium`` (installed
with apt-get when running as root) and the ``playwright`` Python package.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium() -> str | None:
    """Path of Debian's Chromium; installed with apt-get first when running as root."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120) -> None:
    """Block until ``url`` answers (any HTTP status); TimeoutError otherwise."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.time() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.5)


@contextlib.contextmanager
def serve(args: list[str], *, cwd: Path, env: dict | None = None, log: Path | None = None):
    """Run a server process (own process group) for the duration of the block."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        if log:
            out.close()


def tool_env() -> dict:
    """Environment for command-line tools of this Python (jupyter, nbgrader)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def lab_settings(settings: Path, extra: dict | None = None) -> Path:
    """JupyterLab user settings for tests: every cell rendered, no autosave, no news."""
    values = {"notebook-extension/tracker": {"windowingMode": "none"},
              "docmanager-extension/plugin": {"autosave": False},
              "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
    values.update(extra or {})
    for plugin, value in values.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return settings


@contextlib.contextmanager
def jupyter_lab(root: Path, work: Path, *, env: dict | None = None, extra_args=()):
    """JupyterLab (no token) serving ``root``; yields its base URL."""
    port = free_port()
    args = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
            "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={lab_settings(work / 'settings')}",
            f"--LabApp.workspaces_dir={work / 'ws'}", "--LabApp.expose_app_in_browser=True",
            *extra_args]
    if os.geteuid() == 0:
        args.append("--allow-root")
    url = f"http://127.0.0.1:{port}"
    with serve(args, cwd=work, env=env or tool_env(), log=work / "server.log"):
        wait_http(f"{url}/api/status")
        yield url


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Chromium (None when Chromium is missing)."""
    path = chromium()
    if path is None:
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
