"""Tests for helpers.models: shapes, seeded initialisation, silence, structure."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from helpers.models import count_parameters, mlp, small_cnn, tiny_transformer


def _builders():
    return {
        "mlp": lambda seed: mlp(seed=seed),
        "mlp_bn_dropout": lambda seed: mlp(batchnorm=True, dropout=0.2, seed=seed),
        "cnn": lambda seed: small_cnn(seed=seed),
        "post_ln": lambda seed: tiny_transformer(12, 16, seed=seed),
        "pre_ln": lambda seed: tiny_transformer(12, 16, norm_first=True, seed=seed),
    }


@pytest.mark.parametrize("name", list(_builders()))
def test_init_is_deterministic_by_seed(name):
    build = _builders()[name]
    a, b, c = build(0).state_dict(), build(0).state_dict(), build(1).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    weights = [k for k in a if k.endswith("weight") and a[k].dim() > 1]
    assert weights and all(not torch.equal(a[k], c[k]) for k in weights)


def test_building_a_model_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for build in _builders().values():
        build(7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", list(_builders()))
def test_no_warning_at_construction_or_forward(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _builders()[name](0)
        x = torch.zeros(4, 64) if name.startswith("mlp") else (
            torch.zeros(4, 1, 8, 8) if name == "cnn" else torch.zeros(4, 16, dtype=torch.long))
        model(x)
        model.eval()
        with torch.no_grad():
            model(x)
    assert [str(w.message) for w in caught] == []


def test_mlp_shapes_and_structure():
    model = mlp()
    assert model(torch.randn(5, 64)).shape == (5, 10)
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [
        (64, 128), (128, 128), (128, 10)]
    assert count_parameters(model) == (64 * 128 + 128) + (128 * 128 + 128) + (128 * 10 + 10)
    regularised = mlp(20, (30,), 3, batchnorm=True, dropout=0.5)
    assert [type(m) for m in regularised] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear]
    assert regularised(torch.randn(6, 20)).shape == (6, 3)
    linear = mlp(8, (), 2)
    assert len(linear) == 1 and isinstance(linear[0], nn.Linear)


def test_mlp_uses_pytorch_default_initialisation():
    torch.manual_seed(4)
    reference = nn.Linear(64, 128)
    assert torch.equal(mlp(seed=4)[0].weight, reference.weight)


def test_small_cnn_shapes():
    model = small_cnn(num_classes=7)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 7)
    assert sum(isinstance(m, nn.Conv2d) for m in model) == 2


@pytest.mark.parametrize("norm_first", [False, True])
def test_tiny_transformer_shapes_and_norm_placement(norm_first):
    model = tiny_transformer(vocab_size=9, seq_len=16, d_model=32, nhead=2, num_layers=3,
                             norm_first=norm_first, dim_feedforward=48)
    tokens = torch.randint(0, 9, (5, 16))
    assert model(tokens).shape == (5, 16, 9)
    assert model(tokens[:, :10]).shape == (5, 10, 9)  # shorter sequences are fine
    layers = model.encoder.layers
    assert len(layers) == 3 and all(layer.norm_first is norm_first for layer in layers)
    assert isinstance(model.encoder.norm, nn.LayerNorm) is norm_first
    assert layers[0].linear1.out_features == 48 and layers[0].self_attn.num_heads == 2


def test_tiny_transformer_is_bidirectional():
    """Changing the last token changes the output at the first position (no causal mask)."""
    model = tiny_transformer(vocab_size=9, seq_len=8).eval()
    tokens = torch.zeros(1, 8, dtype=torch.long)
    changed = tokens.clone()
    changed[0, -1] = 5
    with torch.no_grad():
        assert not torch.allclose(model(tokens)[0, 0], model(changed)[0, 0])


def test_tiny_transformer_parameter_count():
    d, ff, v, L = 64, 128, 10, 16
    per_layer = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 2 * (2 * d)
    expected = v * d + L * d + 2 * per_layer + (d * v + v)
    assert count_parameters(tiny_transformer(v, L)) == expected
    assert count_parameters(tiny_transformer(v, L, norm_first=True)) == expected + 2 * d


def test_count_parameters_trainable_only():
    model = mlp(4, (3,), 2)
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 3 + 3 * 2 + 2
    assert count_parameters(model, trainable_only=False) == 4 * 3 + 3 + 3 * 2 + 2
    with pytest.raises(ValueError, match="model"):
        count_parameters("not a model")


@pytest.mark.parametrize("build, name", [
    (lambda: mlp(in_features=0), "in_features"),
    (lambda: mlp(hidden="128"), "hidden"),
    (lambda: mlp(hidden=(128, 0)), "hidden"),
    (lambda: mlp(dropout=1.0), "dropout"),
    (lambda: mlp(batchnorm=1), "batchnorm"),
    (lambda: mlp(seed=-1), "seed"),
    (lambda: small_cnn(num_classes=0), "num_classes"),
    (lambda: tiny_transformer(1, 16), "vocab_size"),
    (lambda: tiny_transformer(10, 0), "seq_len"),
    (lambda: tiny_transformer(10, 16, d_model=30, nhead=4), "d_model"),
    (lambda: tiny_transformer(10, 16, num_layers=0), "num_layers"),
    (lambda: tiny_transformer(10, 16, norm_first="yes"), "norm_first"),
    (lambda: tiny_transformer(10, 16, dropout=-0.1), "dropout"),
])
def test_invalid_arguments_raise_value_error_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_char_mlp_shapes_parameters_and_seed():
    from helpers.models import char_mlp

    model = char_mlp(vocab_size=10, context=4, embed_dim=3, hidden=7)
    assert model(torch.zeros(2, 4, dtype=torch.long)).shape == (2, 10)
    assert count_parameters(model) == 10 * 3 + (12 * 7 + 7) + (7 * 10 + 10)
    assert all(torch.equal(a, b) for a, b in zip(char_mlp(seed=3).parameters(), char_mlp(seed=3).parameters()))
    assert not torch.equal(char_mlp(seed=3)[0].weight, char_mlp(seed=4)[0].weight)
    state = torch.random.get_rng_state()
    char_mlp(seed=5)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("kwargs, param", [(dict(vocab_size=1), "vocab_size"), (dict(context=0), "context"),
                                           (dict(embed_dim=2.0), "embed_dim"), (dict(hidden=0), "hidden"),
                                           (dict(seed=-1), "seed")])
def test_char_mlp_validates(kwargs, param):
    from helpers.models import char_mlp

    with pytest.raises(ValueError, match=rf"^{param}\b"):
        char_mlp(**kwargs)
