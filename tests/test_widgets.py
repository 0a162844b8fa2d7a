"""Demos and quick checks: they redraw, degrade to static output, and work on ipywidgets 7.7."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT
from helpers import widgets
from helpers._display import WIDGET_MIME
from helpers.quiz import quick_check

# Each demo, and a setting a learner might move to.
DEMOS = {
    "widget_check_demo": dict(frequency=7),
    "lr_trajectory_demo": dict(lr=0.21),
    "schedule_explorer": dict(chosen=("StepLR", "warmup + cosine"), logy=True, steps=200),
    "range_test_demo": dict(num_iters=30, smooth=0.5),
    "cyclical_demo": dict(mode="one-cycle", cycles=2),
    "warmup_demo": dict(warmup_pct=20, optimizer="RAdam"),
    "branched_sweep_demo": dict(n_budgets=5, cooldown_pct=30, shape="1-sqrt"),
    "isolation_demo": dict(log2_lr=-8.0),
}


def _png(demo) -> bytes:
    (out, *_) = demo.output.outputs
    return base64.b64decode(out["data"]["image/png"])


def test_every_demo_factory_is_covered():
    factories = {name for name in widgets.__all__ if name.endswith(("_demo", "_explorer"))}
    assert factories == set(DEMOS)


@pytest.mark.parametrize("name", DEMOS)
def test_demo_redraws_when_a_control_moves(name):
    demo = getattr(widgets, name)()
    first = _png(demo)
    assert first.startswith(b"\x89PNG") and demo.renders == 1
    demo.set(**DEMOS[name])
    assert demo.renders > 1 and _png(demo) != first


@pytest.mark.parametrize("name", DEMOS)
def test_demo_shows_a_static_figure_without_a_widget_front_end(name):
    bundle = getattr(widgets, name)()._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"]
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "text/plain" in bundle


def test_schedule_explorer_prints_the_matching_pytorch_code():
    demo = widgets.schedule_explorer().set(chosen=("StepLR", "CosineAnnealingLR"), step_size=10, gamma=0.5)
    assert demo.output.outputs[1]["text"].splitlines() == [
        "StepLR(optimizer, step_size=10, gamma=0.5)",
        "CosineAnnealingLR(optimizer, T_max=100, eta_min=0.0)",
    ]


def test_an_impossible_setting_is_explained_not_drawn_blank():
    demo = widgets.schedule_explorer().set(chosen=())
    assert demo.output.outputs[0]["text"].startswith("Cannot draw this setting: select at least one")
    demo.set(chosen=("StepLR",))
    assert "image/png" in demo.output.outputs[0]["data"]


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="eigenvalues"):
        widgets.lr_trajectory_demo(eigenvalues=(1.0, -1.0))
    with pytest.raises(ValueError, match="steps"):
        widgets.schedule_explorer(steps=5)
    with pytest.raises(ValueError, match="low"):
        widgets.log_slider("lr", 0.1, 0.0, 1.0)
    with pytest.raises(ValueError, match="unknown control"):
        widgets.widget_check_demo().set(nope=1)


@pytest.mark.parametrize("value, low, high, per_decade", [
    (0.03, 1e-4, 1.0, 4), (0.0123, 1e-5, 0.1, 4), (1e-3, 1e-3, 1.0, 10), (0.37, 0.01, 0.37, 40),
    (6.1e-2, 1e-3, 1.0, 4)])
def test_log_slider_ticks_pass_through_the_initial_value(value, low, high, per_decade):
    """A key press moves a slider by whole ticks: the initial value must be one of them,
    or the slider snaps away from it (in the classic front end of Colab's ipywidgets 7.7)
    and can never return. The ends stay inside [low, high], less than a tick away."""
    s = widgets.log_slider("lr", value, low, high, steps_per_decade=per_decade)
    assert s.value == value and s.step == pytest.approx(1 / per_decade)
    ticks_to_value = (np.log10(value) - s.min) / s.step
    assert ticks_to_value == pytest.approx(round(ticks_to_value), abs=1e-9)
    assert (s.max - s.min) / s.step == pytest.approx(round((s.max - s.min) / s.step), abs=1e-9)
    assert np.log10(low) - 1e-12 <= s.min < np.log10(low) + s.step
    assert np.log10(high) - s.step < s.max <= np.log10(high) + 1e-12


def test_code_under_a_demo_fits_the_narrowest_output_area_and_breaks_only_between_arguments():
    text = widgets.cyclical_demo().output.outputs[1]["text"]
    assert "CyclicLR(" in text and max(len(line) for line in text.splitlines()) <= widgets.CODE_WIDTH
    code = ("OneCycleLR(optimizer, max_lr=[0.1, 0.01], total_steps=1000, pct_start=0.3, "
            "anneal_strategy='cos', cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)")
    wrapped = widgets.wrap_code(code)
    assert max(len(line) for line in wrapped.splitlines()) <= widgets.CODE_WIDTH < len(code)
    assert re.sub(r",\n +", ", ", wrapped) == code  # only line breaks added, after commas
    assert all(line.startswith(" " * len("OneCycleLR(")) for line in wrapped.splitlines()[1:])


def test_quick_check_gives_immediate_feedback_and_a_static_question():
    q = quick_check("Pick b.", {"a": "no, because x", "b": "yes, because y"}, answer="b")
    assert q.correct is None and q.feedback.value == ""
    assert q.choose("a").correct is False and "Not quite" in q.feedback.value and "because x" in q.feedback.value
    assert q.choose("b").correct is True and "Correct" in q.feedback.value
    bundle = q._repr_mimebundle_()
    assert "Pick b." in bundle["text/html"] and "<li>a</li>" in bundle["text/html"]
    assert "because" not in bundle["text/html"], "the static version must not give the answer away"
    with pytest.raises(ValueError, match="answer"):
        quick_check("?", {"a": "", "b": ""}, answer="c")


IPYWIDGETS_77 = ROOT / ".venv" / "ipywidgets-7.7.1"


@pytest.fixture(scope="module")
def ipywidgets_77():
    """ipywidgets 7.7.1 (what Colab runs) in a folder of its own, put first on sys.path."""
    if not (IPYWIDGETS_77 / "ipywidgets" / "__init__.py").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--target", str(IPYWIDGETS_77), "ipywidgets==7.7.1", "ipython_genutils==0.2.0"],
                       check=True)
    return IPYWIDGETS_77


def test_demos_and_quick_checks_work_with_ipywidgets_7_7(ipywidgets_77):
    script = textwrap.dedent(f"""
        import json, ipywidgets
        assert ipywidgets.__version__ == "7.7.1", ipywidgets.__version__
        from helpers import widgets
        from helpers.quiz import quick_check
        report = {{}}
        for name, values in {DEMOS!r}.items():
            demo = getattr(widgets, name)()
            before = demo.renders
            demo.set(**values)
            bundle = demo._repr_mimebundle_()
            report[name] = [before, demo.renders, sorted(bundle)]
        q = quick_check("?", {{"a": "x", "b": "y"}}, answer="b").choose("b")
        report["quiz"] = q.correct
        print(json.dumps(report))
    """)
    env = dict(os.environ, PYTHONPATH=str(ipywidgets_77), MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report.pop("quiz") is True
    for name, (before, after, mimes) in report.items():
        assert before == 1 and after > 1, name
        assert mimes == sorted([WIDGET_MIME, "image/png", "text/plain"]), name


def test_a_layout_key_measures_the_layout_once_per_key_and_keeps_the_figure_inside():
    from matplotlib.figure import Figure

    def render(lr, wide):
        fig = Figure(figsize=(4, 3))
        ax = fig.add_subplot()
        ax.plot([(1 - lr) ** t for t in range(20)])
        ax.set_ylabel("loss", fontsize=30 if wide else 10)
        return fig

    controls = {"lr": widgets.log_slider("lr", 0.1, 0.01, 1.0), "wide": widgets.W.Checkbox(value=False)}
    demo = widgets.FigureDemo(render, controls, layout_key=lambda lr, wide: wide)
    first = demo._layouts[False]
    demo.set(lr=0.5)
    assert demo._layouts == {False: first}, "moving the data alone must reuse the layout"
    demo.set(wide=True)
    assert set(demo._layouts) == {False, True}
    assert demo._layouts[True]["left"] > first["left"], "a larger label needs a new layout"
    # Without bbox cropping the image is the whole figure: 4 x 3 inches at 100 dpi.
    from PIL import Image
    import io
    assert Image.open(io.BytesIO(base64.b64decode(demo._png))).size == (400, 300)


def test_the_trajectory_demo_keeps_one_loss_scale_for_every_learning_rate():
    demo = widgets.lr_trajectory_demo()
    slider = demo.controls["lr"]
    limits = set()
    for lr in (10 ** slider.min, 0.1, 10 ** slider.max):
        demo.set(lr=lr)
        fig = demo.render(lr=lr)
        limits.add(fig.axes[-1].get_ylim())
        low, high = fig.axes[-1].get_ylim()
        loss = fig.axes[-1].lines[0].get_ydata()
        assert low < loss.min() and loss.max() < high, f"lr = {lr}: the loss leaves the axis"
    assert len(limits) == 1


def _states(demo):
    """Settings of the demo's choice controls: every dropdown option, every single selection."""
    choices = {k: c for k, c in demo.controls.items() if isinstance(c, (widgets.W.Dropdown, widgets.W.SelectMultiple))}
    if not choices:
        return [{}]
    (name, control), = choices.items()  # the course's demos have at most one
    multiple = isinstance(control, widgets.W.SelectMultiple)
    return [{name: (option,) if multiple else option} for option in control.options]


def _other_value(slider):
    """A neighbouring position of the slider (a key press)."""
    step = slider.step
    return slider.value + step if slider.value + step <= slider.max else slider.value - step


@pytest.mark.slow
@pytest.mark.parametrize("name", DEMOS)
def test_a_slider_is_enabled_exactly_when_it_changes_the_figure(name):
    demo = getattr(widgets, name)()
    sliders = {k for k, c in demo.controls.items() if isinstance(c, (widgets.W.IntSlider, widgets.W.FloatSlider,
                                                                      widgets.W.FloatLogSlider))}
    ever_enabled = set()
    for state in _states(demo):
        demo.set(**state)
        for key in sorted(sliders):
            slider = demo.controls[key]
            before, value = demo.output.outputs, slider.value
            if isinstance(slider, widgets.W.FloatLogSlider):
                slider.value = 10 ** _other_value(type("S", (), {"value": np.log10(value), "step": slider.step,
                                                                  "max": slider.max})())
            else:
                slider.value = _other_value(slider)
            changed = demo.output.outputs != before
            assert changed != slider.disabled, (f"{name} at {state}: {key} is "
                                                f"{'disabled but changes' if changed else 'enabled but leaves'} the figure")
            ever_enabled |= {key} - ({key} if slider.disabled else set())
            slider.value = value
    assert ever_enabled == sliders, f"{name}: sliders never enabled: {sorted(sliders - ever_enabled)}"


def test_prose_under_a_demo_wraps_between_words_without_a_hanging_indent():
    prose = ("audit.compare: step 0: planned lr 0, applied 0.025 (is scheduler.step() called before "
             "optimizer.step()? the plan is ahead by one step from the start)")
    wrapped = widgets.wrap_code(prose)
    lines = wrapped.splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= widgets.CODE_WIDTH
    assert " ".join(lines) == prose and not any(line.startswith(" ") for line in lines)


def test_a_laid_out_figure_is_drawn_once_with_the_pixels_savefig_gives():
    import io

    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    from helpers._display import figure_png

    fig = Figure(figsize=(5, 3), dpi=72)  # a dpi of its own: the PNG is still drawn at 100
    ax = fig.add_subplot(xscale="log")
    ax.plot([1e-3, 1e-1, 10], [3, 1, 2], label="$\\eta$ (mathtext)")
    ax.legend()
    fig.tight_layout()  # leaves a placeholder layout engine, which makes savefig draw twice
    reference = io.BytesIO()
    fig.savefig(reference, format="png", dpi=100)
    draws = []
    fig.canvas.mpl_connect("draw_event", draws.append)
    png = base64.b64decode(figure_png(fig, tight=False))
    assert len(draws) == 1, "the figure must be drawn exactly once"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(Image.open(reference)))
    assert fig.dpi == 72
    # Redrawn in place, the figure keeps its Agg canvas (and the renderer's text cache).
    assert isinstance(fig.canvas, FigureCanvasAgg)
    # A pyplot figure keeps the canvas its backend gave it.
    managed = plt.figure()
    canvas = managed.canvas
    figure_png(managed, tight=False)
    assert managed.canvas is canvas
    plt.close(managed)


def test_a_figure_with_a_layout_engine_gets_the_pixels_savefig_gives():
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    from helpers._display import figure_png

    def figure():
        fig = Figure(figsize=(4, 3), layout="constrained")
        ax = fig.add_subplot()
        ax.set_ylabel("loss", fontsize=30)
        fig.colorbar(ax.imshow(np.arange(12.0).reshape(3, 4)), ax=ax, label="a colour bar")
        return fig

    reference = io.BytesIO()
    figure().savefig(reference, format="png", dpi=100)
    png = base64.b64decode(figure_png(figure(), tight=False))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(Image.open(reference)))


def test_the_garbage_collector_is_paused_while_a_demo_draws_and_restored_after():
    import gc

    from matplotlib.figure import Figure

    seen = []

    def render(lr):
        seen.append(gc.isenabled())
        fig = Figure(figsize=(2, 2))
        fig.add_subplot().plot([0, lr])
        return fig

    assert gc.isenabled()
    demo = widgets.FigureDemo(render, {"lr": widgets.W.FloatSlider(value=0.5)}, layout_key=lambda lr: None)
    demo.set(lr=0.7)
    assert seen == [False, False] and gc.isenabled()

    def broken(lr):
        raise ValueError("lr too large")

    demo.render = broken
    demo.set(lr=0.9)  # shown as "Cannot draw", and the collector must come back
    assert gc.isenabled()


def test_the_branched_sweep_demo_draws_the_schedules_and_costs_of_its_plan_in_one_figure():
    from helpers.schedules import linear_warmup_lr, warmup_cosine_lr, wsd_branch_lr

    figures = []
    demo = widgets.branched_sweep_demo(peak_lr=0.05, warmup_steps=10, min_lr_ratio=0.2)
    render = demo.render
    demo.render = lambda **v: figures.append(render(**v)[0]) or (figures[-1], "")
    demo.set(longest=500, n_budgets=3, cooldown_pct=20, shape="cosine")
    demo.set(n_budgets=2)  # fewer budgets: the lines of the third must disappear
    fig = figures[-1]
    assert all(f is fig for f in figures), "the demo must redraw one figure in place"
    ax, ax_cost = fig.axes
    budgets, lines = [250, 500], [line for line in ax.get_lines() if len(line.get_xdata())]
    assert len(lines) == 1 + 2 * len(budgets), "the stable run, one cosine run and one cooldown per budget"
    stable, *rest = lines
    assert np.allclose(stable.get_ydata(), [linear_warmup_lr(t, 0.05, 10) for t in range(501)])
    for budget, cosine, cooldown in zip(budgets, rest[:2], rest[2:]):
        assert np.allclose(cosine.get_ydata(), [warmup_cosine_lr(t, 0.05, 10, budget, 0.01) for t in range(budget + 1)])
        branch = budget - round(0.2 * budget)
        assert list(cooldown.get_xdata()) == list(range(branch, budget + 1))
        assert np.allclose(cooldown.get_ydata(), [wsd_branch_lr(t, 0.05, 10, branch, budget - branch,
                                                                decay_type="cosine") for t in range(branch, budget + 1)])
    # Stable run to the last branch (400) plus both cooldowns (50 + 100), against 250 + 500.
    assert [bar.get_height() for bar in ax_cost.patches] == [550, 750]
    assert ax.get_title() == "budgets [250, 500]"
    assert ax_cost.get_ylim()[1] > 750 and ax.get_xlim()[1] > 500


def test_the_branched_sweep_demo_explains_a_cooldown_inside_the_warmup_and_validates():
    demo = widgets.branched_sweep_demo(warmup_steps=20).set(longest=100, n_budgets=8, cooldown_pct=5)
    assert "inside the warmup of 20 steps" in demo.output.outputs[0]["text"]
    for kwargs, name in [(dict(peak_lr=0), "peak_lr"), (dict(warmup_steps=96), "warmup_steps"),
                         (dict(min_lr_ratio=1.5), "min_lr_ratio"), (dict(max_budgets=0), "max_budgets")]:
        with pytest.raises(ValueError, match=name):
            widgets.branched_sweep_demo(**kwargs)
