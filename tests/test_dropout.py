"""Dropout in the reference forward and backward passes."""

import numpy as np
import pytest
from conftest import central_differences

from mlpcli.nn.dropout import Dropout
from mlpcli.nn.losses import LOSSES
from mlpcli.nn.model import MLP, backward, forward


def _net(activation: str) -> MLP:
    rng = np.random.default_rng(3)
    model = MLP.initialize([6, 5, 4, 3], rng, activation, "glorot-normal")
    model.weights = [W.astype(np.float64) for W in model.weights]
    model.biases = [rng.normal(0, 0.1, b.shape) for b in model.biases]
    return model


def _masks(seed=9):
    """The same masks at every call: a fresh generator from one seed."""
    return Dropout(hidden=0.4, input=0.3, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_gradients_with_dropout_match_central_differences(activation):
    """With the masks held fixed, backward() is the gradient of the loss the masked net has."""
    model = _net(activation)
    rng = np.random.default_rng(4)
    X, y = rng.normal(0, 1, (7, 6)), rng.integers(0, 3, 7)
    loss = LOSSES["cross-entropy"]

    def value():
        return loss.value(forward(model, X, _masks()).logits, y)

    cache = forward(model, X, _masks())
    assert any(m is not None and (m == 0).any() for m in cache.masks)  # some units dropped
    dWs, dbs = backward(model, cache, loss.gradient(cache.logits, y))
    numeric = central_differences(value, model.weights + model.biases)
    for grad, expected in zip(dWs + dbs, numeric, strict=True):
        np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-7)


def test_masks_drop_about_p_and_scale_the_kept_units():
    dropout = Dropout(hidden=0.5, input=0.2, rng=np.random.default_rng(0))
    hidden, pixels = dropout.mask((400, 500), layer=1), dropout.mask((400, 500), layer=0)
    assert hidden.dtype == np.float32
    assert set(np.unique(hidden)) == {0.0, 2.0} and abs((hidden == 0).mean() - 0.5) < 0.01
    assert set(np.unique(pixels)) == {0.0, np.float32(1.25)}
    assert abs((pixels == 0).mean() - 0.2) < 0.01
    assert Dropout(hidden=0.0, input=0.0, rng=np.random.default_rng(0)).mask((3, 3), 1) is None


def test_no_dropout_outside_training_and_same_seed_same_masks():
    model = MLP.initialize([6, 5, 3], np.random.default_rng(0))
    X = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    plain = forward(model, X).logits
    np.testing.assert_array_equal(model.logits(X), plain)
    dropped = forward(model, X, _masks()).logits
    assert not np.allclose(dropped, plain)
    np.testing.assert_array_equal(forward(model, X, _masks()).logits, dropped)
