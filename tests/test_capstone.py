"""The capstone's grading round trip (notebook 08): what each kind of recipe scores.

The solution notebook runs once in a kernel, as the autograder runs it; then each recipe
below replaces the solution cell and every test cell of the exercise (visible and hidden)
runs, as nbgrader would grade it (a test cell that ends with a number earns that many
points: partial credit). The solution gets full marks; a constant learning rate far too
low and the worked example's recipe copied get at most the points for following the
rules; a recipe that breaks the budget, and the untouched stub, get nothing. A failing test's
message (what the learner's feedback shows) names no hidden budget, seed, module,
reference peak or threshold, and the hidden tests hold none of them: the scoring runs
in a separate interpreter (helpers/capstone.py), whose parameters an instructor can
replace from a private file, and which refuses hooks, extra updates and patched
functions.
"""
from __future__ import annotations

import json
import sys
from dataclasses import astuple
from pathlib import Path

import nbformat
import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from helpers import capstone

from conftest import nbgrader_meta, read, solution_path
from test_wrong_answers import Kernel, exercises, wrong_answers

AID = "08_capstone"
FAILED = {**dict.fromkeys(capstone.CHECKS, False), **dict.fromkeys(capstone.SHARES, 0.0)}
GID = "cap-recipe"
STUB = '''
def recipe(model, budget_steps):
    """(optimizer, scheduler or None) for a run of exactly `budget_steps` optimizer steps on `model`."""
    # YOUR CODE HERE
    raise NotImplementedError()
'''


def test_cells():
    """The test cells of the capstone, in order, with their points."""
    ids = [nbgrader_meta(c)["grade_id"] for c in read(solution_path(AID)).cells
           if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    assert ids == ["cap-rules", "cap-runs", "cap-short", "cap-long", "cap-budget"]


@pytest.fixture(scope="module")
def grade():
    """grade(code) -> {test cell grade id: points} with `code` in place of the solution."""
    nb = read(solution_path(AID))
    solution, tests = exercises(AID)[GID]
    points = [float(nbgrader_meta(c)["points"]) for c in nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    kernel = Kernel(solution_path(AID).parent)
    kernel.run("import matplotlib; matplotlib.use('Agg')")
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert kernel.run(cell.source) is None

    def run(code: str) -> dict[str, float]:
        assert kernel.run(code) is None, "the recipe itself does not run"
        got, errors = {}, {}
        for gid, test, top in zip(ids, tests, points):
            got[gid] = kernel.points(test, top)
            errors[gid] = kernel.run(test) if got[gid] == 0 else None  # the message the feedback would show
        run.messages[code] = {gid: e for gid, e in errors.items() if e is not None}
        return got

    run.solution, run.messages, run.kernel = solution, {}, kernel
    yield run
    kernel.close()


@pytest.mark.slow
def test_the_solution_gets_full_marks(grade):
    scores = grade(grade.solution)
    assert scores == {"cap-rules": 1, "cap-runs": 1, "cap-short": 2, "cap-long": 3, "cap-budget": 2}, scores


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["a constant learning rate far too low (SGD at 1e-3, no schedule)",
                                     "the worked example's peak with SGD (warmup + linear to 0 at 0.015)"])
def test_badly_chosen_lrs_earn_at_most_the_rules_points(grade, mistake):
    scores = grade(wrong_answers(AID)[GID][mistake])
    assert scores["cap-short"] == scores["cap-long"] == 0, scores
    assert sum(scores.values()) <= 4, scores


@pytest.mark.slow
def test_the_worked_examples_recipe_copied_earns_nothing(grade):
    """AdamW is the worked example's optimizer; the graded problem's rules ask for SGD."""
    scores = grade(wrong_answers(AID)[GID]["the worked example's recipe copied (AdamW, warmup + linear at 0.015)"])
    assert sum(scores.values()) == 0, scores


@pytest.mark.slow
def test_a_budget_blind_decay_loses_the_budget_points(grade):
    """ExponentialLR(0.995) happens to fit the default long budget (0.995**600 is 0.05): what gives it
    away is the short one, where its last learning rate is still 82 % of the first."""
    scores = grade(wrong_answers(AID)[GID]["a budget-blind decay: ExponentialLR(0.995) whatever the budget"])
    assert scores["cap-budget"] == 0 and scores["cap-rules"] == 1 and sum(scores.values()) <= 7, scores


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["pre-trains the model inside recipe (more updates than the budget)",
                                     "an SGD subclass that makes two updates per step() call",
                                     "a scheduler whose factor steps the optimizer again"])
def test_budget_cheating_recipe_gets_nothing(grade, mistake):
    scores = grade(wrong_answers(AID)[GID][mistake])
    assert sum(scores.values()) == 0, scores


@pytest.mark.slow
def test_untouched_stub_gets_nothing(grade):
    scores = grade(STUB)
    assert sum(scores.values()) == 0, scores


# What the scorer hides and neither the hidden tests nor the feedback may show: budgets,
# seeds, held-out modules, the reference peak and the score thresholds (the defaults).
HIDDEN = sorted({str(v) for field in astuple(capstone.Hidden())
                 for v in (field if isinstance(field, tuple) else (field,))})


def test_the_hidden_parameters_are_not_in_the_hidden_tests():
    """The hidden tests call the scorer and hold no parameter of it (nor a loop, a reference or a cache)."""
    hidden = "".join(t.split("### BEGIN HIDDEN TESTS", 1)[1] for t in exercises(AID)[GID][1] if "HIDDEN" in t)
    assert "grade(recipe)" in hidden
    assert [h for h in HIDDEN if h in hidden] == []
    assert not any(word in hidden for word in ("_SCORES", "_reference", "manual_seed", "AdamW", "char_lm"))


def test_the_scorer_holds_the_hidden_parameters():
    """HIDDEN is not empty and the scorer's defaults are what the measured thresholds assume."""
    hidden = capstone.Hidden()
    assert len(hidden.seeds) >= 6 and hidden.short_budget <= 50 and hidden.long_budget >= 600
    assert {"2718", "40", "600", "csv", "0.1", "0.01", "0.7"} <= set(HIDDEN)


@pytest.mark.slow
def test_the_stored_reference_losses_are_those_of_a_fresh_run():
    """DEFAULT_LOSSES saves the scorer two training runs; they must be what those runs give (one thread, as scored)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the scorer runs; other thread counts round differently
    try:
        fresh = capstone.reference_losses(capstone.Hidden(), fresh=True)
    finally:
        torch.set_num_threads(threads)
    stored = capstone.reference_losses(capstone.Hidden())
    assert stored.keys() == fresh.keys()
    worst = max(abs(stored[k] - fresh[k]) for k in fresh)
    # CPUs round differently (vector kernels): 600-1000 steps drift by about 1e-3 nats/char from one machine
    # to another, a sixtieth of the gap the scorer grades on (baseline to reference, about 0.19 nats/char).
    assert worst < 3e-3, f"stored reference losses differ from a fresh run by up to {worst:.2g} nats/char"


@pytest.mark.parametrize("raw", ["soon", "0", "-5"])
def test_the_timeout_variable_is_checked(monkeypatch, raw):
    monkeypatch.setenv(capstone.TIMEOUT_ENV, raw)
    with pytest.raises(ValueError, match="timeout|LR_COURSE_CAPSTONE_TIMEOUT"):
        capstone.grade(capstone.reference(0.1))


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_private_file_replaces_the_hidden_parameters(tmp_path, suffix):
    if suffix == ".toml" and sys.version_info < (3, 11):
        pytest.skip("TOML needs Python 3.11")
    values = {"seeds": [11, 523, 9001, 4242, 77, 31337], "short_budget": 35, "long_budget": 900,
              "heldout_modules": ["csv", "pprint"], "full_credit": 0.6}
    path = tmp_path / f"capstone{suffix}"
    path.write_text(json.dumps(values) if suffix == ".json" else "[capstone]\n" + "\n".join(
        f"{k} = {json.dumps(v)}" for k, v in values.items()))
    hidden = capstone.load_hidden({capstone.PRIVATE_ENV: str(path)})
    assert hidden.seeds == tuple(values["seeds"]) and hidden.long_budget == 900
    assert hidden.heldout_modules == ("csv", "pprint") and hidden.full_credit == 0.6
    assert hidden.baseline_lr == capstone.Hidden().baseline_lr  # left out: the default
    assert capstone.load_hidden({}) == capstone.Hidden()


@pytest.mark.parametrize("bad, word", [({"seeds": [1, 1]}, "seeds"), ({"short_budget": 1500}, "short_budget"),
                                       ({"heldout_modules": ["argparse"]}, "heldout_modules"),
                                       ({"full_credit": 1.5}, "full_credit"), ({"reference_peak": 20}, "reference_peak"),
                                       ({"baseline_lr": 0}, "baseline_lr"),
                                       ({"budget": 40}, "unknown")])
def test_a_malformed_private_file_stops_grading(tmp_path, bad, word):
    path = tmp_path / "capstone.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=word):
        capstone.load_hidden({capstone.PRIVATE_ENV: str(path)})
    with pytest.raises(FileNotFoundError):
        capstone.load_hidden({capstone.PRIVATE_ENV: str(tmp_path / "missing.toml")})


def test_only_the_scorers_sandbox_binds_a_copy_of_the_private_file(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import grading_sandbox as gs
    private = tmp_path / "capstone.toml"
    private.write_text("[capstone]\nlong_budget = 900\n")
    folder = tmp_path / "sandbox"
    folder.mkdir()
    copy = gs.copy_private({gs.PRIVATE_ENV: str(private)}, folder)
    assert copy.parent == folder and copy.read_text() == private.read_text()
    assert gs.copy_private({}, folder) is None
    with pytest.raises(gs.SandboxUnavailable, match="LR_COURSE_PRIVATE"):
        gs.copy_private({gs.PRIVATE_ENV: str(tmp_path / "nope.toml")}, folder)
    cmd = gs.sandbox_command(["python"], bwrap="bwrap", workdir=tmp_path, scratch=tmp_path, channels=tmp_path,
                             view=gs.View(), limits=gs.SandboxLimits(), environ={gs.PRIVATE_ENV: str(private)},
                             privileged=False, private=copy)
    inside = gs.private_inside(copy)
    assert inside == "/etc/lr-course-private.toml"
    assert ["--ro-bind", str(copy), inside] == cmd[cmd.index(str(copy)) - 1: cmd.index(str(copy)) + 2]
    assert ["--setenv", gs.PRIVATE_ENV, inside] == cmd[cmd.index(gs.PRIVATE_ENV) - 1: cmd.index(gs.PRIVATE_ENV) + 2]
    plain = gs.sandbox_command(["python"], bwrap="bwrap", workdir=tmp_path, scratch=tmp_path, channels=tmp_path,
                               view=gs.View(), limits=gs.SandboxLimits(), environ={gs.PRIVATE_ENV: str(private)},
                               privileged=False)
    assert str(private) not in plain and gs.PRIVATE_ENV not in plain  # never the instructor's own path
    # A kernel's command: the scorer's socket, never the private file (only its scorer sandbox gets that).
    kernel = gs.sandbox_command(["python"], bwrap="bwrap", workdir=tmp_path, scratch=tmp_path, channels=tmp_path,
                                view=gs.View(), limits=gs.SandboxLimits(),
                                environ={gs.PRIVATE_ENV: str(private), gs.SCORER_ENV: "/elsewhere"},
                                privileged=False, scorer=str(tmp_path / "s"))
    assert ["--setenv", gs.SCORER_ENV, str(tmp_path / "s")] == kernel[kernel.index(gs.SCORER_ENV) - 1:
                                                                       kernel.index(gs.SCORER_ENV) + 2]
    assert gs.PRIVATE_ENV not in kernel and str(copy) not in kernel and "/elsewhere" not in kernel
    # A scoring's two sandboxes: the scorer (no learner code) gets the copy, the planner (the recipe) does not.
    if gs.AsyncKernelManager is None:
        return
    from types import SimpleNamespace
    manager = SimpleNamespace(_sandbox_dir=folder, _sandbox_privileged=False, _sandbox_bwrap="bwrap",
                              _sandbox_limits=gs.SandboxLimits())
    args = (Path(__file__).resolve().parents[1], gs.View(), {gs.PRIVATE_ENV: str(private)}, None, copy, "")
    scorer = gs.SandboxedKernelManager._scorer_command(manager, *args, role="scorer")
    planner = gs.SandboxedKernelManager._scorer_command(manager, *args, role="planner")
    assert str(copy) in scorer and gs.PRIVATE_ENV in scorer and scorer[-1].endswith("_main()"), scorer
    assert str(copy) not in planner and gs.PRIVATE_ENV not in planner and str(private) not in planner
    assert planner[-1].endswith("_plan_main()"), planner
    reference = gs.SandboxedKernelManager._scorer_command(manager, *args, role="reference")
    assert str(copy) in reference and reference[-1].endswith("_reference_main()"), reference


def test_the_scorer_reads_the_private_file(tmp_path, monkeypatch):
    """A private file naming held-out text that does not exist makes every test fail: the scorer read it."""
    path = tmp_path / "capstone.json"
    path.write_text(json.dumps({"heldout_modules": ["no_such_module_here"]}))
    monkeypatch.setenv(capstone.PRIVATE_ENV, str(path))
    assert capstone.grade(capstone.reference(0.1)) == FAILED


# The recipes below are copied to the scorer by value, as a notebook's are (a test module is
# not importable there, and a recipe that cannot be loaded would fail every test for that reason).
import cloudpickle  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _linear(opt, budget):
    return LambdaLR(opt, lambda t: max(0.0, 1 - t / budget))


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)


def second_optimizer_from_a_hook(model, budget):
    opt, extra = _sgd(model), torch.optim.SGD(model.parameters(), lr=0.1)
    opt.register_step_post_hook(lambda *args: extra.step())
    return opt, _linear(opt, budget)


def second_optimizer_from_a_forward_hook(model, budget):
    opt, extra = _sgd(model), torch.optim.SGD(model.parameters(), lr=0.01)
    model.register_forward_pre_hook(lambda *args: extra.step())
    return opt, _linear(opt, budget)


def gradients_scaled_by_a_hook(model, budget):
    opt = _sgd(model)
    for p in model.parameters():
        p.register_hook(lambda g: 4 * g)
    return opt, _linear(opt, budget)


def step_replaced_on_the_optimizer(model, budget):
    opt = _sgd(model)
    sched, inner = _linear(opt, budget), opt.step

    def twice(*args, **kwargs):
        inner(*args, **kwargs)
        return inner(*args, **kwargs)
    opt.step = twice
    return opt, sched


def loss_function_patched(model, budget):
    torch.nn.functional.cross_entropy = lambda *args, **kwargs: torch.zeros((), requires_grad=True)
    opt = _sgd(model)
    return opt, _linear(opt, budget)


def second_optimizer_inside_a_lambda_factor(model, budget):
    opt, extra = _sgd(model), torch.optim.SGD(model.parameters(), lr=0.01)
    return opt, LambdaLR(opt, lambda t: (extra.step(), max(0.0, 1 - t / budget))[1])


@pytest.mark.slow
@pytest.mark.parametrize("cheat", [second_optimizer_from_a_hook, second_optimizer_from_a_forward_hook,
                                   gradients_scaled_by_a_hook, step_replaced_on_the_optimizer,
                                   loss_function_patched, second_optimizer_inside_a_lambda_factor],
                         ids=lambda f: f.__name__)
def test_the_scorer_refuses_what_happens_outside_the_optimizers_step(cheat):
    assert capstone.grade(cheat) == FAILED


def forges_a_result_and_exits(model, budget):
    """What beat the scorer when it ran the recipe in its own interpreter: print a perfect result line, exit."""
    import os as _os
    perfect = {**dict.fromkeys(capstone.CHECKS, True), **dict.fromkeys(capstone.SHARES, 1.0)}
    print(capstone.MARKER + json.dumps(perfect), flush=True)
    _os._exit(0)


def forges_a_result_and_raises_system_exit(model, budget):
    perfect = {**dict.fromkeys(capstone.CHECKS, True), **dict.fromkeys(capstone.SHARES, 1.0)}
    print(capstone.MARKER + json.dumps(perfect), flush=True)
    sys.exit(0)


@pytest.mark.slow
@pytest.mark.parametrize("cheat", [forges_a_result_and_exits, forges_a_result_and_raises_system_exit],
                         ids=lambda f: f.__name__)
def test_a_recipe_cannot_forge_the_scorers_result(cheat):
    assert capstone.grade(cheat) == FAILED


def prefills_momentum_and_reseeds(model, budget):
    """Tampering that the planner does not see and the scorer does not carry: momentum buffers
    filled before the first step, the global seed changed."""
    opt = _sgd(model)
    for p in model.parameters():
        opt.state[p]["momentum_buffer"] = torch.full_like(p, 3.0)
    torch.manual_seed(12345)
    return opt, _linear(opt, budget)


def honest_linear(model, budget):
    opt = _sgd(model)
    return opt, _linear(opt, budget)


def test_the_plan_holds_only_the_schedule_and_the_settings():
    """What the scorer trains with: the same plan for a tampering recipe and its honest part, and
    in it nothing but parameter indices, switches and numbers per step."""
    tampered, honest = capstone.plans(prefills_momentum_and_reseeds, [25]), capstone.plans(honest_linear, [25])
    assert tampered == honest and honest[25] is not None
    plan = honest[25]
    assert plan["flags"] == [[True, False]] and len(plan["steps"]) == 25
    assert plan["steps"][0] == [[0.1, 0.9, 0, 0]] and plan["steps"][-1][0][0] == pytest.approx(0.1 / 25)
    assert capstone.checked_plan(json.loads(json.dumps(plan)), 25, len(plan["groups"][0])) == plan
    for bad in ({**plan, "steps": plan["steps"][:-1]}, {**plan, "groups": [plan["groups"][0] * 2]},
                {**plan, "steps": [[[float("nan"), 0.9, 0, 0]]] * 25}, {**plan, "flags": [[1, 0]]},
                {**plan, "steps": [[[10 ** 400, 0.9, 0, 0]]] * 25},  # too large for a float
                {**plan, "steps": [[[-0.05, 0.9, 0, 0]]] * 25},  # ascent in disguise (with maximize)
                {**plan, "steps": [[[0.1, 0.0, 0, 0]]] * 25}, {**plan, "steps": [[[0.1, 0.9, 0.5, 0]]] * 25},
                {**plan, "steps": [[[0.1, 0.9, 0, -1e-4]]] * 25}):
        assert capstone.checked_plan(bad, 25, len(plan["groups"][0])) is None, bad
    # What PyTorch accepts in a param group but refuses in SGD's constructor is refused here too.
    ascent = capstone.plan_of(lambda m, b: (torch.optim.SGD([{"params": m.parameters(), "lr": -0.05}], momentum=0.9,
                                                           nesterov=True, maximize=True), None), 25)
    assert capstone.checked_plan(ascent, 25, len(plan["groups"][0])) is None


def test_a_plan_line_the_scorer_cannot_read_fails_every_test():
    """A planner controls its line: one nested too deep for JSON fails every test, it does not crash the scorer."""
    import subprocess
    root = str(Path(__file__).resolve().parents[1])
    code = f"import sys; sys.path.insert(0, {root!r}); from helpers.capstone import _main; _main()"
    line = (capstone.known_line(None) + "\n" + capstone.PLAN_MARKER + "[" * 200_000 + "]" * 200_000 + "\n").encode()
    done = subprocess.run([sys.executable, "-I", "-c", code], input=line, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    results = [ln for ln in done.stdout.decode().splitlines() if ln.startswith(capstone.MARKER)]
    assert len(results) == 1 and capstone.read_result(json.loads(results[0][len(capstone.MARKER):])) == FAILED


def test_a_schedule_is_followed_in_every_param_group():
    """The budget check reads every group's plan: a group held constant fails it."""
    def two_groups(model, budget, decay_first=True):
        first, rest = list(model.parameters())[:1], list(model.parameters())[1:]
        opt = torch.optim.SGD([{"params": first}, {"params": rest}], lr=0.1, momentum=0.9, nesterov=True)
        decay = lambda t: max(0.0, 1 - t / budget)  # noqa: E731
        return opt, LambdaLR(opt, [decay, lambda t: 1.0] if decay_first else [decay, decay])
    held = capstone.plan_of(two_groups, 30)
    lrs = [[row[g][0] for row in held["steps"]] for g in range(2)]
    assert not capstone.follows_budget(lrs)
    both = capstone.plan_of(lambda m, b: two_groups(m, b, decay_first=False), 30)
    assert capstone.follows_budget([[row[g][0] for row in both["steps"]] for g in range(2)])


def one_cycle_for_the_budget(model, budget):
    opt = _sgd(model)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.15, total_steps=budget)


def cosine_after_warmup(model, budget):
    opt, warm = _sgd(model), max(1, round(0.05 * budget))
    S = torch.optim.lr_scheduler
    return opt, S.SequentialLR(opt, [S.LinearLR(opt, 0.01, 1.0, warm), S.CosineAnnealingLR(opt, budget - warm)],
                               milestones=[warm])


@pytest.mark.slow
@pytest.mark.parametrize("honest", [one_cycle_for_the_budget, cosine_after_warmup], ids=lambda f: f.__name__)
def test_stock_schedulers_that_follow_the_budget_get_full_marks(honest):
    assert capstone.grade(honest) == {**dict.fromkeys(capstone.CHECKS, True), **dict.fromkeys(capstone.SHARES, 1.0)}


@pytest.mark.slow
def test_no_grading_state_in_the_learners_kernel(grade):
    grade(grade.solution)
    error = grade.kernel.run("assert not [n for n in ('_SCORES', '_reference', '_run', '_SEEDS', '_HX', '_gap') "
                             "if n in dir()], 'grading state in the kernel'")
    assert error is None, error


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["a constant learning rate far too low (SGD at 1e-3, no schedule)",
                                     "tuned to the notebook's budget: OneCycleLR with total_steps=200",
                                     "ReduceLROnPlateau (needs a metric the grader does not pass)",
                                     "SGD at a learning rate far too high (diverges)"])
def test_failure_messages_name_no_hidden_parameter(grade, mistake):
    code = wrong_answers(AID)[GID][mistake]
    if code not in grade.messages:
        grade(code)
    messages = grade.messages[code]
    assert messages, f"'{mistake}' should fail some test"
    leaks = {gid: [h for h in HIDDEN if h in message] for gid, message in messages.items()}
    assert not any(leaks.values()), f"failure messages name hidden parameters: {leaks} in {messages}"


# What a learner's own cell could do against the capstone's scorer, and the flag it gets.
CAPSTONE_CHEATS = {
    "replaces the scorer": ("from helpers import capstone\ncapstone.grade = lambda recipe: {}", "patch"),
    "replaces the scorer by its module path": ("import helpers.capstone\nhelpers.capstone.grade = len", "patch"),
    "replaces subprocess.run": ("import subprocess\nsetattr(subprocess, 'run', print)", "patch"),
    "replaces the loss": ("import torch.nn.functional as F\nF.cross_entropy = len", "patch"),
    "steps an optimizer inside a factor": ("def recipe(m, T):\n    o = make(m)\n    return o, LambdaLR(o, lambda t: "
                                           "o.step() or 1.0)", "nested-step"),
    "runs code when copied to the scorer": ("class R:\n    def __reduce__(self):\n        return (print, ())",
                                            "pickle"),
    "exits the scorer early": ("import os\nos._exit(0)", "process"),
    "forges the scorer's result line": ("print('capstone-result:{}')", "forged-result"),
}


@pytest.mark.parametrize("name", CAPSTONE_CHEATS)
def test_cheats_against_the_scorer_are_flagged(name):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from suspicious import scan_source
    source, key = CAPSTONE_CHEATS[name]
    assert key in [k for _, k, _ in scan_source(source)]


def test_an_honest_training_loop_is_not_flagged_as_a_nested_step():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from suspicious import scan_source
    assert scan_source("def train(opt, sched):\n    for _ in range(3):\n        opt.step()\n        sched.step()\n"
                       "model.weight = w\n") == []


PROBE = """\
import glob, os, cloudpickle, helpers.capstone
print("PROBE files:", {p: open(p).read() for p in glob.glob("/etc/lr-course-private*") + glob.glob("/**/capstone.json")})
print("PROBE env:", os.environ.get("LR_COURSE_PRIVATE"))
def _leak(model, budget_steps):
    import glob, json, os, sys
    text = "".join(open(p).read() for p in glob.glob("/etc/lr-course-private*"))
    sys.stdout.write("capstone-result:" + json.dumps({"quick": True, "leak": text}) + "\\n")
    sys.stdout.flush()
    os._exit(0)
print("PROBE reply:", helpers.capstone._ask_broker(os.environ["LR_COURSE_SCORER"], cloudpickle.dumps(_leak), 50))
"""


@pytest.mark.slow
def test_autograde_in_the_sandbox_uses_the_private_file(tmp_path):
    """The documented cycle for 08, sandboxed, with a private file: the solution keeps full marks, and a
    constant learning rate loses most of the long budget's points to the private file's demand (all the gap)."""
    import shutil
    import subprocess

    from nbgrader.api import Gradebook

    from conftest import ROOT, tool_env
    sys.path.insert(0, str(ROOT / "tools"))
    import grading_sandbox
    try:
        grading_sandbox.check_available()
    except grading_sandbox.SandboxUnavailable as err:
        pytest.skip(str(err))
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "tools", course / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "solutions" / AID, course / "solutions" / AID)
    private = tmp_path / "private" / "capstone.json"
    private.parent.mkdir()
    private.write_text(json.dumps({"seeds": [11, 523, 9001, 4242, 77, 31337], "full_credit": 1.0}))
    private.chmod(0o600)
    env = {**tool_env(), capstone.PRIVATE_ENV: str(private)}

    def nbgrader(*args):
        done = subprocess.run(["nbgrader", *args, "--log-level=WARN"], cwd=course, env=env, capture_output=True,
                              text=True, timeout=1200)
        assert done.returncode == 0, done.stdout + done.stderr

    nbgrader("generate_assignment", AID, "--force")
    solution = read(solution_path(AID))
    constant = read(solution_path(AID))
    for cell in constant.cells:
        if nbgrader_meta(cell).get("grade_id") == GID:
            cell.source = ("def recipe(model, budget_steps):\n"
                           "    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True), None\n")
    # A curious learner: looks for the private file, then asks the scorer itself, with a recipe
    # that reads the file there and prints its own result line carrying it (and exits).
    reader = read(solution_path(AID))
    for cell in reader.cells:
        if nbgrader_meta(cell).get("grade_id") == GID:
            cell.source = PROBE + cell.source
    for student, nb in (("solution", solution), ("constant", constant), ("reader", reader)):
        folder = course / "submitted" / student / AID
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{AID}.ipynb")
    nbgrader("autograde", AID)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {(sub.student_id, g.name): g.auto_score for sub in gb.assignment_submissions(AID)
                  for nb in sub.notebooks for g in nb.grades if g.name.startswith("cap-")}
    assert all(scores["solution", gid] > 0 for gid in ("cap-rules", "cap-runs", "cap-short", "cap-long",
                                                       "cap-budget")), sorted(scores.items())
    assert scores["constant", "cap-short"] > 0 and scores["constant", "cap-long"] < 1.5, scores
    assert scores["constant", "cap-budget"] == 0, scores
    # The reader found no file, no path, and got back only which tests pass; its scoring was
    # used up, so the hidden tests score nothing.
    ran = "\n".join(o.get("text", "") for c in read(course / "autograded" / "reader" / AID / f"{AID}.ipynb").cells
                    for o in c.get("outputs", []))
    assert "PROBE files: {}" in ran and "PROBE env: None" in ran, ran
    assert "PROBE reply: ['capstone-result:{" in ran and "31337" not in ran and "leak" not in ran, ran
    assert all(scores["reader", gid] == 0 for gid in ("cap-runs", "cap-short", "cap-long", "cap-budget")), scores
    # The grading process kept what the scorer found, with the gaps the kernel never got, and
    # the report reads it: the reader asked twice.
    def kept(student):
        nb = read(course / "autograded" / student / AID / f"{AID}.ipynb")
        return nb.metadata["lr_course"][grading_sandbox.SCORER_METADATA]
    (solved,) = kept("solution")
    assert all(v is True or v > 0 for v in solved["tests"].values()) and set(solved["gaps"]) == {"short", "long"}, \
        solved
    assert len(kept("reader")) == 2 and kept("reader")[1]["tests"] is None
    from grade_report import main as report
    assert report([AID, "--course", str(course), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "asked 2 times" in text.split("## Suspicious submissions", 1)[1].split("\n## ")[0], text
    assert "## The capstone's scorer" in text and "| solution |" in text
