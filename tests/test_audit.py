"""helpers.audit.LRAudit against real training loops, schedulers and GradScaler.

Each test drives a tiny model by hand (forward, backward, ``optimizer.step()``,
``scheduler.step()``), so a recorded skipped step, a missed group, LRs out of order
or a hook left behind changes a value that is checked exactly.
"""
from __future__ import annotations

import math
import warnings
from functools import partial

import matplotlib
import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, OneCycleLR, StepLR

from helpers import schedules as S
from helpers.audit import LRAudit, LRMismatch

matplotlib.use("Agg")

# Any warning fails a test; the two that a buggy loop provokes on purpose are caught locally.
pytestmark = pytest.mark.filterwarnings("error")

X, Y = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)), torch.ones(8, 1)


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1)


def backward(net: torch.nn.Module) -> None:
    torch.nn.functional.mse_loss(net(X), Y).backward()


def train(opt, sched, steps: int, net) -> None:
    """The correct loop: optimizer.step() then scheduler.step(), once per step."""
    for _ in range(steps):
        opt.zero_grad()
        backward(net)
        opt.step()
        sched.step()


def hook_count(opt) -> int:
    return len(opt._optimizer_step_pre_hooks) + len(opt._optimizer_step_post_hooks)


def plan(make, steps: int, lr: float, value: str = "lr") -> list[float]:
    """The reference trace of a fresh scheduler ``make(optimizer)`` (helpers.schedules.trace)."""
    return S.trace(make(S.dummy_optimizer(lr=lr)), steps, value=value)


# ---------------------------------------------------------------------- recording
def test_one_cycle_lrs_and_momenta_equal_the_real_scheduler_trace():
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    make = partial(OneCycleLR, max_lr=0.5, total_steps=20)
    with LRAudit(opt) as audit:
        train(opt, make(opt), 20, net)
    expected = plan(make, 20, 0.1)
    assert audit.steps == 20
    assert audit.lrs() == expected  # exact, in order: a shuffled or shifted record fails
    assert audit.momenta() == plan(make, 20, 0.1, value="momentum")
    assert audit.compare(expected, rtol=0) is None
    assert audit.compare(partial(S.one_cycle_lr, max_lr=0.5, total_steps=20)) is None
    assert audit.compare(expected[::-1]) is not None


def test_two_param_groups_each_get_their_own_lrs_and_momenta():
    net, head = model(), torch.nn.Linear(1, 1)
    opt = torch.optim.SGD([{"params": net.parameters()},
                           {"params": head.parameters(), "lr": 0.01, "momentum": 0.5}], lr=0.1, momentum=0.9)
    with LRAudit(opt) as audit:
        sched = StepLR(opt, step_size=2, gamma=0.5)
        for _ in range(5):
            opt.zero_grad()
            head(net(X)).sum().backward()
            opt.step()
            sched.step()
    assert audit.lrs(0) == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert audit.lrs(1) == [0.01, 0.01, 0.005, 0.005, 0.0025]
    assert audit.momenta(0) == [0.9] * 5 and audit.momenta(1) == [0.5] * 5
    assert audit.compare(plan(partial(StepLR, step_size=2, gamma=0.5), 5, 0.01), group=1) is None
    assert audit.compare(plan(partial(StepLR, step_size=2, gamma=0.5), 5, 0.01), group=0).reason == "unexplained"


def test_momenta_are_betas0_for_adam_and_absent_for_adagrad():
    params = [torch.nn.Parameter(torch.zeros(2))]
    adam, adagrad = torch.optim.Adam(params, betas=(0.8, 0.99)), torch.optim.Adagrad(params)
    with LRAudit(adam) as a, LRAudit(adagrad) as b:
        adam.step(); adagrad.step()
    assert a.momenta() == [0.8] and b.momenta() == [] and b.lrs() == [0.01]


def test_a_step_skipped_by_gradscaler_is_not_recorded():
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    audit = LRAudit(opt)
    for i in range(5):
        for group in opt.param_groups:  # a distinct LR per iteration: shows which step was kept
            group["lr"] = 0.1 * (i + 1)
        opt.zero_grad()
        scaler.scale(torch.nn.functional.mse_loss(net(X), Y)).backward()
        if i == 2:
            net.weight.grad[0, 0] = math.inf  # overflow: GradScaler must skip optimizer.step()
            before = net.weight.detach().clone()
        scaler.step(opt)
        scaler.update()
        if i == 2:
            assert torch.equal(net.weight, before) and scaler.get_scale() < 65536.0  # really skipped
    assert audit.steps == 4
    assert audit.lrs() == pytest.approx([0.1, 0.2, 0.4, 0.5], rel=1e-15)


def test_a_step_that_raised_is_not_recorded():
    opt = S.dummy_optimizer(lr=0.1)
    audit = LRAudit(opt)

    def closure():
        raise RuntimeError("loss failed")

    with pytest.raises(RuntimeError, match="loss failed"):
        opt.step(closure)
    opt.param_groups[0]["lr"] = 0.2
    opt.step()
    assert audit.lrs() == [0.2]


# ---------------------------------------------------------------------- hooks
def test_context_manager_and_remove_leave_no_hooks():
    opt = S.dummy_optimizer()
    with LRAudit(opt) as audit:
        assert audit.active and hook_count(opt) == 2
        opt.step()
    assert not audit.active and hook_count(opt) == 0
    opt.step()
    assert audit.steps == 1  # not recorded after exit, and the record stays readable

    audit = LRAudit(opt)
    audit.remove()
    audit.remove()  # idempotent
    opt.step()
    assert audit.steps == 0 and hook_count(opt) == 0 and "removed" in repr(audit)


def test_the_context_manager_removes_its_hooks_when_the_loop_raises():
    opt = S.dummy_optimizer()
    with pytest.raises(KeyError):
        with LRAudit(opt):
            raise KeyError("boom")
    assert hook_count(opt) == 0


def test_two_audits_on_one_optimizer_are_independent():
    opt = S.dummy_optimizer(lr=1.0)
    outer = LRAudit(opt)
    for i in range(6):
        if i == 2:
            inner = LRAudit(opt)
        if i == 4:
            inner.remove()
        opt.param_groups[0]["lr"] = float(i)
        opt.step()
    assert outer.lrs() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert inner.lrs() == [2.0, 3.0]
    assert outer.active and hook_count(opt) == 2
    outer.remove()
    assert hook_count(opt) == 0


# ---------------------------------------------------------------------- diagnosis
@pytest.mark.parametrize("step_first, offset", [(False, 3), (True, 0)])
def test_scheduler_stepped_per_micro_batch_is_named(step_first, offset):
    """The usual accumulation loop, with the bug: scheduler.step() on every micro-batch.

    Stepping the optimizer at the end of each group of 4 (the usual place) lets the
    scheduler step 3 times before the first optimizer step: applied[i] == planned[4 i + 3];
    stepping it at the start of each group gives applied[i] == planned[4 i].
    """
    net, accumulation, steps = model(), 4, 20
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = CosineAnnealingLR(opt, T_max=steps)
    with LRAudit(opt) as audit, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()"
        for micro_batch in range(steps * accumulation):
            if step_first and micro_batch % accumulation == 0:
                opt.step()
                opt.zero_grad()
            backward(net)
            if not step_first and (micro_batch + 1) % accumulation == 0:
                opt.step()
                opt.zero_grad()
            sched.step()  # the bug: once per micro-batch
    expected = plan(partial(CosineAnnealingLR, T_max=steps), steps, 0.1)
    mismatch = audit.compare(expected)
    assert audit.steps == steps
    assert (mismatch.reason, mismatch.k, mismatch.offset) == ("stepped too often", 4, offset)
    assert mismatch.step == (0 if offset else 1) and mismatch.applied == expected[4 * mismatch.step + offset]
    assert "micro-batch" in str(mismatch) and "gradient accumulation" in str(mismatch)
    assert ("4*i + 3" if offset else "4*i (") in str(mismatch)


def test_per_micro_batch_scheduler_with_a_correct_loop_matches():
    net, accumulation, steps = model(), 4, 20
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = CosineAnnealingLR(opt, T_max=steps)
    with LRAudit(opt) as audit:
        for _ in range(steps):
            opt.zero_grad()
            for _ in range(accumulation):
                backward(net)
            opt.step()
            sched.step()
    assert audit.compare(plan(partial(CosineAnnealingLR, T_max=steps), steps, 0.1)) is None


def test_scheduler_step_before_optimizer_step_is_named_as_a_shift():
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = ExponentialLR(opt, gamma=0.9)
    with LRAudit(opt) as audit, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyTorch's "step() before optimizer.step()"
        for _ in range(10):
            opt.zero_grad()
            backward(net)
            sched.step()
            opt.step()
    expected = plan(partial(ExponentialLR, gamma=0.9), 10, 0.1)
    mismatch = audit.compare(expected)
    assert (mismatch.reason, mismatch.k, mismatch.step) == ("ahead", 1, 0)
    assert mismatch.expected == expected[0] and mismatch.applied == expected[1]
    text = str(mismatch)
    assert text.startswith("step 0: planned lr 0.1, applied 0.09 — the schedule is 1 step ahead")
    assert "scheduler.step() called before optimizer.step()" in text and "\n" not in text


def test_gradscaler_skip_with_the_scheduler_still_stepping_is_named():
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched, scaler = ExponentialLR(opt, gamma=0.5), torch.amp.GradScaler("cpu")
    with LRAudit(opt) as audit, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the scheduler stepped after a skipped step
        for i in range(8):
            opt.zero_grad()
            scaler.scale(torch.nn.functional.mse_loss(net(X), Y)).backward()
            if i == 0:
                net.bias.grad[0] = math.nan
            scaler.step(opt)
            scaler.update()
            sched.step()
    mismatch = audit.compare(plan(partial(ExponentialLR, gamma=0.5), 8, 0.1))
    assert audit.steps == 7
    assert (mismatch.reason, mismatch.k, mismatch.ran, mismatch.planned) == ("ahead", 1, 7, 8)
    assert "GradScaler" in str(mismatch) and str(mismatch).endswith("(7 steps ran, 8 planned)")


def test_plan_recorded_after_scheduler_step_is_named_behind():
    opt = S.dummy_optimizer(lr=0.1)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    after = []
    with LRAudit(opt) as audit:
        for _ in range(9):
            opt.step()
            sched.step()
            after.append(sched.get_last_lr()[0])  # the learner's plan: one step late
    mismatch = audit.compare(after)
    assert (mismatch.reason, mismatch.k, mismatch.step) == ("behind", 1, 2)
    assert "1 step behind" in str(mismatch)


@pytest.mark.parametrize("other_optimizer", [False, True])
def test_a_scheduler_that_never_steps_this_optimizer_is_named(other_optimizer):
    opt = S.dummy_optimizer(lr=0.1)
    sched = StepLR(S.dummy_optimizer(lr=0.1) if other_optimizer else opt, step_size=2, gamma=0.5)
    with LRAudit(opt) as audit:
        for _ in range(6):
            opt.step()
            if other_optimizer:
                sched.optimizer.step()
                sched.step()
    mismatch = audit.compare(plan(partial(StepLR, step_size=2, gamma=0.5), 6, 0.1))
    assert (mismatch.reason, mismatch.step, mismatch.applied) == ("constant", 2, 0.1)
    assert "never changed" in str(mismatch) and "scheduler.step()" in str(mismatch)


def test_fewer_and_more_steps_than_planned():
    opt = S.dummy_optimizer(lr=0.1)
    with LRAudit(opt) as audit:
        for _ in range(4):
            opt.step()
    fewer = audit.compare([0.1] * 6)
    assert fewer == LRMismatch(4, 0.1, None, "fewer steps", 0, 4, 6)
    assert str(fewer).startswith("step 4: planned lr 0.1, no step ran — only 4 optimizer steps ran, 6 planned")
    more = audit.compare([0.1] * 3)
    assert (more.step, more.expected, more.applied, more.reason) == (3, None, 0.1, "more steps")
    assert audit.compare(lambda step: 0.1) is None  # a function covers every step that ran


def test_no_pattern_named_when_none_explains_the_whole_trace():
    opt = S.dummy_optimizer(lr=0.1)
    with LRAudit(opt) as audit:
        for lr in [0.1, 0.09, 0.5, 0.07, 0.06]:
            opt.param_groups[0]["lr"] = lr
            opt.step()
    mismatch = audit.compare([0.1, 0.09, 0.08, 0.07, 0.06])
    assert (mismatch.step, mismatch.expected, mismatch.applied, mismatch.reason) == (2, 0.08, 0.5, "unexplained")
    assert str(mismatch).startswith("step 2: planned lr 0.08, applied 0.5 — no simple pattern")


def test_tolerance_is_relative_with_a_floor_near_zero():
    opt = S.dummy_optimizer(lr=0.1)
    with LRAudit(opt) as audit:
        for lr in [0.1, 1e-20]:
            opt.param_groups[0]["lr"] = lr
            opt.step()
    assert audit.compare([0.1 * (1 + 1e-12), 0.0]) is None
    assert audit.compare([0.1 * (1 + 1e-6), 0.0]).step == 0
    assert audit.compare([0.1 * (1 + 1e-6), 0.0], rtol=1e-5) is None
    assert audit.compare(torch.tensor([0.1, 0.0], dtype=torch.float64)) is None


def test_message_shows_enough_digits_to_differ():
    assert "planned lr 0.1, applied 0.1000001" in str(LRMismatch(0, 0.1, 0.1000001, "unexplained", 0, 1, 1))


# ---------------------------------------------------------------------- plot
def test_plot_draws_plan_applied_and_mismatches():
    import matplotlib.pyplot as plt

    opt = S.dummy_optimizer(lr=0.1)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    with LRAudit(opt) as audit:
        for _ in range(6):
            opt.step()
            sched.step()
    fig, (left, right) = plt.subplots(1, 2)
    good = plan(partial(StepLR, step_size=2, gamma=0.5), 6, 0.1)
    assert audit.plot(good, ax=left) is left
    assert [line.get_label() for line in left.get_lines()] == ["planned lr", "applied lr"]
    assert list(left.get_lines()[0].get_xdata()) == list(range(6)) and left.get_legend() is not None
    assert "matches the plan" in left.get_title()
    audit.plot([0.1] * 6, ax=right)
    marks = right.get_lines()[2]
    assert marks.get_label() == "mismatch (4 steps)" and list(marks.get_xdata()) == [2, 3, 4, 5]
    assert right.get_title() == "LR audit, group 0: first mismatch at step 2 (no simple pattern)"
    assert [line.get_label() for line in audit.plot().get_lines()] == ["applied lr"]
    plt.close("all")


# ---------------------------------------------------------------------- errors
def two_group_audit() -> LRAudit:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    return LRAudit(torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1))


@pytest.mark.parametrize("call, message", [
    (lambda: LRAudit([torch.nn.Parameter(torch.zeros(1))]), "optimizer must be a torch.optim.Optimizer, got list"),
    (lambda: LRAudit(None), "optimizer must be a torch.optim.Optimizer, got NoneType"),
    (lambda: two_group_audit().lrs(3), r"group must be an integer in \[0, 1\], got 3"),
    (lambda: two_group_audit().momenta(-1), r"group must be an integer in \[0, 1\], got -1"),
    (lambda: two_group_audit().compare([0.1], group=True), r"group must be an integer in \[0, 1\], got True"),
    (lambda: two_group_audit().plot(group=2), r"group must be an integer in \[0, 1\], got 2"),
    (lambda: two_group_audit().compare([0.1], rtol=-1e-9), "rtol must be a finite number >= 0, got -1e-09"),
    (lambda: two_group_audit().compare([0.1], rtol=math.nan), "rtol must be a finite number >= 0, got nan"),
    (lambda: two_group_audit().compare("0.1"),
     "expected must be a sequence of learning rates or a function step -> lr, got str"),
    (lambda: two_group_audit().compare(0.1), "expected must be a sequence .* got float"),
    (lambda: two_group_audit().compare(x for x in [0.1]), "expected must be a sequence .* got generator"),
    (lambda: two_group_audit().compare([0.1, math.inf]), "expected\\[1\\] must be a finite number, got inf"),
    (lambda: two_group_audit().plot(["a"]), "expected\\[0\\] must be a finite number, got 'a'"),
])
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_plan_function_returning_a_non_number_is_named():
    audit = two_group_audit()
    audit._optimizer.step()
    with pytest.raises(ValueError, match=r"expected\(0\) must be a finite number, got None"):
        audit.compare(lambda step: None)


def test_recording_needs_no_matplotlib():
    """helpers.audit imports matplotlib only in plot(): processes that only record (the ranks of
    helpers.distributed) start faster."""
    import subprocess
    import sys

    code = "import sys, helpers.audit; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
