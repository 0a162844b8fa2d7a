"""helpers.audit.LRAudit against real training loops, schedulers and GradScaler.

Each test drives a tiny model by hand (forward, backward, ``optimizer.step()``,
``scheduler.step()``), so a recorded skipped step, a missed group, LRs out of order
or a hook left behind changes a value that is checked exactly.
"""
from __future__ import annotations

import copy
import math
import warnings
from functools import partial

import matplotlib
import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, OneCycleLR, StepLR

from helpers import schedules as S
from helpers.audit import LRAudit, LRMismatch
from helpers.audit_diagnosis import first_mismatch

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


# ---------------------------------------------------------------------- real optimizers under GradScaler
OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}


def scaler_loop(opt, net, iterations: int, overflow_at, sched=None, step_scheduler_on_skip=True):
    """A GradScaler loop with forced overflows; returns the iterations whose update really ran."""
    scaler, updated = torch.amp.GradScaler("cpu"), []
    for i in range(iterations):
        if sched is None:
            for group in opt.param_groups:  # a distinct LR per iteration: shows which were kept
                group["lr"] = 0.01 * (i + 1)
        opt.zero_grad()
        scaler.scale(torch.nn.functional.mse_loss(net(X), Y)).backward()
        if i in overflow_at:
            net.weight.grad[0, 0] = math.inf
        before, scale = net.weight.detach().clone(), scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        skipped = scaler.get_scale() < scale
        assert skipped == torch.equal(net.weight, before) == (i in overflow_at)  # really skipped
        if not skipped:
            updated.append(i)
        if sched is not None and (step_scheduler_on_skip or not skipped):
            sched.step()
    return updated


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_steps_gradscaler_skipped_are_not_recorded_fused_or_not(name, fused):
    """Fused optimizers are called with ``found_inf`` set on an overflow (and skip in the
    kernel); the others are not called at all. Neither skip is a recorded step."""
    net = model()
    opt = OPTIMIZERS[name](net.parameters(), lr=0.01, fused=fused)
    assert getattr(opt, "_step_supports_amp_scaling", False) == fused  # the two code paths of GradScaler.step
    with LRAudit(opt) as audit:
        updated = scaler_loop(opt, net, 10, overflow_at=(2, 5))
    assert updated == [0, 1, 3, 4, 6, 7, 8, 9]
    assert audit.steps == 8
    assert audit.lrs() == pytest.approx([0.01 * (i + 1) for i in updated], rel=1e-15)
    assert audit.skipped == ([2, 4] if fused else [])  # seen only where step() was called


@pytest.mark.parametrize("fused", [True, False])
def test_fused_adamw_buggy_loop_is_flagged_and_fixed_loop_passes(fused):
    """12 iterations, 2 overflows: stepping the scheduler on a skipped step is the bug."""
    steps, make = 12, partial(ExponentialLR, gamma=0.8)
    expected = plan(make, steps, 0.01)
    verdicts = {}
    for fix in (False, True):
        net = model()
        opt = torch.optim.AdamW(net.parameters(), lr=0.01, fused=fused)
        sched = make(opt)
        with LRAudit(opt) as audit, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            scaler_loop(opt, net, steps, overflow_at=(3, 7), sched=sched, step_scheduler_on_skip=not fix)
        verdicts[fix] = audit.compare(expected[:audit.steps] if fix else expected)
    assert verdicts[True] is None
    broken = verdicts[False]
    assert broken.reason == "skipped" and broken.skipped == (3, 7), str(broken)
    assert "GradScaler" in str(broken) and "(steps 3, 7)" in str(broken)
    assert ("the audit saw the optimizer skip 2 updates (inf/NaN gradients) just before recorded steps 3, 6"
            in str(broken)) == fused


# ---------------------------------------------------------------------- wrappers
def test_wrapped_optimizers_are_audited_inside():
    from types import SimpleNamespace

    from lightning.pytorch.core.optimizer import LightningOptimizer

    opt = S.dummy_optimizer(lr=0.1)
    for wrapper in (LightningOptimizer(opt), SimpleNamespace(optimizer=SimpleNamespace(optimizer=opt))):
        with LRAudit(wrapper) as audit:
            opt.step()
        assert audit.optimizer is opt and audit.lrs() == [0.1]
    assert hook_count(opt) == 0


def test_accelerate_optimizer_is_audited_inside():
    """AcceleratedOptimizer passes isinstance(..., Optimizer) but has no hooks of its own."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    opt = S.dummy_optimizer(lr=0.1)
    try:
        wrapped = Accelerator(cpu=True).prepare_optimizer(opt)
        assert isinstance(wrapped, torch.optim.Optimizer) and not hasattr(wrapped, "_optimizer_step_pre_hooks")
        with LRAudit(wrapped) as audit:
            wrapped.step()
    finally:
        AcceleratorState._reset_state(True)
    assert audit.optimizer is opt and audit.lrs() == [0.1]


@pytest.mark.parametrize("bad, name", [([torch.nn.Parameter(torch.zeros(1))], "list"), (None, "NoneType"),
                                       (torch.nn.Linear(1, 1), "Linear")])
def test_anything_else_is_a_type_error_that_says_what_is_expected(bad, name):
    from types import SimpleNamespace

    for value, shown in ((bad, name), (SimpleNamespace(optimizer=bad), "SimpleNamespace")):
        with pytest.raises(TypeError, match=(r"optimizer must be a torch.optim.Optimizer, or a wrapper whose "
                                             r"\.optimizer is one .*AcceleratedOptimizer.*LightningOptimizer.*"
                                             f"got {shown}$")):
            LRAudit(value)


# ---------------------------------------------------------------------- no vacuous pass
@pytest.mark.parametrize("expected", [[0.1] * 3, lambda step: 0.1])
def test_an_audit_that_saw_no_step_is_a_mismatch(expected):
    opt, other = S.dummy_optimizer(lr=0.1), S.dummy_optimizer(lr=0.1)
    with LRAudit(opt) as audit:
        for _ in range(3):
            other.step()  # the loop steps another optimizer
    mismatch = audit.compare(expected)
    assert mismatch is not None and mismatch.reason == "no steps" and mismatch.ran == 0
    text = str(mismatch)
    assert "recorded no optimizer step" in text and "attached to the optimizer that trains" in text
    assert "did the loop run" in text
    with pytest.raises(AssertionError, match="recorded no optimizer step"):
        audit.assert_matches(expected)


# ---------------------------------------------------------------------- tolerance
def test_a_float32_tensor_lr_matches_its_float_plan_in_compare_and_plot():
    import matplotlib.pyplot as plt

    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=torch.tensor(0.01))
    sched = ExponentialLR(opt, gamma=0.9)
    with LRAudit(opt) as audit:
        train(opt, sched, 30, net)
    expected = plan(partial(ExponentialLR, gamma=0.9), 30, 0.01)
    assert audit.lrs()[0] == pytest.approx(0.01, rel=1e-7) and audit.lrs()[0] != 0.01  # float32
    assert audit.compare(expected) is None
    assert audit.summary(expected).mismatching == 0
    assert audit.compare(expected, rtol=1e-9) is not None  # an explicit tolerance is honoured
    ax = audit.plot(expected)
    assert "matches the plan" in ax.get_title() and len(ax.get_lines()) == 2
    plt.close("all")


def test_plot_and_compare_share_the_tolerance():
    import matplotlib.pyplot as plt

    opt = S.dummy_optimizer(lr=0.1)
    with LRAudit(opt) as audit:
        for lr in (0.1, 0.1 * (1 + 1e-7), 0.1):
            opt.param_groups[0]["lr"] = lr
            opt.step()
    for rtol, matches in ((None, False), (1e-6, True)):
        ax = audit.plot([0.1] * 3, rtol=rtol)
        assert ("matches the plan" in ax.get_title()) == matches == (audit.compare([0.1] * 3, rtol=rtol) is None)
        assert len(ax.get_lines()) == (2 if matches else 3)
    plt.close("all")


# ---------------------------------------------------------------------- the notebook's cases
STEPS_NB, PEAK, WARMUP = 40, 0.1, 8


def warmup_cosine(total=STEPS_NB, warmup=WARMUP):
    return lambda opt: torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: S.warmup_cosine_lr(step, 1.0, warmup, total))


def run_loop(bug, steps=STEPS_NB, *, accumulation=4, skip=(0, 20), resume_at=20, fused=False):
    """The loop of notebook 07's first demo (a linear model, GradScaler), with one bug."""
    make = warmup_cosine(steps)
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    # Fused SGD with momentum leaves its momentum buffer uninitialised when GradScaler skips
    # its first step (torch 2.13: whatever was in that memory, e.g. 1e12, is then applied), and
    # the garbage overflows later steps; without momentum the fused path is still exercised.
    opt = torch.optim.SGD(net.parameters(), lr=PEAK, momentum=0.0 if fused else 0.9, fused=fused)
    sched = make(S.dummy_optimizer(PEAK) if bug == "never stepped" else opt)
    scaler = torch.amp.GradScaler("cpu")
    with LRAudit(opt) as audit, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for step in range(steps):
            if bug == "restarted" and step == resume_at:
                sched = make(opt)
            for micro in range(accumulation if bug == "per micro-batch" else 1):
                scaler.scale(torch.nn.functional.mse_loss(net(X), Y)).backward()
                if bug == "per micro-batch" and micro < accumulation - 1:
                    sched.step()
            if bug == "skipped steps" and step in skip:
                net.weight.grad[0, 0] = math.inf
            if bug == "scheduler first":
                sched.step()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
            if bug != "scheduler first":
                sched.step()
    return audit


def nb_plan(steps=STEPS_NB):
    return S.trace_fn(S.warmup_cosine_lr, steps, base_lr=PEAK, warmup_steps=WARMUP, total_steps=steps)


@pytest.mark.parametrize("fused", [False, True])
def test_notebook_skipped_steps_are_named_with_where(fused):
    mismatch = run_loop("skipped steps", fused=fused).compare(nb_plan())
    assert (mismatch.reason, mismatch.skipped) == ("skipped", (0, 20))
    assert str(mismatch).startswith("step 0: planned lr 0, applied 0.0125 — 2 planned steps never ran (steps 0, 20)")
    assert ("just before recorded steps 0, 19" in str(mismatch)) == fused


def test_notebook_restart_is_named_at_its_step():
    mismatch = run_loop("restarted").compare(nb_plan())
    assert (mismatch.reason, mismatch.k, mismatch.step) == ("restarted", 20, 20)
    assert "restarted at step 20" in str(mismatch) and "state_dict" in str(mismatch)


def test_a_restart_at_step_200_of_400_is_found():
    mismatch = run_loop("restarted", steps=400, resume_at=200).compare(nb_plan(400))
    assert (mismatch.reason, mismatch.k) == ("restarted", 200), str(mismatch)


@pytest.mark.parametrize("resume_at", [50, 100, 250])
def test_a_restart_inside_a_plateau_of_the_plan_is_found(resume_at):
    """A step decay every 100 steps (as a LambdaLR, which restarts from its base LRs when
    re-created): the plan's first 100 LRs are equal, so a restart at step 50 only shows at
    step 100; the step of the restart is still named."""
    def make(opt):
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** (step // 100))

    opt = S.dummy_optimizer(lr=0.1)
    sched = make(opt)
    with LRAudit(opt) as audit:
        for step in range(400):
            if step == resume_at:
                sched = make(opt)  # re-created on resume; its state never loaded
            opt.step()
            sched.step()
    mismatch = audit.compare(plan(make, 400, 0.1))
    assert (mismatch.reason, mismatch.k) == ("restarted", resume_at), str(mismatch)


def resumed(resume_at, steps=STEPS_NB, *, load_scheduler=False, recreate=False):
    """Applied LRs before and after a resume in a new process (optimizer state loaded)."""
    make = warmup_cosine(steps)
    opt = S.dummy_optimizer(PEAK)
    sched = make(opt)
    with LRAudit(opt) as before:
        for _ in range(resume_at):
            opt.step()
            sched.step()
    saved = copy.deepcopy((opt.state_dict(), sched.state_dict()))
    opt = S.dummy_optimizer(PEAK)
    sched = make(opt)
    opt.load_state_dict(saved[0])
    if load_scheduler:
        sched.load_state_dict(saved[1])
    if recreate:
        sched = make(opt)
    with LRAudit(opt) as after:
        for _ in range(resume_at, steps):
            opt.step()
            sched.step()
    return before, after


@pytest.mark.parametrize("resume_at", [5, 20, 33])
def test_a_scheduler_whose_state_was_not_loaded_is_named(resume_at):
    """Optimizer loaded, scheduler not: one step at the saved lr, then the plan from its step 1
    (notebook 07, section 4). Named in the whole trace and in the audit attached at the resume."""
    before, after = resumed(resume_at)
    whole = audit_of(before.lrs() + after.lrs()).compare(nb_plan())
    assert (whole.reason, whole.k, whole.offset, whole.step) == ("restarted", resume_at + 1, 1, resume_at + 1), \
        str(whole)
    assert "went back to its step 1" in str(whole) and f"planned {resume_at} steps earlier" in str(whole)
    part = after.compare(nb_plan(), start=resume_at)
    assert (part.reason, part.k, part.offset) == ("restarted", 1, 1), str(part)
    assert f"planned {resume_at} steps earlier" in str(part)
    assert resumed(resume_at, load_scheduler=True)[1].compare(nb_plan(), start=resume_at) is None


def test_a_scheduler_re_created_is_named_in_the_audit_attached_at_the_resume():
    part = resumed(20, recreate=True)[1].compare(nb_plan(), start=20)
    assert (part.reason, part.k, part.offset) == ("restarted", 0, 0), str(part)
    assert "planned 20 steps earlier, from the plan's step 0" in str(part)


def audit_of(lrs):
    opt = S.dummy_optimizer()
    with LRAudit(opt) as audit:
        for lr in lrs:
            opt.param_groups[0]["lr"] = lr
            opt.step()
    return audit


def test_the_other_notebook_cases_keep_their_names():
    expected = nb_plan()
    assert run_loop("ok").compare(expected) is None
    assert run_loop("scheduler first").compare(expected).reason == "ahead"
    assert run_loop("per micro-batch").compare(expected).reason == "stepped too often"
    assert run_loop("never stepped").compare(expected).reason == "constant"


def test_an_audit_attached_mid_run_is_named_and_start_checks_it():
    opt = S.dummy_optimizer(lr=PEAK)
    sched = warmup_cosine()(opt)
    for _ in range(3):
        opt.step()
        sched.step()
    with LRAudit(opt) as audit:
        for _ in range(STEPS_NB - 3):
            opt.step()
            sched.step()
    mismatch = audit.compare(nb_plan())
    assert (mismatch.reason, mismatch.k) == ("ahead", 3)
    assert "or was the audit attached after 3 steps had run (then use compare(plan, start=3))?)" in str(mismatch)
    assert audit.compare(nb_plan(), start=3) is None
    assert audit.compare(lambda step: S.warmup_cosine_lr(step, PEAK, WARMUP, STEPS_NB), start=3) is None
    audit.assert_matches(nb_plan(), start=3)


def test_k_scheduler_steps_per_optimizer_step_names_k_processes():
    applied = np.asarray(nb_plan()[::2])
    for processes, first in ((2, "does each of the 2 processes step the scheduler?"),
                             (1, "is scheduler.step() called once per micro-batch")):
        text = str(first_mismatch(applied, np.asarray(nb_plan()), 1e-9, processes=processes))
        assert "accelerate" in text and "2 processes" in text and first in text.split("(", 1)[1][:60]


# ---------------------------------------------------------------------- adoption
def test_groups_by_name_summary_and_assert_matches():
    net, head = model(), torch.nn.Linear(1, 1)
    opt = torch.optim.SGD([{"params": net.parameters(), "name": "body"},
                           {"params": head.parameters(), "lr": 0.01, "name": "head"}], lr=0.1)
    make = partial(StepLR, step_size=2, gamma=0.5)
    with LRAudit(opt) as audit:
        sched = make(opt)
        for _ in range(6):
            opt.step()
            sched.step()
    assert audit.names == ("body", "head") and audit.lrs("head") == audit.lrs(1)
    assert LRAudit(opt, names=["a", "b"]).names == ("a", "b")
    audit.assert_matches(plan(make, 6, 0.01), group="head")
    with pytest.raises(AssertionError, match=r"^LR audit, group body: step 0: planned lr 0.01, applied 0.1"):
        audit.assert_matches(plan(make, 6, 0.01))  # every group by default
    summary = audit.summary([0.1, 0.1, 0.05, 0.05, 0.025, 0.02], group="body")
    assert (summary.steps, summary.mismatching, summary.worst_step) == (6, 1, 5)
    assert summary.max_rel_error == pytest.approx(0.25)
    assert str(summary).startswith("LR audit, group body: 6 steps, 1 differ from the plan, largest relative "
                                   "error 0.25 at step 5")
    with pytest.raises(ValueError, match=r"group must be a param group index or one of the names \['body', 'head'\]"):
        audit.lrs("tail")
    with pytest.raises(ValueError, match="names must be 2 distinct strings"):
        LRAudit(opt, names=["a"])


def test_found_inf_flags_are_read_in_batches_and_skips_stay_in_place(monkeypatch):
    import helpers.audit as A

    monkeypatch.setattr(A, "SETTLE_EVERY", 3)
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, fused=True)
    audit = LRAudit(opt)
    updated = scaler_loop(opt, net, 10, overflow_at=(1, 4, 8))
    assert len(audit._found_inf) < 3  # settled along the way
    assert audit.lrs() == pytest.approx([0.01 * (i + 1) for i in updated], rel=1e-15)
    assert audit.skipped == [1, 3, 6]


def test_scheduler_plan_copies_nested_schedulers_and_leaves_the_real_one_alone():
    from torch.optim.lr_scheduler import LinearLR, SequentialLR

    from helpers.audit_callbacks import _Run, scheduler_plan

    def build(opt):
        return SequentialLR(opt, [LinearLR(opt, start_factor=0.1, total_iters=3),
                                  ExponentialLR(opt, gamma=0.5)], milestones=[3])

    net, head = model(), torch.nn.Linear(1, 1)
    opt = torch.optim.SGD([{"params": net.parameters()}, {"params": head.parameters(), "lr": 0.01}], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sched = build(opt)
        plans = scheduler_plan(sched, opt, 8)
        reference = S.trace(build(S.dummy_optimizer(lr=0.1)), 8)
    assert plans[0] == reference and plans[1] == pytest.approx([lr / 10 for lr in reference], rel=1e-12)
    assert sched.last_epoch == 0 and opt.param_groups[0]["lr"] == pytest.approx(0.01)
    assert scheduler_plan(sched, opt, 4, every=2)[0] == [reference[0]] * 2 + [reference[1]] * 2

    run = _Run()
    run._audit_init(strict=True, verbose=False, rtol=None)
    run._begin(opt, plans, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(8):
            opt.step()
            sched.step()
            sched.step()  # the bug
    with pytest.raises(AssertionError, match="LR audit, group 0: step 1: .* 2 steps per optimizer step"):
        run._finish()
    assert set(run.mismatches) == {"0", "1"} and run.report.startswith("LR audit: 8 optimizer steps recorded")


def test_a_metric_driven_scheduler_has_no_plan_and_the_report_says_so():
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    from helpers.audit_callbacks import _Run, scheduler_plan

    opt = S.dummy_optimizer(lr=0.1)
    sched = ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="ReduceLROnPlateau depends on the metrics"):
        scheduler_plan(sched, opt, 3)
    run = _Run()
    run._audit_init(strict=True, verbose=False, rtol=None)
    run._begin(opt, lambda: scheduler_plan(sched, opt, 3), 0)
    opt.step()
    run._finish()  # strict, yet nothing to check: no AssertionError
    assert run.report == ("LR audit: 1 optimizer steps recorded, not checked (scheduler must be stepped without "
                          "arguments to have a plan; ReduceLROnPlateau depends on the metrics of the run)")
