"""helpers.tuning: notebook 09's data, models (standard and μP), runs, sweeps and checks."""
from __future__ import annotations

import math

import pytest
import torch

from helpers import tuning
from helpers.widgets import isolation_demo


@pytest.fixture(scope="module")
def data():
    return tuning.tabular_tensors(n_train=2000, n_val=500)


def test_the_data_is_fixed_standardised_and_balanced():
    X, y, Xv, yv = tuning.tabular_tensors()
    again = tuning.tabular_tensors()
    assert all(torch.equal(a, b) for a, b in zip((X, y, Xv, yv), again))
    assert X.shape == (20_000, 32) and Xv.shape == (4_000, 32)
    assert torch.allclose(X.mean(0), torch.zeros(32), atol=1e-5) and torch.allclose(X.std(0), torch.ones(32), atol=1e-4)
    counts = torch.bincount(y, minlength=10)
    assert counts.min() > 0.08 * len(y), "every class is well represented"


def test_sp_and_mup_models_differ_only_where_mup_says(data):
    sp, mup = tuning.width_mlp(128, "sp", seed=3), tuning.width_mlp(128, "mup", seed=3)
    assert torch.equal(sp.hidden1.weight, mup.hidden1.weight) and torch.equal(sp.hidden2.weight, mup.hidden2.weight)
    assert torch.equal(sp.hidden1.bias, mup.hidden1.bias), "the input layer's fan-in does not grow"
    # PyTorch's bias init shrinks like 1/sqrt(fan-in); μP keeps it constant: x sqrt(width multiplier).
    assert torch.allclose(mup.hidden2.bias, 2.0 * sp.hidden2.bias)
    assert torch.count_nonzero(mup.readout.weight) == 0, "μP's readout starts at zero"
    assert mup.readout.width_mult() == 4.0
    x = data[0][:8]
    mup.readout.weight.data.copy_(sp.readout.weight)
    mup.readout.bias.data.copy_(sp.readout.bias)
    # MuReadout divides its input by the width multiplier (the bias is added after).
    h = torch.relu(mup.hidden2(torch.relu(mup.hidden1(x))))
    assert torch.allclose(mup(x), torch.nn.functional.linear(h / 4.0, sp.readout.weight, sp.readout.bias), atol=1e-6)
    assert not torch.equal(tuning.width_mlp(32, seed=0).hidden1.weight, tuning.width_mlp(32, seed=1).hidden1.weight)


def test_muadam_divides_the_hidden_matrix_learning_rate_by_the_width_multiplier():
    model = tuning.width_mlp(256, "mup")
    optimizer = tuning.adam_for(model, 0.01, "mup")
    lrs = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert math.isclose(lrs[id(model.hidden2.weight)], 0.01 / 8)
    for p in (model.hidden1.weight, model.hidden1.bias, model.readout.weight):
        assert math.isclose(lrs[id(p)], 0.01), "vector-like parameters keep the base learning rate"
    assert isinstance(tuning.adam_for(tuning.width_mlp(64), 0.01), torch.optim.Adam)


def test_a_run_depends_only_on_its_seed_and_a_diverged_run_is_inf(data):
    def once(seed):
        model = tuning.width_mlp(32, seed=seed)
        return tuning.train_and_evaluate(model, tuning.adam_for(model, 0.01), data, steps=20, seed=seed)

    torch.manual_seed(123)
    first = once(4)
    torch.manual_seed(999)
    assert once(4) == first and once(5) != first
    model = tuning.width_mlp(32)
    assert tuning.train_and_evaluate(model, torch.optim.SGD(model.parameters(), lr=1e6), data, steps=30) == math.inf


def test_the_sweep_has_a_score_per_seed_for_every_learning_rate():
    calls = []
    sweep = tuning.lr_sweep(lambda lr, seed: calls.append((lr, seed)) or lr * seed, [0.1, 0.01], [1, 2, 3],
                            progress=False)
    assert sweep == {0.1: [0.1, 0.2, 0.30000000000000004], 0.01: [0.01, 0.02, 0.03]} and len(calls) == 6
    with pytest.raises(ValueError, match="at least one"):
        tuning.lr_sweep(lambda lr, seed: 0.0, [], [1])
    assert tuning.powers_of_two(-2, -4) == [0.25, 0.125, 0.0625]
    with pytest.raises(ValueError, match="high must be >= low"):
        tuning.powers_of_two(-4, -2)


def test_quasi_random_points_give_every_trial_its_own_value_inside_the_space():
    space = {"lr": (1e-4, 1e-1, "log"), "weight_decay": (0.0, 0.1, "linear")}
    points = tuning.quasi_random_points(9, space, seed=0)
    assert len({p["lr"] for p in points}) == 9 and len({p["weight_decay"] for p in points}) == 9
    assert all(1e-4 <= p["lr"] <= 1e-1 and 0 <= p["weight_decay"] <= 0.1 for p in points)
    decades = {math.floor(math.log10(p["lr"])) for p in points}
    assert decades == {-4, -3, -2}, "a log scale spreads the learning rates over every decade"
    assert points == tuning.quasi_random_points(9, space, seed=0) != tuning.quasi_random_points(9, space, seed=1)
    for bad in ({"lr": (0.0, 1.0, "log")}, {"lr": (1.0, 0.1, "linear")}, {"lr": (0.1, 1.0, "exp")}, {}):
        with pytest.raises(ValueError):
            tuning.quasi_random_points(3, bad)


def test_the_coordinate_check_sees_sp_logits_grow_with_width_and_mup_logits_stay(data):
    sizes = {p: tuning.coordinate_check((32, 1024), p, lr=2.0 ** -6, data=data) for p in tuning.PARAMETRIZATIONS}
    assert all(len(v) == 3 for check in sizes.values() for w in check.values() for v in w.values())
    growth = {p: sizes[p][1024]["logits"][-1] / sizes[p][32]["logits"][-1] for p in sizes}
    assert growth["sp"] > 10 and 0.5 < growth["mup"] < 2


@pytest.mark.parametrize("call, match", [
    (lambda: tuning.width_mlp(0), "width"),
    (lambda: tuning.width_mlp(64, "ntk"), "parametrization"),
    (lambda: tuning.adam_for(tuning.width_mlp(32), -1.0), "lr"),
    (lambda: tuning.tabular_tensors(classes=1), "classes"),
    (lambda: tuning.train_and_evaluate(tuning.width_mlp(32), None, tuning.tabular_tensors(n_train=100, n_val=10),
                                       steps=0), "steps"),
])
def test_bad_arguments_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_isolation_demo_names_both_winners_and_refuses_bad_sweeps():
    sweeps = {"narrow": {0.1: [1.0, 1.1], 0.01: [2.0, 2.1], 0.001: [3.0, 3.0]},
              "wide": {0.1: [math.inf, 9.0], 0.01: [1.5, 1.6], 0.001: [0.5, 0.6]}}
    demo = isolation_demo(sweeps, shared_lr=0.1)
    assert demo.output.outputs[1]["text"].startswith("at lr = 2^-3.3: narrow wins; each at its best: wide wins by 0.5")
    demo.set(log2_lr=-10.0)
    assert "at lr = 2^-10: wide wins by 2.5" in demo.output.outputs[1]["text"]
    for bad in ({"a": sweeps["narrow"]}, {"a": sweeps["narrow"], "b": {0.1: [1.0], 0.01: [2.0]}},
                {"a": sweeps["narrow"], "b": {0.1: [1.0], 0.02: [2.0], 0.001: [3.0]}}):
        with pytest.raises(ValueError):
            isolation_demo(bad)
    with pytest.raises(ValueError, match="shared_lr"):
        isolation_demo(sweeps, shared_lr=0.5)
