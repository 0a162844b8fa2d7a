"""helpers.feedback: what learners see when their schedule is right, wrong or unfinished."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, CyclicLR, LinearLR, OneCycleLR, SequentialLR, StepLR

from helpers import schedules as S
from helpers.feedback import ScheduleComparison, assert_schedule_matches, compare_schedule

pytestmark = pytest.mark.filterwarnings("error")


def step_lr_early(step, base_lr, step_size, gamma=0.1):
    """Drops one step too soon (a frequent slip)."""
    return base_lr * gamma ** ((step + 1) // step_size)


def step_lr_late(step, base_lr, step_size, gamma=0.1):
    return base_lr * gamma ** (max(step - 1, 0) // step_size)


def test_correct_function_passes():
    result = compare_schedule(S.step_lr, S.step_lr, 100, base_lr=0.1, step_size=30)
    assert isinstance(result, ScheduleComparison)
    assert result.ok and bool(result)
    assert result.first_mismatch is None and result.n_mismatches == 0 and result.n_steps == 100
    assert result.message == str(result) == "All 100 steps match."


def test_an_independent_closed_form_passes_against_torch():
    def cosine(step, base_lr, T_max, eta_min=0.0):
        return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max)) / 2

    assert compare_schedule(cosine, CosineAnnealingLR, 60, base_lr=0.1, T_max=20, eta_min=1e-3).ok


def test_one_step_early_is_explained():
    result = compare_schedule(step_lr_early, S.step_lr, 100, base_lr=0.1, step_size=30)
    assert not result.ok
    assert result.first_mismatch == (29, S.step_lr(29, 0.1, 30), step_lr_early(29, 0.1, 30))
    bad = [s for s in range(100) if not math.isclose(step_lr_early(s, 0.1, 30), S.step_lr(s, 0.1, 30))]
    assert result.n_mismatches == len(bad) == 3
    assert result.message == (
        "First difference at step 29: expected 0.1, got 0.01 (3 of 100 steps differ). "
        "Your values are the expected ones one step later: your schedule runs one step early."
    )


def test_one_step_late_is_explained():
    result = compare_schedule(step_lr_late, StepLR, 70, base_lr=0.1, step_size=30)
    assert result.first_mismatch[0] == 30
    assert "one step late" in result.message


def test_other_hints():
    kw = dict(base_lr=0.1, gamma=0.5)
    negative = compare_schedule(lambda step, base_lr, gamma: -base_lr, S.exponential_lr, 5, **kw)
    assert "never negative" in negative.message
    constant = compare_schedule(lambda step, base_lr, gamma: base_lr, S.exponential_lr, 5, **kw)
    assert constant.first_mismatch[0] == 1 and "same value at every step" in constant.message

    def rounded_pi(step, base_lr, T_max):
        return base_lr * (1 + math.cos(3.14159 * step / T_max)) / 2

    close = compare_schedule(rounded_pi, S.cosine_annealing_lr, 10, base_lr=0.1, T_max=10)
    assert "close but not equal" in close.message

    single = compare_schedule(lambda step: 0.2, lambda step: 0.1, [5])  # no evidence for any hint
    assert single.message == "First difference at step 5: expected 0.1, got 0.2 (1 of 1 steps differ)."

    def from_a_tenth(step, base_lr, warmup_steps):
        return base_lr * (0.1 + 0.9 * min(step, warmup_steps) / warmup_steps)

    start = compare_schedule(from_a_tenth, S.linear_warmup_lr, 5, base_lr=1.0, warmup_steps=3)
    assert start.first_mismatch[0] == 0 and "Step 0" in start.message


def test_tolerances():
    def approx(step, base_lr, gamma):
        return S.exponential_lr(step, base_lr, gamma) * (1 + 1e-7)

    assert not compare_schedule(approx, S.exponential_lr, 10, base_lr=0.1, gamma=0.9).ok
    assert compare_schedule(approx, S.exponential_lr, 10, rtol=1e-6, base_lr=0.1, gamma=0.9).ok
    tiny = compare_schedule(lambda step, base_lr: 1e-13, lambda step, base_lr: 0.0, 3, base_lr=1.0)
    assert tiny.ok  # within atol=1e-12 of an LR of zero
    assert not compare_schedule(lambda step, base_lr: 1e-13, lambda step, base_lr: 0.0, 3, atol=0.0, base_lr=1.0).ok


def test_bad_return_values_are_reported():
    tensor = compare_schedule(lambda step: torch.tensor(0.5), lambda step: 0.5, 3)
    assert not tensor.ok and ".item()" in tensor.message and tensor.n_mismatches == 3
    none = compare_schedule(lambda step: None, lambda step: 0.1, 3)
    assert "returned a NoneType" in none.message and "got None" in none.message
    nan = compare_schedule(lambda step: math.nan, lambda step: 0.1, 3)
    assert "not a finite number" in nan.message
    flag = compare_schedule(lambda step: True, lambda step: 1.0, 3)
    assert "returned a bool" in flag.message
    assert compare_schedule(lambda step: np.float32(0.5), lambda step: 0.5, 3).ok


def test_learner_exceptions_propagate_unchanged():
    def stub(step, base_lr, step_size, gamma=0.1):
        raise NotImplementedError("write step_lr")

    with pytest.raises(NotImplementedError, match="write step_lr"):
        compare_schedule(stub, S.step_lr, 10, base_lr=0.1, step_size=3)
    with pytest.raises(NotImplementedError):
        assert_schedule_matches(stub, S.step_lr, 10, base_lr=0.1, step_size=3)
    with pytest.raises(TypeError):  # wrong signature
        assert_schedule_matches(lambda step: 0.1, S.step_lr, 10, base_lr=0.1, step_size=3)


def test_assert_is_silent_on_success_and_clear_on_failure(capsys):
    assert assert_schedule_matches(S.step_lr, StepLR, 40, base_lr=0.1, step_size=30) is None
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    with pytest.raises(AssertionError) as info:
        assert_schedule_matches(step_lr_early, StepLR, 40, base_lr=0.1, step_size=30)
    assert str(info.value).startswith("First difference at step 29: expected 0.1, got 0.01")


def test_torch_class_references():
    kw = dict(base_lr=0.01, max_lr=0.1, step_size_up=3, mode="triangular2")
    assert compare_schedule(S.cyclic_lr, CyclicLR, 30, **kw).ok  # base_lr goes to CyclicLR itself
    kw = dict(max_lr=0.1, total_steps=30, pct_start=0.4, three_phase=True)
    assert compare_schedule(S.one_cycle_lr, OneCycleLR, 30, **kw).ok
    wrong = dict(kw, three_phase=False)
    assert not compare_schedule(lambda step, **k: S.one_cycle_lr(step, **wrong), OneCycleLR, 30, **kw).ok


def test_scheduler_instance_reference():
    opt = S.dummy_optimizer(lr=0.1)
    sched = SequentialLR(
        opt,
        [LinearLR(opt, start_factor=0.1, total_iters=5), CosineAnnealingLR(opt, T_max=20)],
        milestones=[5],
    )
    learner = S.compose(
        [
            (S.linear_lr, 5, dict(base_lr=0.1, start_factor=0.1, total_iters=5)),
            (S.cosine_annealing_lr, None, dict(base_lr=0.1, T_max=20)),
        ]
    )
    assert compare_schedule(learner, sched, 25).ok
    assert sched.last_epoch == 24  # it was stepped through the steps
    with pytest.raises(ValueError, match="fresh"):
        compare_schedule(learner, sched, 25)


def test_steps_argument():
    seen = []

    def spy(step, base_lr, gamma):
        seen.append(step)
        return S.exponential_lr(step, base_lr, gamma)

    result = compare_schedule(spy, S.exponential_lr, [7, 3, 3, 0], base_lr=0.1, gamma=0.9)
    assert result.ok and result.n_steps == 3 and seen == [0, 3, 7]
    for bad in (0, -3, [], [1, -1], "10", 2.5):
        with pytest.raises(ValueError, match="steps"):
            compare_schedule(S.exponential_lr, S.exponential_lr, bad, base_lr=0.1, gamma=0.9)


def test_invalid_reference_and_tolerances():
    with pytest.raises(ValueError, match="reference"):
        compare_schedule(S.step_lr, 0.1, 10, base_lr=0.1, step_size=3)
    with pytest.raises(ValueError, match="rtol"):
        compare_schedule(S.step_lr, S.step_lr, 10, rtol=-1.0, base_lr=0.1, step_size=3)
    with pytest.raises(ValueError, match="atol"):
        compare_schedule(S.step_lr, S.step_lr, 10, atol=math.inf, base_lr=0.1, step_size=3)


# --------------------------------------------------------------------------- "from the formula" guards
def test_forbidden_uses_finds_direct_aliased_dotted_and_indirect_uses():
    import torch
    from torch.optim.lr_scheduler import CyclicLR as Renamed

    from helpers.feedback import forbidden_uses
    from helpers.schedules import cyclic_lr

    def clean(step, base_lr):
        return base_lr * math.cos(step)

    def helper(step):
        return cyclic_lr(step, 0.1, 1.0)

    def indirect(step, base_lr):
        return helper(step)

    assert forbidden_uses(clean) == []
    assert forbidden_uses(lambda s: Renamed) == ["Renamed"]
    assert "lr_scheduler" in forbidden_uses(lambda s: torch.optim.lr_scheduler.StepLR)
    assert forbidden_uses(indirect) == ["cyclic_lr"]
    assert forbidden_uses(lambda s: [helper(t) for t in range(s)]) == ["cyclic_lr"]  # nested code


def test_without_references_blocks_schedulers_and_helpers_then_restores_them():
    import importlib

    from torch.optim.lr_scheduler import StepLR

    from helpers import schedules
    from helpers.feedback import without_references

    namespace = {"alias": schedules.cosine_annealing_lr, "other": math.cos}
    with without_references(namespace):
        for attempt in (lambda: StepLR(S.dummy_optimizer(), step_size=2),
                        lambda: importlib.import_module("helpers.schedules").step_lr(0, 0.1, 2),
                        lambda: namespace["alias"](0, 0.1, T_max=5)):
            with pytest.raises(AssertionError, match="must not use"):
                attempt()
        assert namespace["other"] is math.cos
    assert namespace["alias"] is schedules.cosine_annealing_lr
    assert S.trace(StepLR(S.dummy_optimizer(lr=0.1), step_size=2), 3) == pytest.approx([0.1, 0.1, 0.01])
