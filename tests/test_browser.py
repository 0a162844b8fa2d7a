"""The live experience in a real browser: JupyterLab 4, ipywidgets 8, headless Chromium.

JupyterLab serves fresh copies of the notebooks (outputs cleared, so everything seen
was produced in this run). Chromium, driven by Playwright, runs every solution
notebook top to bottom (notebooks added to ``solutions/`` later are picked up), then
moves every slider of every demo with the keyboard and clicks every option of every
quick check; the start page is also run as a learner gets it. Needs Debian's
`chromium`: installed here when running as root with apt-get (as in CI), otherwise the
tests are skipped with the reason. ``benchmarks/bench_widgets.py`` times the same moves.
"""
from __future__ import annotations

import json

import pytest

from browser_driver import (LAB_ERRORS, answer_quick_checks, close_lab_notebooks, copy_without_outputs, demos,
                            exercise_demos, jupyter_lab, open_lab_notebook, page_text_problems, run_all_lab)
from conftest import ASSIGNMENTS, ROOT, read, solution_path, tool_env

pytestmark = pytest.mark.slow

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def expected_widgets(aid: str) -> tuple[int, int]:
    """(demos, quick checks) the solution shows, counted from its stored outputs."""
    n_demos = n_checks = 0
    for cell in read(solution_path(aid)).cells:
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                text = out["data"].get("text/plain", "")
                n_checks += text.startswith("Quick check")
                n_demos += "use the sliders" in text
    return n_demos, n_checks


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    for aid in ASSIGNMENTS:
        copy_without_outputs(solution_path(aid), tmp / "root" / "solutions" / aid / f"{aid}.ipynb")
    copy_without_outputs(ROOT / "notebooks" / "00_start_here" / "00_start_here.ipynb",
               tmp / "root" / "notebooks" / "00_start_here" / "00_start_here.ipynb")
    with jupyter_lab(tmp / "root", tmp, env=tool_env()) as url:
        yield url


@pytest.fixture(scope="module")
def page(lab, chromium_page):
    return chromium_page


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_every_demo_and_quick_check_responds_in_jupyterlab(lab, page, aid):
    open_lab_notebook(page, lab, f"solutions/{aid}/{aid}.ipynb")
    try:
        run = run_all_lab(page, timeout=300)
        assert not run["errors"], f"{aid}: error or stderr output while running: {run['errors']}"
        assert run["done"] == run["total"], f"{aid}: only {run['done']} of {run['total']} code cells ran"

        n_demos, n_checks = expected_widgets(aid)
        shown = demos(page)
        assert len(shown) == n_demos, f"{aid}: {len(shown)} demos rendered, the notebook shows {n_demos}"
        assert all(d["image"] for d in shown), f"{aid}: a demo without its figure: {shown}"
        moved = exercise_demos(page)
        failed = [m for m in moved if "error" in m]
        assert not failed, f"{aid}: sliders that did not redraw their figure: {failed}"
        assert all(d["sliders"] for d in shown) and len(moved) == sum(len(d["sliders"]) for d in shown)

        checks = answer_quick_checks(page)
        assert len(checks) == n_checks, f"{aid}: {len(checks)} quick checks rendered, the notebook shows {n_checks}"
        for check in checks:
            assert None not in check["feedback"], f"{aid}: an option gave no feedback: {check}"
            verdicts = [f.split(".")[0] for f in check["feedback"]]
            assert verdicts.count("✔ Correct") == 1 and verdicts.count("✘ Not quite") == len(verdicts) - 1, check

        assert not page.evaluate(LAB_ERRORS), f"{aid}: error output after moving the widgets"
        assert not page_text_problems(page, ".jp-Notebook"), f"{aid}: {page_text_problems(page, '.jp-Notebook')}"
        print(f"\n{aid}: ran in {run['seconds']:.1f} s; " + json.dumps(
            {f"{m['demo'][:20]} / {m['slider']}": round(m["ms"][0]) for m in moved}, ensure_ascii=False))
    finally:
        close_lab_notebooks(page)


def test_the_start_page_as_a_learner_gets_it(lab, page):
    """The student version: the demo and quick check work, the practice test fails until solved."""
    open_lab_notebook(page, lab, "notebooks/00_start_here/00_start_here.ipynb")
    try:
        run = run_all_lab(page, timeout=120)
        assert any("NotImplementedError" in e for e in run["errors"]), \
            "the practice exercise's test should fail on the student version"
        assert [m for m in exercise_demos(page) if "error" not in m], "the demo did not redraw"
        (check,) = answer_quick_checks(page)
        assert None not in check["feedback"]
        assert not page_text_problems(page, ".jp-Notebook")
    finally:
        close_lab_notebooks(page)
