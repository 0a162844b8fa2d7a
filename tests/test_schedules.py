"""helpers.schedules against PyTorch's schedulers and transformers' schedules.

References are driven here by hand (``optimizer.step()`` then
``scheduler.step()``, no helper code involved), and every value must satisfy
``|ours - ref| <= max(1e-9 * |ref|, 1e-12 * base_lr)``.
"""
from __future__ import annotations

import itertools
import math
import pickle
import random

import numpy as np
import pytest
import torch
import transformers
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from transformers.optimization import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup,
    get_inverse_sqrt_schedule,
    get_wsd_schedule,
)

from helpers import schedules as S

# Any warning (e.g. "lr_scheduler.step() before optimizer.step()") fails a test.
pytestmark = pytest.mark.filterwarnings("error")


def _optimizer(lr: float, kind: str = "sgd") -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(2))]
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def reference(make, lr: float, n: int, *, kind: str = "sgd", key: str = "lr") -> list[float]:
    """Values of param group 0 for steps 0..n-1 of the scheduler ``make(optimizer)``."""
    opt = _optimizer(lr, kind)
    sched = make(opt)
    out = []
    for i in range(n):
        if i:
            opt.step()  # no gradients: a no-op, but PyTorch expects it first
            sched.step()
        group = opt.param_groups[0]
        out.append(group["lr"] if key == "lr" else group["betas"][0] if kind == "adam" else group["momentum"])
    return out


def assert_close(fn, kwargs: dict, ref: list[float], scale: float, steps=None) -> None:
    """``fn(step, **kwargs)`` equals ``ref[step]`` within the spec tolerance (``scale`` = base_lr)."""
    for step in steps if steps is not None else range(len(ref)):
        ours, want = fn(step, **kwargs), ref[step]
        assert isinstance(ours, float), (fn.__name__, kwargs, step, ours)
        assert abs(ours - want) <= max(1e-9 * abs(want), 1e-12 * scale), (
            f"{fn.__name__}({step}, **{kwargs}) = {ours!r}, reference {want!r}"
        )


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


# --------------------------------------------------------------------------- PyTorch schedules
def test_step_lr():
    rng = random.Random(0)
    for step_size, gamma in itertools.product([1, 2, 3, 7, 30], [0.1, 0.5, 0.9, 1.0, 1.5]):
        base_lr = log_uniform(rng, 1e-5, 1.0)
        ref = reference(lambda o: StepLR(o, step_size=step_size, gamma=gamma), base_lr, 4 * step_size + 5)
        assert_close(S.step_lr, dict(base_lr=base_lr, step_size=step_size, gamma=gamma), ref, base_lr)


def test_step_lr_default_gamma_and_first_drop():
    # The first drop is at step == step_size (after step_size scheduler.step() calls).
    assert S.step_lr(29, 0.1, step_size=30) == 0.1
    assert S.step_lr(30, 0.1, step_size=30) == pytest.approx(0.01, rel=1e-12)


def test_multistep_lr_with_repeats_and_zero():
    rng = random.Random(1)
    cases = [[], [0], [3], [2, 2], [0, 0, 5], [1, 4, 4, 4, 9], [5, 10, 10, 20]]
    for _ in range(20):
        cases.append(sorted(rng.randint(0, 25) for _ in range(rng.randint(1, 6))))
    for milestones in cases:
        gamma = rng.choice([0.1, 0.3, 0.5, 2.0])
        base_lr = log_uniform(rng, 1e-4, 1.0)
        n = 2 * max(milestones, default=5) + 5
        ref = reference(lambda o: MultiStepLR(o, milestones=milestones, gamma=gamma), base_lr, n)
        assert_close(S.multistep_lr, dict(base_lr=base_lr, milestones=milestones, gamma=gamma), ref, base_lr)


def test_multistep_lr_accepts_tuple_and_default_gamma():
    ref = reference(lambda o: MultiStepLR(o, milestones=[2, 5]), 0.3, 8)
    assert_close(S.multistep_lr, dict(base_lr=0.3, milestones=(2, 5)), ref, 0.3)


def test_exponential_lr():
    rng = random.Random(2)
    for gamma in [0.5, 0.9, 0.99, 0.999, 1.0, 1.01, 1.1]:
        base_lr = log_uniform(rng, 1e-5, 1.0)
        ref = reference(lambda o: ExponentialLR(o, gamma=gamma), base_lr, 300)
        assert_close(S.exponential_lr, dict(base_lr=base_lr, gamma=gamma), ref, base_lr)


def test_linear_lr():
    rng = random.Random(3)
    grid = itertools.product([1e-3, 0.1, 1 / 3, 0.5, 1.0], [0.0, 0.05, 0.5, 1.0], [1, 2, 5, 17, 100])
    for start_factor, end_factor, total_iters in grid:
        base_lr = log_uniform(rng, 1e-4, 1.0)
        kw = dict(start_factor=start_factor, end_factor=end_factor, total_iters=total_iters)
        ref = reference(lambda o: LinearLR(o, **kw), base_lr, 3 * total_iters + 2)
        assert_close(S.linear_lr, dict(base_lr=base_lr, **kw), ref, base_lr)


def test_linear_lr_defaults():
    ref = reference(lambda o: LinearLR(o), 0.2, 12)
    assert_close(S.linear_lr, dict(base_lr=0.2), ref, 0.2)


def test_polynomial_lr():
    rng = random.Random(4)
    for total_iters, power in itertools.product([1, 2, 5, 40, 100], [0.3, 0.5, 1.0, 2.0, 3.7]):
        base_lr = log_uniform(rng, 1e-4, 1.0)
        ref = reference(lambda o: PolynomialLR(o, total_iters=total_iters, power=power), base_lr, 3 * total_iters + 2)
        assert_close(S.polynomial_lr, dict(base_lr=base_lr, total_iters=total_iters, power=power), ref, base_lr)
    ref = reference(lambda o: PolynomialLR(o), 0.1, 12)  # defaults
    assert_close(S.polynomial_lr, dict(base_lr=0.1), ref, 0.1)


def test_linear_decay_to_zero_two_ways():
    a = S.trace_fn(S.linear_lr, 30, base_lr=0.1, start_factor=1.0, end_factor=0.0, total_iters=20)
    b = S.trace_fn(S.polynomial_lr, 30, base_lr=0.1, total_iters=20, power=1.0)
    assert all(abs(x - y) <= 1e-15 for x, y in zip(a, b))
    assert a[20:] == [0.0] * 10


def test_cosine_annealing_lr_three_periods():
    rng = random.Random(5)
    for T_max, eta_ratio in itertools.product([1, 2, 3, 5, 10, 50, 333, 1000], [0.0, 0.1, 0.5, 1.0, 1.5]):
        base_lr = log_uniform(rng, 1e-4, 1.0)
        eta_min = eta_ratio * base_lr
        ref = reference(lambda o: CosineAnnealingLR(o, T_max=T_max, eta_min=eta_min), base_lr, 3 * T_max + 3)
        assert_close(S.cosine_annealing_lr, dict(base_lr=base_lr, T_max=T_max, eta_min=eta_min), ref, base_lr)


def test_cosine_annealing_lr_rises_again_after_t_max():
    lrs = S.trace_fn(S.cosine_annealing_lr, 41, base_lr=1.0, T_max=10)
    assert lrs[10] == 0.0 and lrs[20] == 1.0 and lrs[40] == 1.0
    assert lrs[11] > lrs[10] and lrs[15] == pytest.approx(0.5, abs=1e-15)


def test_cosine_annealing_warm_restarts_lr():
    rng = random.Random(6)
    for T_0, T_mult, eta_ratio in itertools.product([1, 2, 3, 5, 10], [1, 2, 3], [0.0, 0.3]):
        base_lr = log_uniform(rng, 1e-4, 1.0)
        eta_min = eta_ratio * base_lr
        n = sum(T_0 * T_mult**i for i in range(4)) + 3  # four cycles and a bit
        make = lambda o: CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult, eta_min=eta_min)  # noqa: E731
        ref = reference(make, base_lr, n)
        kw = dict(base_lr=base_lr, T_0=T_0, T_mult=T_mult, eta_min=eta_min)
        assert_close(S.cosine_annealing_warm_restarts_lr, kw, ref, base_lr)


def test_warm_restarts_jump_back_at_restarts():
    # T_0=3, T_mult=2: restarts at 3, 3+6=9, 9+12=21.
    for restart in (3, 9, 21):
        assert S.cosine_annealing_warm_restarts_lr(restart, 0.5, T_0=3, T_mult=2) == 0.5
        assert S.cosine_annealing_warm_restarts_lr(restart - 1, 0.5, T_0=3, T_mult=2) < 0.5


def _cyclic_cases():
    rng = random.Random(7)
    grid = itertools.product([1, 2, 5, 13], [None, 1, 3, 8], ["triangular", "triangular2", "exp_range"])
    for up, down, mode in grid:
        base_lr = log_uniform(rng, 1e-4, 1e-2)
        max_lr = rng.choice([base_lr * 10, log_uniform(rng, 1e-3, 1.0), base_lr / 2, base_lr])
        gamma = rng.choice([0.9, 0.99, 1.0, 1.02])
        yield dict(base_lr=base_lr, max_lr=max_lr, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma)
    yield dict(base_lr=0.0, max_lr=0.1, step_size_up=4)


def test_cyclic_lr_and_momentum():
    for i, kw in enumerate(_cyclic_cases()):
        kind = "adam" if i % 2 else "sgd"  # momentum goes to betas[0] for Adam
        cycle = kw["step_size_up"] + (kw.get("step_size_down") or kw["step_size_up"])
        n = 4 * cycle + 2
        make = lambda o: CyclicLR(o, **kw, base_momentum=0.7, max_momentum=0.95)  # noqa: E731
        # The optimizer's own lr (0.5) is overwritten by CyclicLR with base_lr.
        assert_close(S.cyclic_lr, kw, reference(make, 0.5, n, kind=kind), max(kw["base_lr"], kw["max_lr"]))
        mom = {k: v for k, v in kw.items() if k not in ("base_lr", "max_lr")}
        ref_m = reference(make, 0.5, n, kind=kind, key="momentum")
        assert_close(S.cyclic_momentum, dict(mom, base_momentum=0.7, max_momentum=0.95), ref_m, 1.0)


def test_cyclic_defaults_and_momentum_defaults():
    ref = reference(lambda o: CyclicLR(o, base_lr=0.001, max_lr=0.01), 0.1, 4001, key="momentum")
    assert_close(S.cyclic_momentum, {}, ref, 1.0, steps=range(0, 4001, 50))
    ref = reference(lambda o: CyclicLR(o, base_lr=0.001, max_lr=0.01), 0.1, 4001)
    assert_close(S.cyclic_lr, dict(base_lr=0.001, max_lr=0.01), ref, 0.01, steps=range(0, 4001, 50))


def _one_cycle_cases():
    grid = itertools.product(
        [2, 3, 5, 10, 37, 100, 1000],
        [0.05, 0.1, 0.25, 0.3, 0.5, 0.75, 0.95],
        ["cos", "linear"],
        [False, True],
    )
    rng = random.Random(8)
    for total_steps, pct_start, anneal, three_phase in grid:
        if float(pct_start * total_steps) - 1 == 0:
            continue  # PyTorch divides by zero there; ours raises (tested below)
        yield dict(
            max_lr=log_uniform(rng, 1e-3, 1.0),
            total_steps=total_steps,
            pct_start=pct_start,
            anneal_strategy=anneal,
            div_factor=rng.choice([1.0, 10.0, 25.0]),
            final_div_factor=rng.choice([1.0, 1e4]),
            three_phase=three_phase,
        )


def test_one_cycle_lr_and_momentum():
    for i, kw in enumerate(_one_cycle_cases()):
        kind = "adam" if i % 2 else "sgd"
        n = kw["total_steps"]
        make = lambda o: OneCycleLR(o, **kw, base_momentum=0.8, max_momentum=0.97)  # noqa: E731
        assert_close(S.one_cycle_lr, kw, reference(make, 0.5, n, kind=kind), kw["max_lr"])
        mom = {k: v for k, v in kw.items() if k not in ("max_lr", "div_factor", "final_div_factor")}
        ref_m = reference(make, 0.5, n, kind=kind, key="momentum")
        assert_close(S.one_cycle_momentum, dict(mom, base_momentum=0.8, max_momentum=0.97), ref_m, 1.0)


def test_one_cycle_defaults():
    ref = reference(lambda o: OneCycleLR(o, max_lr=0.1, total_steps=100), 0.5, 100)
    assert_close(S.one_cycle_lr, dict(max_lr=0.1, total_steps=100), ref, 0.1)
    ref = reference(lambda o: OneCycleLR(o, max_lr=0.1, total_steps=100), 0.5, 100, key="momentum")
    assert_close(S.one_cycle_momentum, dict(total_steps=100), ref, 1.0)
    assert S.one_cycle_lr(99, 0.1, 100) == pytest.approx(0.1 / 25 / 1e4, rel=1e-12)


def test_one_cycle_past_the_end_raises_like_torch():
    # PyTorch raises on the (total_steps + 1)-th step() call; ours for every step >= total_steps.
    opt = _optimizer(0.1)
    sched = OneCycleLR(opt, max_lr=0.1, total_steps=5)
    for _ in range(5):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="total steps"):
        opt.step()
        sched.step()
    for fn in (S.one_cycle_lr, S.one_cycle_momentum):
        args = (0.1, 5) if fn is S.one_cycle_lr else (5,)
        fn(4, *args)
        with pytest.raises(ValueError, match="step"):
            fn(5, *args)


def test_one_cycle_single_step_warmup_rejected():
    with pytest.raises(ZeroDivisionError):  # what PyTorch does with pct_start * total_steps == 1
        OneCycleLR(_optimizer(0.1), max_lr=0.1, total_steps=10, pct_start=0.1)
    with pytest.raises(ValueError, match="pct_start"):
        S.one_cycle_lr(0, 0.1, 10, pct_start=0.1)


# --------------------------------------------------------------------------- transformers schedules
def test_warmup_cosine_lr_matches_transformers():
    rng = random.Random(9)
    for total_steps in [1, 2, 10, 100]:
        for warmup_steps in sorted({0, 1, total_steps // 10, total_steps // 2, total_steps}):
            for min_ratio in [0.0, 0.1, 1.0]:
                base_lr = log_uniform(rng, 1e-4, 1.0)
                min_lr = min_ratio * base_lr
                if min_lr == 0:
                    make = lambda o: get_cosine_schedule_with_warmup(o, warmup_steps, total_steps)  # noqa: E731
                else:
                    make = lambda o: get_cosine_with_min_lr_schedule_with_warmup(  # noqa: E731
                        o, warmup_steps, total_steps, min_lr=min_lr
                    )
                ref = reference(make, base_lr, 2 * total_steps + 2)  # past the end too
                kw = dict(base_lr=base_lr, warmup_steps=warmup_steps, total_steps=total_steps, min_lr=min_lr)
                assert_close(S.warmup_cosine_lr, kw, ref, base_lr)


def test_warmup_starts_at_zero_and_ends_at_min_lr():
    assert S.warmup_cosine_lr(0, 0.1, 10, 100) == 0.0
    assert S.warmup_cosine_lr(100, 0.1, 10, 100, min_lr=1e-3) == pytest.approx(1e-3, rel=1e-12)
    assert S.inverse_sqrt_lr(0, 0.1, 10) == 0.0
    assert S.wsd_lr(0, 0.1, 10, 10, 10) == 0.0
    assert S.linear_warmup_lr(0, 0.1, 10) == 0.0
    assert S.exponential_warmup_lr(0, 0.1, 10) == 0.0


def test_inverse_sqrt_lr_matches_transformers():
    rng = random.Random(10)
    for warmup_steps, timescale in itertools.product([0, 1, 4, 100], [None, 1, 7, 1000]):
        base_lr = log_uniform(rng, 1e-4, 1.0)
        ref = reference(lambda o: get_inverse_sqrt_schedule(o, warmup_steps, timescale=timescale), base_lr, 350)
        kw = dict(base_lr=base_lr, warmup_steps=warmup_steps, timescale=timescale)
        assert_close(S.inverse_sqrt_lr, kw, ref, base_lr)


def test_wsd_lr_matches_transformers():
    rng = random.Random(11)
    shapes = ["linear", "cosine", "1-sqrt"]
    grid = itertools.product([0, 1, 5], [0, 3], [0, 1, 4, 10], [0.0, 0.1], shapes, shapes)
    for warmup, stable, decay, min_ratio, warmup_type, decay_type in grid:
        base_lr = log_uniform(rng, 1e-4, 1.0)
        make = lambda o: get_wsd_schedule(  # noqa: E731
            o,
            num_warmup_steps=warmup,
            num_decay_steps=decay,
            num_stable_steps=stable,
            warmup_type=warmup_type,
            decay_type=decay_type,
            min_lr_ratio=min_ratio,
        )
        total = warmup + stable + decay
        ref = reference(make, base_lr, 2 * total + 3)
        kw = dict(
            base_lr=base_lr,
            warmup_steps=warmup,
            stable_steps=stable,
            decay_steps=decay,
            min_lr=min_ratio * base_lr,
            warmup_type=warmup_type,
            decay_type=decay_type,
        )
        assert_close(S.wsd_lr, kw, ref, base_lr)


def test_wsd_default_decay_is_linear():
    ref = reference(lambda o: get_wsd_schedule(o, 2, 4, num_stable_steps=3, decay_type="linear"), 0.1, 12)
    assert_close(S.wsd_lr, dict(base_lr=0.1, warmup_steps=2, stable_steps=3, decay_steps=4), ref, 0.1)


def test_linear_warmup_lr_matches_transformers_and_linear_lr():
    for warmup in [0, 1, 3, 20]:
        ref = reference(lambda o: get_constant_schedule_with_warmup(o, warmup), 0.05, 2 * warmup + 3)
        assert_close(S.linear_warmup_lr, dict(base_lr=0.05, warmup_steps=warmup), ref, 0.05)
    for start_factor, warmup in itertools.product([0.01, 0.25, 1.0], [1, 3, 20]):
        ref = reference(lambda o: LinearLR(o, start_factor=start_factor, total_iters=warmup), 0.05, 2 * warmup + 3)
        kw = dict(base_lr=0.05, warmup_steps=warmup, start_factor=start_factor)
        assert_close(S.linear_warmup_lr, kw, ref, 0.05)


def test_exponential_warmup_is_ma_yarats_untuned_rule():
    beta2 = 0.999
    warmup = 2000  # = 2 / (1 - beta2)
    for step in [0, 1, 10, 500, 1000, 2000, 5000]:
        expected = 0.1 * (1 - math.exp(-(1 - beta2) * step))
        assert S.exponential_warmup_lr(step, 0.1, warmup) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert S.exponential_warmup_lr(7, 0.1, 0) == 0.1


# --------------------------------------------------------------------------- glue
# One argument set per schedule, with non-default values.
EXAMPLES = {
    "step_lr": dict(base_lr=0.1, step_size=3, gamma=0.5),
    "multistep_lr": dict(base_lr=0.1, milestones=[2, 5, 5], gamma=0.3),
    "exponential_lr": dict(base_lr=0.1, gamma=0.9),
    "linear_lr": dict(base_lr=0.1, start_factor=0.2, end_factor=0.7, total_iters=6),
    "polynomial_lr": dict(base_lr=0.1, total_iters=8, power=2.0),
    "cosine_annealing_lr": dict(base_lr=0.1, T_max=7, eta_min=0.01),
    "cosine_annealing_warm_restarts_lr": dict(base_lr=0.1, T_0=3, T_mult=2, eta_min=0.001),
    "cyclic_lr": dict(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=2, mode="exp_range", gamma=0.97),
    "one_cycle_lr": dict(max_lr=0.1, total_steps=20, pct_start=0.25, anneal_strategy="linear", three_phase=True),
    "warmup_cosine_lr": dict(base_lr=0.1, warmup_steps=4, total_steps=20, min_lr=0.001),
    "inverse_sqrt_lr": dict(base_lr=0.1, warmup_steps=4, timescale=9),
    "wsd_lr": dict(base_lr=0.1, warmup_steps=3, stable_steps=4, decay_steps=5, min_lr=0.01, decay_type="1-sqrt"),
    "linear_warmup_lr": dict(base_lr=0.1, warmup_steps=5),
    "exponential_warmup_lr": dict(base_lr=0.1, warmup_steps=6),
}


def test_examples_cover_every_schedule():
    assert set(EXAMPLES) == set(S.SCHEDULES)
    assert all(S.SCHEDULES[name].__name__ == name for name in S.SCHEDULES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_torch_scheduler_round_trip(name):
    kw = EXAMPLES[name]
    n = 20 if name == "one_cycle_lr" else 30
    want = S.trace_fn(S.SCHEDULES[name], n, **kw)
    # base_lr given: it becomes the optimizer's LR.
    assert_close(S.SCHEDULES[name], kw, S.trace(S.torch_scheduler(name, _optimizer(3.0), **kw), n), 0.1)
    # base_lr omitted: the optimizer's LR is the base LR.
    if "base_lr" in kw and name != "cyclic_lr":
        rest = {k: v for k, v in kw.items() if k != "base_lr"}
        got = S.trace(S.torch_scheduler(name, _optimizer(kw["base_lr"]), **rest), n)
        assert_close(S.SCHEDULES[name], kw, got, 0.1)
    assert len(want) == n


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_torch_code_evaluates_to_the_schedule(name):
    kw = EXAMPLES[name]
    n = 20 if name == "one_cycle_lr" else 30
    code = S.torch_code(name, **kw)
    opt = _optimizer(kw.get("base_lr", 0.5))
    namespace = dict(vars(torch.optim.lr_scheduler), optimizer=opt, math=math, transformers=transformers)
    sched = eval(code, namespace)  # noqa: S307 - our own generated line
    assert_close(S.SCHEDULES[name], kw, S.trace(sched, n), 0.1)


def test_torch_code_lines():
    assert S.torch_code("cosine_annealing_lr", base_lr=0.1, T_max=100) == (
        "CosineAnnealingLR(optimizer, T_max=100, eta_min=0.0)"
    )
    assert S.torch_code("step_lr", base_lr=0.1, step_size=30) == "StepLR(optimizer, step_size=30, gamma=0.1)"
    assert S.torch_code("cyclic_lr", base_lr=0.001, max_lr=0.1, step_size_up=10) == (
        "CyclicLR(optimizer, base_lr=0.001, max_lr=0.1, step_size_up=10, step_size_down=None, "
        "mode='triangular', gamma=1.0)"
    )
    assert S.torch_code("wsd_lr", base_lr=0.1, warmup_steps=1, stable_steps=2, decay_steps=3, min_lr=1e-5) == (
        "transformers.get_wsd_schedule(optimizer, num_warmup_steps=1, num_stable_steps=2, num_decay_steps=3, "
        "warmup_type='linear', decay_type='linear', min_lr_ratio=0.0001)"
    )
    assert S.torch_code("linear_warmup_lr", base_lr=0.1, warmup_steps=5, start_factor=0.1) == (
        "LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=5)"
    )
    assert S.torch_code("exponential_warmup_lr", base_lr=0.1, warmup_steps=0) == "LambdaLR(optimizer, lambda step: 1.0)"


def test_torch_scheduler_details():
    opt = _optimizer(0.5)
    sched = S.torch_scheduler("warmup_cosine_lr", opt, warmup_steps=2, total_steps=10)
    pickle.dumps(sched.lr_lambdas[0])  # the factor is picklable, so state_dict() works
    sched = S.torch_scheduler("one_cycle_lr", _optimizer(0.5), max_lr=0.1, total_steps=10, cycle_momentum=False)
    assert sched.optimizer.param_groups[0]["momentum"] == 0.9
    assert S.trace(sched, 10)[0] == S.one_cycle_lr(0, 0.1, 10)
    sched = S.torch_scheduler("cyclic_lr", _optimizer(0.5, "adam"), base_lr=0.01, max_lr=0.1, base_momentum=0.5)
    assert S.trace(sched, 3, value="momentum") == S.trace_fn(S.cyclic_momentum, 3, base_momentum=0.5)
    # NumPy scalars are accepted (OneCycleLR itself insists on a Python int).
    np = pytest.importorskip("numpy")
    sched = S.torch_scheduler("one_cycle_lr", _optimizer(0.5), max_lr=np.float32(0.5), total_steps=np.int64(10))
    assert_close(S.one_cycle_lr, dict(max_lr=0.5, total_steps=10), S.trace(sched, 10), 0.5)
    assert S.torch_code("step_lr", base_lr=0.1, step_size=np.int64(3)) == "StepLR(optimizer, step_size=3, gamma=0.1)"
    # base_lr wins over the initial_lr left by an earlier scheduler on the same optimizer.
    opt = _optimizer(3.0)
    StepLR(opt, step_size=1)
    sched = S.torch_scheduler("inverse_sqrt_lr", opt, base_lr=0.1, warmup_steps=2)
    assert_close(S.inverse_sqrt_lr, dict(base_lr=0.1, warmup_steps=2), S.trace(sched, 6), 0.1)
    with pytest.raises(TypeError, match="base_lr"):  # CyclicLR's own required argument
        S.torch_scheduler("cyclic_lr", _optimizer(0.1), max_lr=1.0)
    with pytest.raises(ValueError, match="max_momentum"):
        S.torch_scheduler("one_cycle_lr", _optimizer(0.1), max_lr=1.0, total_steps=5, max_momentum=2.0)
    with pytest.raises(TypeError, match="unexpected"):
        S.torch_scheduler("step_lr", _optimizer(0.1), step_size=3, cycle_momentum=False)
    with pytest.raises(ValueError, match="name"):
        S.torch_scheduler("cosine", _optimizer(0.1), T_max=3)
    with pytest.raises(ValueError, match="T_max"):
        S.torch_scheduler("cosine_annealing_lr", _optimizer(0.1), T_max=0)


def test_trace_and_dummy_optimizer():
    opt = S.dummy_optimizer(lr=1.0, kind="adam")
    before = [p.detach().clone() for p in opt.param_groups[0]["params"]]
    assert S.trace(StepLR(opt, step_size=1, gamma=0.5), 4) == [1.0, 0.5, 0.25, 0.125]
    assert all(torch.equal(a, b) for a, b in zip(before, opt.param_groups[0]["params"]))
    assert S.trace(OneCycleLR(S.dummy_optimizer(), 0.1, 10), 2, value="momentum")[0] == 0.95
    assert S.trace(StepLR(S.dummy_optimizer(), 1), 0) == []


def test_trace_refuses_gradients_and_plateau():
    p = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([p], lr=0.1)
    p.sum().backward()
    with pytest.raises(ValueError, match="zero_grad"):
        S.trace(StepLR(opt, 1), 3)
    assert torch.equal(p.detach(), torch.ones(1))
    with pytest.raises(ValueError, match="scheduler"):
        S.trace(ReduceLROnPlateau(S.dummy_optimizer()), 3)
    with pytest.raises(ValueError, match="steps"):
        S.trace(StepLR(S.dummy_optimizer(), 1), -1)


def test_compose_equals_warmup_cosine_and_sequential_lr():
    f = S.compose(
        [
            (S.linear_warmup_lr, 10, dict(base_lr=0.1, warmup_steps=10)),
            (S.cosine_annealing_lr, None, dict(base_lr=0.1, T_max=90, eta_min=0.002)),
        ]
    )
    ref = S.trace_fn(S.warmup_cosine_lr, 101, base_lr=0.1, warmup_steps=10, total_steps=100, min_lr=0.002)
    assert_close(f, {}, ref, 0.1)

    def make(o):
        warm = LinearLR(o, start_factor=0.1, total_iters=5)
        decay = CosineAnnealingLR(o, T_max=20, eta_min=0.001)
        return SequentialLR(o, [warm, decay], milestones=[5])

    g = S.compose(
        [
            (S.linear_lr, 5, dict(base_lr=0.1, start_factor=0.1, total_iters=5)),
            (S.cosine_annealing_lr, 20, dict(base_lr=0.1, T_max=20, eta_min=0.001)),
        ]
    )
    assert_close(g, {}, reference(make, 0.1, 60), 0.1)  # the last phase runs on past its length


def test_compose_three_phases_and_errors():
    f = S.compose(
        [
            (S.step_lr, 3, dict(base_lr=1.0, step_size=1, gamma=0.5)),
            (lambda s: 7.0, 2, {}),
            (S.exponential_lr, None, dict(base_lr=1.0, gamma=0.5)),
        ]
    )
    assert [f(s) for s in range(8)] == [1.0, 0.5, 0.25, 7.0, 7.0, 1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="phases"):
        S.compose([])
    with pytest.raises(ValueError, match=r"phases\[0\] length"):
        S.compose([(S.step_lr, None, {}), (S.step_lr, None, {})])
    with pytest.raises(ValueError, match="step"):
        f(-1)


# --------------------------------------------------------------------------- validation
WSD = dict(step=0, base_lr=0.1, warmup_steps=1, stable_steps=1, decay_steps=1)
INVALID = [
    (S.step_lr, dict(step=0, base_lr=-0.1, step_size=3), "base_lr"),
    (S.step_lr, dict(step=0, base_lr=0.0, step_size=3), "base_lr"),
    (S.step_lr, dict(step=-1, base_lr=0.1, step_size=3), "step"),
    (S.step_lr, dict(step=1.5, base_lr=0.1, step_size=3), "step"),
    (S.step_lr, dict(step=True, base_lr=0.1, step_size=3), "step"),
    # NumPy scalars take the validators' fast path: the same rules must hold there.
    (S.step_lr, dict(step=np.bool_(True), base_lr=0.1, step_size=3), "step"),
    (S.step_lr, dict(step=np.float64(2.0), base_lr=0.1, step_size=3), "step"),
    (S.step_lr, dict(step=np.int64(-1), base_lr=0.1, step_size=3), "step"),
    (S.step_lr, dict(step=0, base_lr=np.float32("nan"), step_size=3), "base_lr"),
    (S.step_lr, dict(step=0, base_lr=np.float64(0.0), step_size=3), "base_lr"),
    (S.step_lr, dict(step=0, base_lr=False, step_size=3), "base_lr"),
    (S.step_lr, dict(step=0, base_lr=0.1, step_size=0), "step_size"),
    (S.step_lr, dict(step=0, base_lr=0.1, step_size=3, gamma=0.0), "gamma"),
    (S.step_lr, dict(step=0, base_lr=float("nan"), step_size=3), "base_lr"),
    (S.multistep_lr, dict(step=0, base_lr=0.1, milestones=[5, 3]), "milestones"),
    (S.multistep_lr, dict(step=0, base_lr=0.1, milestones=[-1, 3]), "milestones"),
    (S.multistep_lr, dict(step=0, base_lr=0.1, milestones=[1.5]), "milestones"),
    (S.multistep_lr, dict(step=0, base_lr=0.1, milestones=5), "milestones"),
    (S.exponential_lr, dict(step=0, base_lr=0.1, gamma=-0.9), "gamma"),
    (S.linear_lr, dict(step=0, base_lr=0.1, start_factor=0.0), "start_factor"),
    (S.linear_lr, dict(step=0, base_lr=0.1, end_factor=1.5), "end_factor"),
    (S.linear_lr, dict(step=0, base_lr=0.1, total_iters=0), "total_iters"),
    (S.polynomial_lr, dict(step=0, base_lr=0.1, power=0.0), "power"),
    (S.cosine_annealing_lr, dict(step=0, base_lr=0.1, T_max=0), "T_max"),
    (S.cosine_annealing_lr, dict(step=0, base_lr=0.1, T_max=10.0), "T_max"),
    (S.cosine_annealing_lr, dict(step=0, base_lr=0.1, T_max=10, eta_min=-1e-3), "eta_min"),
    (S.cosine_annealing_warm_restarts_lr, dict(step=0, base_lr=0.1, T_0=0), "T_0"),
    (S.cosine_annealing_warm_restarts_lr, dict(step=0, base_lr=0.1, T_0=5, T_mult=1.5), "T_mult"),
    (S.cyclic_lr, dict(step=0, base_lr=0.1, max_lr=1.0, mode="sawtooth"), "mode"),
    (S.cyclic_lr, dict(step=0, base_lr=0.1, max_lr=-1.0), "max_lr"),
    (S.cyclic_lr, dict(step=0, base_lr=0.1, max_lr=1.0, step_size_up=0), "step_size_up"),
    (S.cyclic_lr, dict(step=0, base_lr=0.1, max_lr=1.0, step_size_down=0), "step_size_down"),
    (S.cyclic_lr, dict(step=0, base_lr=0.1, max_lr=1.0, gamma=0.0), "gamma"),
    (S.cyclic_momentum, dict(step=0, base_momentum=1.2), "base_momentum"),
    (S.one_cycle_lr, dict(step=0, max_lr=0.1, total_steps=10, pct_start=0.0), "pct_start"),
    (S.one_cycle_lr, dict(step=0, max_lr=0.1, total_steps=10, pct_start=1.0), "pct_start"),
    (S.one_cycle_lr, dict(step=0, max_lr=0.1, total_steps=0), "total_steps"),
    (S.one_cycle_lr, dict(step=0, max_lr=0.1, total_steps=10, anneal_strategy="cosine"), "anneal_strategy"),
    (S.one_cycle_lr, dict(step=0, max_lr=0.1, total_steps=10, div_factor=0), "div_factor"),
    (S.one_cycle_lr, dict(step=0, max_lr=0.1, total_steps=10, final_div_factor=-1), "final_div_factor"),
    (S.one_cycle_lr, dict(step=0, max_lr=0.1, total_steps=10, three_phase=1), "three_phase"),
    (S.one_cycle_lr, dict(step=10, max_lr=0.1, total_steps=10), "step"),
    (S.one_cycle_momentum, dict(step=0, total_steps=10, max_momentum=-0.1), "max_momentum"),
    (S.warmup_cosine_lr, dict(step=0, base_lr=0.1, warmup_steps=11, total_steps=10), "warmup_steps"),
    (S.warmup_cosine_lr, dict(step=0, base_lr=0.1, warmup_steps=1, total_steps=0), "total_steps"),
    (S.warmup_cosine_lr, dict(step=0, base_lr=0.1, warmup_steps=1, total_steps=10, min_lr=0.2), "min_lr"),
    (S.inverse_sqrt_lr, dict(step=0, base_lr=0.1, warmup_steps=-1), "warmup_steps"),
    (S.inverse_sqrt_lr, dict(step=0, base_lr=0.1, warmup_steps=1, timescale=0), "timescale"),
    (S.wsd_lr, dict(WSD, stable_steps=-1), "stable_steps"),
    (S.wsd_lr, dict(WSD, decay_steps=1.0), "decay_steps"),
    (S.wsd_lr, dict(WSD, decay_type="exp"), "decay_type"),
    (S.wsd_lr, dict(WSD, warmup_type="x"), "warmup_type"),
    (S.wsd_lr, dict(WSD, min_lr=-0.1), "min_lr"),
    (S.wsd_lr, dict(WSD, min_lr=0.2), "min_lr"),
    (S.linear_warmup_lr, dict(step=0, base_lr=0.1, warmup_steps=5, start_factor=1.5), "start_factor"),
    (S.exponential_warmup_lr, dict(step=0, base_lr=0.1, warmup_steps=-5), "warmup_steps"),
    (S.trace_fn, dict(fn=S.step_lr, steps=-1), "steps"),
    (S.dummy_optimizer, dict(lr=-1.0), "lr"),
    (S.dummy_optimizer, dict(kind="rmsprop"), "kind"),
    (S.torch_code, dict(name="nope"), "name"),
]


@pytest.mark.parametrize("fn, kwargs, param", INVALID, ids=[f"{f.__name__}-{p}" for f, _, p in INVALID])
def test_invalid_arguments_name_the_parameter(fn, kwargs, param):
    with pytest.raises(ValueError, match=rf"^{param}\b"):
        fn(**kwargs)


def test_numpy_arguments_give_python_floats():
    np = pytest.importorskip("numpy")

    def as_numpy(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value
        return np.int64(value) if isinstance(value, int) else np.float32(value)

    for name, kw in EXAMPLES.items():
        got = S.SCHEDULES[name](np.int64(3), **{k: as_numpy(v) for k, v in kw.items()})
        assert type(got) is float, (name, type(got))


def test_same_call_twice_same_number():
    for name, kw in EXAMPLES.items():
        assert S.SCHEDULES[name](7, **kw) == S.SCHEDULES[name](7, **kw)


# --------------------------------------------------------------------------- branched cooldowns
def test_wsd_branch_lr_is_wsd_lr_with_the_stable_phase_up_to_the_branch():
    shapes = ["linear", "cosine", "1-sqrt"]
    for warmup, branch, decay, min_ratio, shape in itertools.product([0, 3, 10], [10, 17], [0, 1, 6],
                                                                     [0.0, 0.1], shapes):
        kw = dict(min_lr=min_ratio * 0.3, warmup_type="cosine", decay_type=shape)
        for step in range(branch + decay + 5):
            assert S.wsd_branch_lr(step, 0.3, warmup, branch, decay, **kw) == \
                S.wsd_lr(step, 0.3, warmup, branch - warmup, decay, **kw)


def test_wsd_branch_lr_matches_transformers_get_wsd_schedule():
    for warmup, branch, decay, shape in [(5, 40, 10, "linear"), (0, 7, 3, "1-sqrt"), (4, 4, 9, "cosine")]:
        make = lambda o: get_wsd_schedule(o, num_warmup_steps=warmup, num_stable_steps=branch - warmup,  # noqa: E731
                                          num_decay_steps=decay, decay_type=shape)
        ref = reference(make, 0.02, branch + decay + 4)
        assert_close(S.wsd_branch_lr, dict(base_lr=0.02, warmup_steps=warmup, branch_step=branch,
                                           decay_steps=decay, decay_type=shape), ref, 0.02)


def test_branches_of_one_stable_run_share_it_until_they_branch():
    budgets = [50, 100, 200]
    for b in budgets:
        branch, decay = b - b // 5, b // 5
        lrs = [S.wsd_branch_lr(s, 0.1, 10, branch, decay) for s in range(b + 1)]
        stable = [S.wsd_branch_lr(s, 0.1, 10, 10_000, 0) for s in range(branch + 1)]
        assert lrs[: branch + 1] == stable  # the checkpoint at `branch` is the stable run's
        assert lrs[b] == 0.0 and all(a >= c for a, c in zip(lrs[branch:], lrs[branch + 1:]))


@pytest.mark.parametrize("kwargs, param", [
    (dict(branch_step=4), "branch_step"), (dict(branch_step=5.0), "branch_step"),
    (dict(warmup_steps=-1), "warmup_steps"), (dict(decay_steps=-2), "decay_steps"),
    (dict(decay_type="sqrt"), "decay_type"), (dict(base_lr=0.0), "base_lr"), (dict(step=-1), "step"),
    (dict(min_lr=0.5), "min_lr"),
])
def test_wsd_branch_lr_rejects_bad_arguments(kwargs, param):
    args = {**dict(step=0, base_lr=0.1, warmup_steps=5, branch_step=20, decay_steps=5), **kwargs}
    with pytest.raises(ValueError, match=rf"^{param}\b"):
        S.wsd_branch_lr(**args)
