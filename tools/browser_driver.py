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
    import fcntl

    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    # Test workers may ask at the same time; apt-get takes one at a time.
    with open(Path(os.environ.get("TMPDIR", "/tmp")) / "lr-course-chromium.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shutil.which("chromium"):
            return shutil.which("chromium")
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


def copy_without_outputs(src: Path, dst: Path) -> Path:
    """Copy a notebook with every output, execution count and saved widget state cleared,
    so that whatever a browser shows of it was produced in that run."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


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
def jupyter_lab(root: Path, work: Path, *, cwd: Path | None = None, env: dict | None = None, extra_args=()):
    """JupyterLab (no token) serving ``root``; yields its base URL.

    ``work`` holds its settings, workspaces and ``server.log``; the server runs in ``cwd``
    (default ``work``), e.g. a course root, where nbgrader finds its configuration.
    """
    port = free_port()
    args = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
            "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={lab_settings(work / 'settings')}",
            f"--LabApp.workspaces_dir={work / 'ws'}", "--LabApp.expose_app_in_browser=True",
            *extra_args]
    if os.geteuid() == 0:
        args.append("--allow-root")
    url = f"http://127.0.0.1:{port}"
    work.mkdir(parents=True, exist_ok=True)
    with serve(args, cwd=cwd or work, env=env or tool_env(), log=work / "server.log"):
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


# --- JupyterLab 4 with ipywidgets 8 -------------------------------------------------

LAB_PROGRESS = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!w || !w.content || !w.sessionContext) return null;
    const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
    const cells = w.content.widgets.filter(c => c.model.type === 'code'
                                             && c.model.sharedModel.getSource().trim() !== '');
    return {status: kernel ? kernel.status : 'none', total: cells.length,
            done: cells.filter(c => c.model.executionCount !== null).length,
            queued: cells.filter(c => c.promptNode && c.promptNode.textContent.includes('*')).length};
}"""

# Output areas that show an error or anything written to stderr (also inside widget outputs).
LAB_ERRORS = """() => [...document.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText.slice(0, 600))"""

# Text a widget shows when it failed, and the static fallbacks that must not show live.
BAD_TEXT = ["Error displaying widget", "Failed to display Jupyter Widget",
            "run the notebook to use the sliders", "Run the notebook to check your answer"]


def open_lab_notebook(page, url: str, path: str, timeout: float = 180) -> None:
    """Open ``path`` (relative to the server root) and wait for an idle kernel."""
    page.goto(f"{url}/lab/tree/{path}?reset")  # reset: only this notebook open
    page.wait_for_function("(p) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                           " const s = (" + LAB_PROGRESS + ")();"
                           " return s && s.status === 'idle' && w.context.path === p; }",
                           arg=path, timeout=timeout * 1000)


def close_lab_notebooks(page) -> None:
    """Shut down every kernel of the server (the next notebook starts afresh)."""
    page.evaluate("window.jupyterapp.serviceManager.sessions.shutdownAll()")


def run_all_lab(page, timeout: float = 300) -> dict:
    """Run every cell (JupyterLab's Run All) and wait until all ran, or one failed.

    Returns ``{"seconds", "total", "done", "errors"}``; ``errors`` lists the text of every
    error or stderr output.
    """
    start = time.time()
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    state = None
    while time.time() - start < timeout:
        state = page.evaluate(LAB_PROGRESS)
        if state and state["status"] == "idle" and state["queued"] == 0:
            if state["done"] == state["total"] or page.evaluate(LAB_ERRORS):
                break
        time.sleep(0.25)
    else:
        raise TimeoutError(f"the notebook did not finish within {timeout:.0f} s: {state}")
    return {"seconds": time.time() - start, **{k: state[k] for k in ("total", "done")},
            "errors": page.evaluate(LAB_ERRORS)}


def page_text_problems(page, root: str = "body") -> list[str]:
    """Failure or fallback texts visible on the page."""
    text = page.inner_text(root)
    return [bad for bad in BAD_TEXT if bad in text]


# --- Demos and quick checks (ipywidgets 8 in JupyterLab) ----------------------------

# Number every demo (a box with an Output widget: controls above, figure inside) and its sliders.
MARK_DEMOS = """() => [...document.querySelectorAll('.widget-output')]
    .filter(o => o.closest('.widget-vbox')).map((o, i) => {
        const demo = o.closest('.widget-vbox');
        demo.dataset.demo = i;
        const sliders = [...demo.querySelectorAll('.widget-slider')];
        sliders.forEach((s, j) => { s.dataset.slider = j; });
        const title = demo.querySelector('.widget-html');
        return {title: title ? title.innerText : '', image: !!o.querySelector('img'),
                sliders: sliders.map(s => s.querySelector('.widget-label').innerText),
                dropdowns: [...demo.querySelectorAll('select:not([multiple])')].map(s => s.options.length),
                multiselects: demo.querySelectorAll('select[multiple]').length};
    })"""

# Before a key press: watch one demo's output; `change` is the first animation frame
# after its content differs (a new figure, or an explanation in place of one).
ARM = """(d) => {
    const out = document.querySelector(`[data-demo="${d}"] .widget-output`);
    const before = out.innerHTML;
    window.__lat = {press: null, change: null, last: performance.now()};
    if (window.__obs) window.__obs.disconnect();
    window.__obs = new MutationObserver(() => {
        window.__lat.last = performance.now();
        if (window.__lat.change === null && out.innerHTML !== before && out.innerText + out.innerHTML) {
            requestAnimationFrame(() => { if (window.__lat.change === null) window.__lat.change = performance.now(); });
        }
    });
    window.__obs.observe(out, {childList: true, subtree: true, attributes: true, characterData: true});
    if (!window.__keyhook) {
        document.addEventListener('keydown', () => { if (window.__lat) window.__lat.press = performance.now(); }, true);
        window.__keyhook = true;
    }
}"""


QUIET_MS = 300  # an output that has not changed for this long is done redrawing
POLL_MS = 50


def demos(page) -> list[dict]:
    """Describe (and number) every demo on the page."""
    return page.evaluate(MARK_DEMOS)


def _redraw_after(page, demo: int, action, timeout: float) -> float:
    """Milliseconds from the key press made by ``action`` to the demo's new figure."""
    page.evaluate(ARM, demo)
    action()
    # Polled every 50 ms, not on every animation frame: polling per frame keeps the browser
    # drawing frames, and on a small machine that slows the kernel being measured. The
    # times themselves are taken in the page and do not depend on the polling.
    page.wait_for_function("() => window.__lat.change !== null", timeout=timeout * 1000, polling=POLL_MS)
    lat = page.evaluate("() => window.__lat")
    # The figure comes first, the text under it a moment later: wait until the output
    # is still (and widgets such as greyed-out sliders are updated) before the next move.
    page.wait_for_function(f"() => performance.now() - window.__lat.last > {QUIET_MS}", timeout=timeout * 1000,
                           polling=POLL_MS)
    return lat["change"] - lat["press"] if lat["press"] is not None else float("nan")


def press_slider(page, demo: int, slider: int, timeout: float = 30) -> float:
    """Move a slider one step with the keyboard (right, or left at its end); ms to the redraw."""
    root = page.locator(f'[data-demo="{demo}"] [data-slider="{slider}"]')
    handle, readout = root.locator(".noUi-handle"), root.locator(".widget-readout")

    def press():
        before = readout.inner_text()
        handle.focus()
        page.keyboard.press("ArrowRight")
        if readout.inner_text() == before:  # at the right end
            page.keyboard.press("ArrowLeft")
    return _redraw_after(page, demo, press, timeout)


def slider_disabled(page, demo: int, slider: int) -> bool:
    return page.locator(f'[data-demo="{demo}"] [data-slider="{slider}"] .noUi-target[disabled]').count() > 0


def demo_states(page, demo: int, info: dict, timeout: float = 30):
    """Put the demo in each state worth testing, yielding a label for each.

    Every option of its dropdown (one at a time), with every option of a multiple
    selection chosen, so that every slider matters in at least one state.
    """
    base = f'[data-demo="{demo}"]'
    if info["multiselects"]:
        yield "as shown"
        for k in range(info["multiselects"]):
            select = page.locator(f"{base} select[multiple]").nth(k)
            values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
            _redraw_after(page, demo, lambda: select.select_option(values), timeout)
    if not info["dropdowns"]:
        yield "every option selected" if info["multiselects"] else "as shown"
        return
    select = page.locator(f"{base} select:not([multiple])").first
    values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
    current = select.input_value()
    for value in [current] + [v for v in values if v != current]:
        if value != select.input_value():
            _redraw_after(page, demo, lambda: select.select_option(value), timeout)
        yield value


def exercise_demos(page, timeout: float = 30, repeats: int = 1) -> list[dict]:
    """Move every slider of every demo ``repeats`` times; one record per slider.

    A record holds ``ms`` (key press to new figure, one per move) or the ``error``.
    """
    records = []
    for d, info in enumerate(demos(page)):
        todo = set(range(len(info["sliders"])))
        for state in demo_states(page, d, info, timeout):
            for j in sorted(todo):
                if slider_disabled(page, d, j):
                    continue
                rec = {"demo": info["title"], "slider": info["sliders"][j], "state": state}
                try:
                    rec["ms"] = [press_slider(page, d, j, timeout) for _ in range(repeats)]
                    shown = page.locator(f'[data-demo="{d}"] .widget-output').inner_text()
                    if "Cannot draw" in shown or "Error" in shown:
                        rec["error"] = shown[:300]
                except Exception as err:  # noqa: BLE001 (reported, the caller asserts)
                    rec["error"] = f"no new figure within {timeout:.0f} s ({type(err).__name__})"
                records.append(rec)
                todo.discard(j)
        records += [{"demo": info["title"], "slider": info["sliders"][j], "error": "never enabled"}
                    for j in sorted(todo)]
    return records


MARK_CHECKS = """() => [...document.querySelectorAll('.widget-radio-box')].map((r, i) => {
    const box = r.closest('.widget-vbox');
    box.dataset.check = i;
    return {question: box.querySelector('.widget-html').innerText, options: r.querySelectorAll('input').length};
})"""

FEEDBACK = """(i) => { const h = document.querySelectorAll(`[data-check="${i}"] .widget-html`);
                       return h[h.length - 1].innerText; }"""


def answer_quick_checks(page, timeout: float = 30) -> list[dict]:
    """Click every option of every quick check; one record per check with the feedback seen."""
    records = []
    for i, info in enumerate(page.evaluate(MARK_CHECKS)):
        seen = []
        for k in range(info["options"]):
            before = page.evaluate(FEEDBACK, i)
            page.locator(f'[data-check="{i}"] .widget-radio-box input').nth(k).click()
            try:
                page.wait_for_function(f"(b) => ({FEEDBACK})({i}) !== b", arg=before, timeout=timeout * 1000)
                seen.append(page.evaluate(FEEDBACK, i))
            except Exception:  # noqa: BLE001 (recorded: no feedback for this option)
                seen.append(None)
        records.append({"question": info["question"][:80], "feedback": seen})
    return records
