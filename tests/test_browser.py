"""The live experience in a real browser: JupyterLab 4, ipywidgets 8, headless Chromium.

A copy of the student notebooks is served by JupyterLab; Chromium (driven by
Playwright) runs notebook 00 top to bottom, drags the demo's slider and answers the
quick check. Needs Debian's `chromium`: installed here when running as root with
apt-get (as in CI), otherwise the test is skipped with the reason.
"""
from __future__ import annotations

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

import pytest

from conftest import ROOT, tool_env

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return shutil.which("chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of notebooks/ (autosave off: nothing is written back)."""
    tmp = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", tmp / "root")
    settings = tmp / "settings" / "@jupyterlab"
    for plugin, value in [("notebook-extension/tracker", {"windowingMode": "defer"}),
                          ("docmanager-extension/plugin", {"autosave": False}),
                          ("apputils-extension/notification", {"fetchNews": "false",
                                                              "checkForUpdates": False})]:
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port = _free_port()
    args = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
            "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={tmp / 'root'}",
            f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'ws'}",
            "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    server = subprocess.Popen(args, cwd=tmp, env=tool_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def page(lab):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


KERNEL_IDLE = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.status === 'idle';
}"""


def test_start_page_runs_and_its_widgets_respond_in_jupyterlab(lab, page):
    page.goto(f"{lab}/lab/tree/00_start_here/00_start_here.ipynb")
    page.wait_for_function(KERNEL_IDLE, timeout=180_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    # The demo: the live widget is shown (not the static fallback), and dragging redraws.
    image = page.wait_for_selector(".widget-output img", timeout=120_000)
    first = image.get_attribute("src")
    handle = page.wait_for_selector(".noUi-handle")
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    page.mouse.move(box["x"] + 8, box["y"] + 8)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 8, steps=5)
    page.mouse.up()
    page.wait_for_function("(before) => document.querySelector('.widget-output img').src !== before",
                           arg=first, timeout=30_000)

    # The quick check answers at once.
    options = page.query_selector_all(".widget-radio-box input[type=radio]")
    assert len(options) == 3
    options[1].click()
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html')]"
                           ".some(e => e.innerText.includes('Correct.'))", timeout=30_000)
    options[0].click()
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html')]"
                           ".some(e => e.innerText.includes('Not quite.'))", timeout=30_000)

    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    text = page.inner_text(".jp-Notebook")
    assert "Error displaying widget" not in text
    assert "Run the notebook to check your answer" not in text, "the static fallback shows in a live front end"
    assert "NotImplementedError" in text, "the practice exercise's test should fail on the student version"
