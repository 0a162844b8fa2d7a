"""Colab's front end: every solution notebook, live, with ipywidgets 7.7.1 in a 7.x front end.

Colab runs the kernel with ipywidgets 7.7.1 and draws widgets with a manager of the 7.x
protocol. The closest thing that runs here is the classic Jupyter Notebook 6.5 with
widgetsnbextension 3.6.1, in a second environment, ``.venv-colab/`` (built from
``tests/colab_frontend.txt`` on first use, rebuilt when that file changes; the course's
``helpers`` come from this checkout through a ``.pth`` file).

One notebook server and one headless Chromium (Playwright) serve the module. For every
notebook of ``solutions/`` (outputs cleared, so everything seen is fresh) the test:

* checks that the kernel is the environment's own Python with ipywidgets 7.7.1;
* runs all cells and waits until every code cell has an execution count;
* finds no error anywhere: no error or stderr output (inside widget outputs too), no
  "Error displaying widget", no static fallback ("run the notebook ...") where the
  live widget belongs, no traceback of a widget callback in the kernel's log;
* sees every widget output drawn live, every demo (a widget holding an Output) with its
  figure and at least one slider;
* moves every slider of every demo one step with the keyboard and waits for the new
  figure. A greyed-out slider (FigureDemo ``active``) is moved in the first state where
  it comes alive: every option of a multiple selection chosen, then each option of the
  demo's first dropdown in turn; one that never does fails. Key press -> new figure
  times are printed (``-s`` shows them), with a median / max table per notebook;
* clicks a wrong and then the right option of every quick check and sees the feedback
  change each time.

Needs Debian's ``chromium`` (installed with apt-get when running as root) and PyPI for
the first build of the environment (1.5-2.5 minutes on 2 cores).
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import time
import venv
from pathlib import Path

import pytest

from browser_driver import copy_without_outputs, free_port, serve, wait_http
from conftest import ASSIGNMENTS, ROOT

pytestmark = pytest.mark.slow

ENV = ROOT / ".venv-colab"
REQUIREMENTS = ROOT / "tests" / "colab_frontend.txt"
STAMP = ENV / ".colab-frontend-installed"
WIDGETS_VERSION = "7.7.1"  # Colab's
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

RUN_TIMEOUT_MS = 300_000      # Run All of one notebook (15-40 s here)
RENDER_TIMEOUT_MS = 60_000    # widget views appearing after the kernel went idle
REDRAW_TIMEOUT_S = 60         # key press -> new figure (the range test reruns 100 iterations)
FEEDBACK_TIMEOUT_MS = 20_000  # click -> quick-check feedback

# Text that only the static fallback shows (helpers/widgets.py, helpers/quiz.py), and the
# front end's own messages for a widget it cannot draw.
FALLBACKS = ("(run the notebook to use the sliders)", "Run the notebook to check your answer")
NOT_LIVE = (*FALLBACKS, "Error displaying widget", "Failed to display Jupyter Widget",
            "A Jupyter widget could not be displayed")
# What a kernel logs when a widget callback raises (ipykernel's comm manager).
KERNEL_LOG_ERRORS = ("Traceback (most recent call last)", "Exception in comm_msg", "Exception in comm_")
# Browser console errors that say nothing about the notebook (MathJax from a CDN, fonts).
HARMLESS_CONSOLE = ("Failed to load resource", "Access to font at", "ERR_NAME_NOT_RESOLVED")

LATENCIES: dict[str, list[tuple[str, float]]] = {}
RUN_TIMES: dict[str, float] = {}


# --------------------------------------------------------------------------- environment

NO_DEPS = ROOT / "requirements-no-deps.txt"  # mup: installed without its examples' dependencies


def _fingerprint() -> str:
    h = hashlib.sha256(REQUIREMENTS.read_bytes() + NO_DEPS.read_bytes())
    h.update(f"{ROOT}|{platform.python_version()}".encode())  # the .pth file names ROOT
    return h.hexdigest()


def _env_python() -> Path:
    return ENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def build_colab_env() -> Path:
    """``.venv-colab`` as ``tests/colab_frontend.txt`` says; reused while that file is unchanged."""
    py = _env_python()
    fingerprint = _fingerprint()
    if py.exists() and STAMP.exists() and STAMP.read_text() == fingerprint:
        return py
    start = time.monotonic()
    venv.EnvBuilder(with_pip=True, clear=True, symlinks=os.name != "nt").create(ENV)
    install = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                              "-r", str(REQUIREMENTS)], capture_output=True, text=True)
    if install.returncode == 0:  # as course.py does: mup without torchvision, pandas and seaborn
        install = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                                  "--no-deps", "-r", str(NO_DEPS)], capture_output=True, text=True)
    if install.returncode != 0:
        pytest.fail(f"building {ENV} from {REQUIREMENTS.name} failed:\n"
                    f"{install.stdout[-3000:]}\n{install.stderr[-5000:]}", pytrace=False)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "lr_course_checkout.pth").write_text(f"{ROOT}\n")  # import helpers from here
    STAMP.write_text(fingerprint)
    print(f"\n[classic] built {ENV.name} in {time.monotonic() - start:.0f} s", flush=True)
    return py


@pytest.fixture(scope="module")
def colab_python() -> Path:
    return build_colab_env()


def _fresh_copy(dest: Path) -> Path:
    """solutions/ with every output and execution count cleared."""
    shutil.copytree(ROOT / "solutions", dest,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for path in dest.glob("*/*.ipynb"):
        copy_without_outputs(path, path)
    return dest


class Server:
    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int) -> str:
        if not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def classic(colab_python, tmp_path_factory):
    """The classic Notebook 6.5 of .venv-colab (no token) serving a fresh copy of solutions/."""
    tmp = tmp_path_factory.mktemp("classic")
    root = _fresh_copy(tmp / "root")
    bin_dir = colab_python.parent
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                                "MPLBACKEND", "IPYTHONDIR"))}
    env.update(PATH=str(bin_dir) + os.pathsep + env.get("PATH", ""), VIRTUAL_ENV=str(ENV),
               PYTHONNOUSERSITE="1", PYTHONHASHSEED=env.get("PYTHONHASHSEED", "0"),
               # Nothing of this user's Jupyter set-up (kernelspecs, nbextension config) applies.
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "ipython"))
    port = free_port()
    args = [str(colab_python), "-m", "notebook", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--NotebookApp.token=", "--NotebookApp.password=", f"--NotebookApp.notebook_dir={root}",
            "--NotebookApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    log = tmp / "server.log"
    url = f"http://127.0.0.1:{port}"
    with serve(args, cwd=tmp, env=env, log=log):
        try:
            wait_http(f"{url}/api/status", timeout=120)
            up = True
        except TimeoutError:
            up = False
        if not up:
            pytest.fail(f"the classic notebook server did not start:\n{log.read_text()[-4000:]}",
                        pytrace=False)
        yield Server(url, log)
    _print_summary()


@pytest.fixture(scope="module")
def browser(classic, chromium_page):
    return chromium_page


# --------------------------------------------------------------------------- page scripts

NOTEBOOK_READY = """() => !!(window.Jupyter && Jupyter.notebook && Jupyter.notebook._fully_loaded
    && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected())"""

# widgetsnbextension's manager of this notebook exists (it syncs with the kernel on creation).
WIDGETS_LOADED = """() => !!(window.Jupyter && Jupyter.WidgetManager && Jupyter.WidgetManager._managers
    && Jupyter.WidgetManager._managers.length > 0)"""

# What the kernel runs; then one more round trip to the kernel. The widget manager's first
# sync (a control comm, then comm_info) is answered before both, since the kernel answers
# in order: Run All issued while that sync is under way leaves every widget blank, with
# no message (widgetsnbextension 3.6; a learner would have to click within ~0.5 s).
KERNEL_FACTS = """() => new Promise((resolve) => {
    const kernel = Jupyter.notebook.kernel;
    kernel.execute("", {shell: {reply: (msg) => kernel.comm_info('jupyter.widget', () => resolve(msg.content))}},
        {silent: true, store_history: false, user_expressions: {
            widgets: "__import__('ipywidgets').__version__",
            python: "__import__('sys').executable",
            helpers: "__import__('helpers').__file__"}});
})"""

ALL_RUN = """() => !Jupyter.notebook.get_cells().some(c => c.cell_type === 'code'
        && (c.input_prompt_number === '*' || c.element.hasClass('running')))
    && document.querySelector('#kernel_indicator_icon').classList.contains('kernel_idle_icon')"""

CELLS = """() => Jupyter.notebook.get_cells().map((c, i) => ({index: i, type: c.cell_type,
    count: c.input_prompt_number === undefined ? null : c.input_prompt_number,
    head: c.get_text().split('\\n').find(l => l.trim()) || ''}))"""

# Every widget-view output of every code cell (and every output holding the static
# fallback of a demo or quick check), and whether a live widget has been drawn for it.
WIDGET_OUTPUTS = """([mime, fallbacks]) => {
    const found = [];
    Jupyter.notebook.get_cells().forEach((c, i) => {
        if (c.cell_type !== 'code') return;
        const areas = c.output_area.element[0].querySelectorAll(':scope > .output_area');
        c.output_area.outputs.forEach((o, j) => {
            const data = o.data || {};
            const text = (data['text/plain'] || '') + (data['text/html'] || '');
            if (!data[mime] && !fallbacks.some(f => text.includes(f))) return;
            const sub = areas[j] && areas[j].querySelector('.output_subarea');
            found.push({cell: i, drawn: !!(data[mime] && sub && sub.querySelector('.jupyter-widgets')),
                        text: (data[mime] ? '' : '(no widget view in this output) ')
                              + (sub ? sub.innerText.slice(0, 300) : '(no output area)')});
        });
    });
    return found;
}"""

# Problems visible anywhere in the notebook: error and stderr outputs (also inside widget
# Output areas), the front end's widget errors, the static fallback of a live widget.
PAGE_PROBLEMS = """(notLive) => {
    const problems = [];
    const cellOf = (el) => {
        const cell = el.closest('.cell');
        return cell ? [...document.querySelectorAll('#notebook-container > .cell')].indexOf(cell) : -1;
    };
    document.querySelectorAll('.output_error, .output_stderr').forEach((el) => {
        const where = el.closest('.jupyter-widgets-output-area') ? 'in a widget Output' : 'as cell output';
        const text = el.innerText;  // a traceback's head and its last lines (the error)
        problems.push(`cell ${cellOf(el)}: ${el.classList.contains('output_error') ? 'error' : 'stderr'} `
                      + `${where}: ` + (text.length > 2000 ? `${text.slice(0, 500)}\n[...]\n${text.slice(-1500)}` : text));
    });
    document.querySelectorAll('.output_area').forEach((el) => {
        const text = el.innerText;
        for (const phrase of notLive)
            if (text.includes(phrase) && !el.parentElement.closest('.output_area'))
                problems.push(`cell ${cellOf(el)} shows "${phrase}": ${text.slice(0, 300)}`);
    });
    return problems;
}"""

# The drawn widget views: demos (a widget with an Output) and quick checks (radio buttons).
TAG_WIDGETS = """() => {
    const views = [...document.querySelectorAll('.output_subarea.jupyter-widgets-view')];
    const demos = [], checks = [];
    views.forEach((v) => {
        const cell = [...document.querySelectorAll('#notebook-container > .cell')].indexOf(v.closest('.cell'));
        const title = (v.querySelector('.widget-html-content') || v).innerText.split('\\n')[0].slice(0, 60);
        if (v.querySelector('.jupyter-widgets-output-area, .widget-output')) {
            v.dataset.classicDemo = demos.length;
            demos.push({cell, title, sliders: v.querySelectorAll('.widget-slider').length,
                        image: !!v.querySelector('.jupyter-widgets-output-area img, .widget-output img'),
                        text: v.innerText.slice(0, 500)});
        } else if (v.querySelector('.widget-radio-box')) {
            v.dataset.classicCheck = checks.length;
            checks.push({cell, title, options: [...v.querySelectorAll('.widget-radio-box label')]
                                               .map(l => l.innerText)});
        }
    });
    return {demos, checks};
}"""

# The figure of demo `d` and the text of its Output (src None: no figure).
DEMO_FIGURE = """(d) => {
    const out = document.querySelector(`[data-classic-demo="${d}"]`)
                        .querySelector('.jupyter-widgets-output-area, .widget-output');
    const img = out.querySelector('img');
    return {src: img ? img.src : null, text: out.innerText.slice(0, 1500)};
}"""

# The controls of demo `d`: sliders, dropdowns, multiple selections.
DEMO_CONTROLS = """(d) => {
    const v = document.querySelector(`[data-classic-demo="${d}"]`);
    return {
        sliders: [...v.querySelectorAll('.widget-slider')].map((el, s) => {
            const handle = el.querySelector('.ui-slider-handle');
            const label = el.querySelector('.widget-label');
            const readout = el.querySelector('.widget-readout');
            const vertical = el.classList.contains('widget-vslider');
            return {label: label && label.innerText ? label.innerText : `slider ${s}`,
                    readout: readout ? readout.innerText : '',
                    position: handle ? parseFloat(vertical ? handle.style.bottom : handle.style.left) : null,
                    disabled: !handle || !!handle.closest('.ui-state-disabled, .ui-slider-disabled')};
        }),
        dropdowns: [...v.querySelectorAll('select:not([multiple])')].map(el => ({
            label: (el.closest('.widget-dropdown') || el).innerText.split('\\n')[0],
            options: [...el.options].map(o => o.value), value: el.value, disabled: el.disabled})),
        multiselects: [...v.querySelectorAll('select[multiple]')].map(el => ({
            options: [...el.options].map(o => o.value),
            selected: [...el.selectedOptions].map(o => o.value), disabled: el.disabled})),
    };
}"""

# Before an action on demo `d`: watch its Output. `change` is the first animation frame
# after a new figure (or text in place of one) is in it; `press` the keydown.
ARM = """(d) => {
    const out = document.querySelector(`[data-classic-demo="${d}"]`)
                        .querySelector('.jupyter-widgets-output-area, .widget-output');
    const img = out.querySelector('img');
    const before = img ? img.src : null;
    window.__lat = {press: null, change: null};
    if (window.__obs) window.__obs.disconnect();
    const changed = () => {  // a new figure, or text (an explanation, an error) in place of one
        const now = out.querySelector('img');
        return now ? now.src !== before : out.innerText.trim() !== '';
    };
    const check = () => {
        if (window.__lat.change === null && changed())
            requestAnimationFrame(() => {
                if (window.__lat.change === null && changed()) window.__lat.change = performance.now(); });
    };
    window.__obs = new MutationObserver(check);
    window.__obs.observe(out, {childList: true, subtree: true, attributes: true, characterData: true});
    if (!window.__keyhook) {
        document.addEventListener('keydown', () => {
            if (window.__lat && window.__lat.press === null) window.__lat.press = performance.now();
        }, true);
        window.__keyhook = true;
    }
}"""

FOCUS_SLIDER = """([d, s]) => {
    const el = document.querySelector(`[data-classic-demo="${d}"]`).querySelectorAll('.widget-slider')[s];
    const handle = el.querySelector('.ui-slider-handle');
    handle.scrollIntoView({block: 'center'});
    handle.focus();
    return document.activeElement === handle;
}"""

FEEDBACK = """(q) => {
    const v = document.querySelector(`[data-classic-check="${q}"]`);
    const html = v.querySelectorAll('.widget-html-content');
    return html.length ? html[html.length - 1].innerText : null;
}"""

# --------------------------------------------------------------------------- helpers


def _waited(page, script: str, arg=None, *, timeout_ms: float, polling=250) -> bool:
    """Wait until ``script`` is true in the page; False after ``timeout_ms``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(script, arg=arg, timeout=timeout_ms, polling=polling)
        return True
    except PlaywrightTimeout:
        return False


def _close(page) -> None:
    """Shut the notebook's kernel down (one kernel at a time on 2 cores) and close the page."""
    try:
        page.evaluate("""() => new Promise((resolve) => {
            if (!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.session)) return resolve();
            Jupyter.notebook.set_dirty(false);
            Jupyter.notebook.session.delete(() => resolve(), () => resolve());
            setTimeout(resolve, 10000);
        })""")
    finally:
        page.context.close()


def _print_summary() -> None:
    if not RUN_TIMES:
        return
    lines = ["", "[classic] notebook   run all + checks   sliders   key press -> new figure: median / max (s)"]
    for aid, seconds in RUN_TIMES.items():
        lat = [t for _, t in LATENCIES.get(aid, [])]
        spread = f"{statistics.median(lat):.2f} / {max(lat):.2f}" if lat else "-"
        lines.append(f"[classic] {aid:<22} {seconds:8.1f} s   {len(lat):7d}   {spread}")
    print("\n".join(lines), flush=True)


class Context:
    """What a failure message shows: page problems, console errors, the kernel's log."""

    def __init__(self, page, server: Server, aid: str):
        self.page, self.server, self.aid = page, server, aid
        self.offset = server.log_size()
        self.console: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console.append(m.text))
        page.on("pageerror", lambda e: self.console.append(f"uncaught: {e}"))

    def kernel_errors(self) -> str:
        log = self.server.log_since(self.offset)
        hits = [i for i, line in enumerate(log.splitlines()) if any(e in line for e in KERNEL_LOG_ERRORS)]
        if not hits:
            return ""
        lines = log.splitlines()
        return "\n".join(lines[max(0, hits[0] - 2): hits[0] + 40])

    def console_errors(self) -> list[str]:
        return [m for m in self.console if not any(h in m for h in HARMLESS_CONSOLE)]

    def report(self) -> str:
        parts = []
        try:
            problems = self.page.evaluate(PAGE_PROBLEMS, list(NOT_LIVE))
        except Exception as err:  # noqa: BLE001 (a page that broke: say so, report the rest)
            problems = [f"(the page could not be inspected: {err})"]
        if problems:
            parts.append("page problems:\n  " + "\n  ".join(problems))
        if self.kernel_errors():
            parts.append("kernel log:\n" + self.kernel_errors())
        if self.console_errors():
            parts.append("browser console errors:\n  " + "\n  ".join(self.console_errors()[:20]))
        return "\n".join(parts) or "(no error output, kernel traceback or console error seen)"

    def fail(self, message: str) -> None:
        pytest.fail(f"{self.aid}: {message}\n{self.report()}", pytrace=False)


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_notebook_runs_live_with_ipywidgets_7(aid, classic, browser):
    page = browser.context.browser.new_page(viewport=browser.viewport_size)  # a fresh context
    ctx = Context(page, classic, aid)
    try:
        _check_notebook(page, ctx, classic, aid)
    finally:
        _close(page)


def _check_notebook(page, ctx: Context, server: Server, aid: str) -> None:
    started = time.monotonic()
    page.goto(f"{server.url}/notebooks/{aid}/{aid}.ipynb")
    if not _waited(page, NOTEBOOK_READY, timeout_ms=120_000):
        ctx.fail("the notebook page or its kernel did not come up within 120 s")
    if not _waited(page, WIDGETS_LOADED, timeout_ms=30_000):
        ctx.fail("the widget extension (jupyter-js-widgets/extension) is not loaded in the page")

    # The kernel is .venv-colab's Python, with Colab's ipywidgets and this checkout's helpers.
    facts = page.evaluate(KERNEL_FACTS)
    values = {k: v.get("data", {}).get("text/plain", v.get("evalue")).strip("'")
              for k, v in facts["user_expressions"].items()}
    assert values["widgets"] == WIDGETS_VERSION, f"the kernel runs ipywidgets {values['widgets']}"
    assert Path(values["python"]).parent == ENV / "bin", f"the kernel runs {values['python']}, not {ENV}'s"
    assert Path(values["helpers"]).resolve().parent == ROOT / "helpers", f"helpers from {values['helpers']}"

    # Run All; every code cell gets its execution count.
    page.evaluate("() => Jupyter.notebook.execute_all_cells()")
    if not _waited(page, ALL_RUN, timeout_ms=RUN_TIMEOUT_MS, polling=500):
        ctx.fail(f"Run All did not finish within {RUN_TIMEOUT_MS // 1000} s")
    ran = time.monotonic() - started
    not_run = [c for c in page.evaluate(CELLS) if c["type"] == "code" and not isinstance(c["count"], int)]
    if not_run:
        ctx.fail("code cells without an execution count after Run All (an error stops Run All):\n  "
                 + "\n  ".join(f"cell {c['index']}: {c['head'][:80]}" for c in not_run))

    # Every widget output is drawn as a live widget (stop waiting at the first error).
    watched = [WIDGET_MIME, list(FALLBACKS)]
    drawn = _waited(page, f"([watched, notLive]) => ({WIDGET_OUTPUTS})(watched).every(w => w.drawn)"
                          f" || ({PAGE_PROBLEMS})(notLive).length > 0", [watched, list(NOT_LIVE)],
                    timeout_ms=RENDER_TIMEOUT_MS)
    widget_outputs = page.evaluate(WIDGET_OUTPUTS, watched)
    missing = [w for w in widget_outputs if not w["drawn"]]
    if missing:
        ctx.fail(f"{len(missing)} of {len(widget_outputs)} widget(s) not drawn "
                 + (f"{RENDER_TIMEOUT_MS // 1000} s after Run All" if not drawn else "(errors on the page)")
                 + ":\n  " + "\n  ".join(f"cell {w['cell']}: {w['text']!r}" for w in missing))
    problems = page.evaluate(PAGE_PROBLEMS, list(NOT_LIVE))
    if problems or ctx.kernel_errors():
        ctx.fail("errors after Run All")

    found = page.evaluate(TAG_WIDGETS)
    demos, checks = found["demos"], found["checks"]
    assert len(demos) + len(checks) == len(widget_outputs), (
        f"{aid}: {len(widget_outputs)} widget outputs, but {len(demos)} demos and {len(checks)} quick "
        f"checks found: {found}")
    for d, demo in enumerate(demos):
        if not demo["image"]:
            ctx.fail(f"demo {demo['title']!r} (cell {demo['cell']}) shows no figure: {demo['text']!r}")
        if not demo["sliders"]:
            ctx.fail(f"demo {demo['title']!r} (cell {demo['cell']}) has no slider")

    # Every slider of every demo redraws the figure when moved with the keyboard: in every
    # state of the demo where a greyed-out slider comes alive (all of a multiple selection
    # chosen, then each option of its first dropdown), each slider that is enabled there.
    latencies = LATENCIES.setdefault(aid, [])
    for d, demo in enumerate(demos):
        latencies += _exercise_demo(page, ctx, d, demo)

    # Every quick check answers a click: a wrong option, then the right one.
    for q, check in enumerate(checks):
        _answer(page, ctx, q, check)

    problems = page.evaluate(PAGE_PROBLEMS, list(NOT_LIVE))
    if problems or ctx.kernel_errors():
        ctx.fail("errors after moving the sliders and answering the quick checks")
    if ctx.console_errors():
        ctx.fail("the browser console reports errors")

    RUN_TIMES[aid] = time.monotonic() - started
    print(f"\n[classic] {aid}: Run All {ran:.1f} s, {len(demos)} demo(s), {len(checks)} quick check(s), "
          f"{time.monotonic() - started:.1f} s in all", flush=True)
    for name, seconds in latencies:
        print(f"[classic]   {name:<70} {seconds:6.2f} s", flush=True)


def _exercise_demo(page, ctx: Context, d: int, demo: dict) -> list[tuple[str, float]]:
    controls = page.evaluate(DEMO_CONTROLS, d)
    todo = list(range(len(controls["sliders"])))
    done = []

    def press_sliders(state: str) -> None:
        for s in list(todo):
            if not page.evaluate(DEMO_CONTROLS, d)["sliders"][s]["disabled"]:
                done.append(_move_slider(page, ctx, d, s, demo, state))
                todo.remove(s)

    multiple = page.locator(f'[data-classic-demo="{d}"] select[multiple]')
    for k, ms in enumerate(controls["multiselects"]):
        if set(ms["selected"]) != set(ms["options"]) and not ms["disabled"]:
            _redraw(page, ctx, d, lambda: multiple.nth(k).select_option(ms["options"]),
                    f"demo {demo['title']!r}: choosing every option of its multiple selection")
    dropdowns = [i for i, dd in enumerate(controls["dropdowns"]) if not dd["disabled"]]
    press_sliders("as shown")
    if todo and dropdowns:
        first = controls["dropdowns"][dropdowns[0]]
        single = page.locator(f'[data-classic-demo="{d}"] select:not([multiple])').nth(dropdowns[0])
        for value in first["options"]:
            if not todo:
                break
            if value == single.input_value():
                continue
            _redraw(page, ctx, d, lambda: single.select_option(value),
                    f"demo {demo['title']!r}: choosing {value!r} in {first['label']!r}")
            press_sliders(f"{first['label']} = {value}")
    if todo:
        names = [controls["sliders"][s]["label"] for s in todo]
        ctx.fail(f"demo {demo['title']!r}: slider(s) {names} stay disabled in every state tried")
    return done


def _redraw(page, ctx: Context, d: int, action, what: str) -> float:
    """Seconds from ``action`` (a key press, a choice) to the new figure of demo ``d``."""
    before = page.evaluate(DEMO_FIGURE, d)
    page.evaluate(ARM, d)
    page.evaluate("() => { window.__lat.start = performance.now(); }")
    action()
    start = time.monotonic()
    # Wait for the new figure, watching the kernel's log for a traceback meanwhile.
    while not _waited(page, "() => window.__lat.change !== null", timeout_ms=1000, polling=100):
        elapsed = time.monotonic() - start
        raised = ctx.kernel_errors() or page.evaluate(PAGE_PROBLEMS, list(NOT_LIVE))
        if raised or elapsed > REDRAW_TIMEOUT_S:
            now = page.evaluate(DEMO_FIGURE, d)
            why = ("an error appeared (a callback raised?)" if raised else
                   f"no new figure within {elapsed:.0f} s")
            ctx.fail(f"{what}: {why}; the demo's output shows "
                     f"{'the same figure' if now['src'] == before['src'] else 'no figure'} "
                     f"and the text {now['text']!r}")
    lat = page.evaluate("() => window.__lat")
    after = page.evaluate(DEMO_FIGURE, d)
    if after["src"] is None or after["src"] == before["src"]:
        ctx.fail(f"{what}: the demo's output shows no new figure but the text {after['text']!r}")
    return (lat["change"] - (lat["press"] if lat["press"] is not None else lat["start"])) / 1000


def _move_slider(page, ctx: Context, d: int, s: int, demo: dict, state: str) -> tuple[str, float]:
    slider = page.evaluate(DEMO_CONTROLS, d)["sliders"][s]
    name = f"{demo['title']} / {slider['label']}" + ("" if state == "as shown" else f" ({state})")
    key = "ArrowLeft" if slider["position"] >= 99.999 else "ArrowRight"
    if not page.evaluate(FOCUS_SLIDER, [d, s]):
        ctx.fail(f"slider {name!r}: its handle takes no keyboard focus")

    def press():
        page.keyboard.press(key)
        moved = page.evaluate(DEMO_CONTROLS, d)["sliders"][s]["readout"]
        if moved == slider["readout"]:
            ctx.fail(f"slider {name!r}: {key} did not move it (readout stays {moved!r})")
    return name, _redraw(page, ctx, d, press, f"slider {name!r} ({key} from {slider['readout']!r})")


def _answer(page, ctx: Context, q: int, check: dict) -> None:
    """Click options in order until a wrong one and then the right one have answered."""
    radios = page.locator(f'[data-classic-check="{q}"] .widget-radio-box input[type=radio]')
    n = radios.count()
    if n < 2:
        ctx.fail(f"quick check {check['title']!r} (cell {check['cell']}) has {n} option(s)")

    def click(i: int) -> str:
        before = page.evaluate(FEEDBACK, q)
        radios.nth(i).click()
        if not _waited(page, f"([q, before]) => {{ const t = ({FEEDBACK})(q); "
                             "return t !== null && t.trim() !== '' && t !== before; }",
                       [q, before], timeout_ms=FEEDBACK_TIMEOUT_MS, polling=100):
            ctx.fail(f"quick check {check['title']!r} (cell {check['cell']}): no new feedback "
                     f"{FEEDBACK_TIMEOUT_MS // 1000} s after clicking {check['options'][i]!r} "
                     f"(feedback still {page.evaluate(FEEDBACK, q)!r})")
        text = page.evaluate(FEEDBACK, q)
        if "Correct" not in text and "Not quite" not in text:
            ctx.fail(f"quick check {check['title']!r}: unexpected feedback {text!r}")
        return text

    first = click(0)
    if "Correct" in first:        # the first option is right: a wrong one, then back to it
        if "Not quite" not in click(1):
            ctx.fail(f"quick check {check['title']!r}: two options answer 'Correct'")
        if "Correct" not in click(0):
            ctx.fail(f"quick check {check['title']!r}: the right option no longer says 'Correct'")
        return
    for i in range(1, n):         # wrong first: click on until the right one
        if "Correct" in click(i):
            return
    ctx.fail(f"quick check {check['title']!r}: no option answered 'Correct' ({check['options']})")
