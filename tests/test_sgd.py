import numpy as np
import pytest

from mlpcli.engines.fast_numpy import sgd_minibatches, sgd_per_sample
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.losses import LOSSES
from mlpcli.nn.model import MLP


def _net(layers, activation="relu", loss="cross-entropy", dtype=np.float64) -> MLP:
    rng = np.random.default_rng(5)
    model = MLP.initialize(layers, rng, activation, "glorot-normal", loss, leaky_slope=0.1)
    model.weights = [W.astype(dtype) for W in model.weights]
    model.biases = [rng.normal(0, 0.1, b.shape).astype(dtype) for b in model.biases]
    return model


def _data(n, d, k, dtype=np.float64):
    rng = np.random.default_rng(6)
    return rng.normal(0, 1, (n, d)).astype(dtype), rng.integers(0, k, n)


@pytest.mark.parametrize("layers", [[6, 3], [6, 5, 3], [6, 5, 4, 3]])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_per_sample_engine_is_exact_per_sample_sgd(layers, activation, loss):
    """The deferred first-layer updates must give the weights of one plain step per sample."""
    X, y = _data(75, layers[0], layers[-1])  # 75: two full blocks of 32 and a partial one
    plain, fast = _net(layers, activation, loss), _net(layers, activation, loss)
    plain_logits = sgd_minibatches(plain, X, y, batch_size=1, learning_rate=0.05)
    fast_logits = sgd_per_sample(fast, X, y, learning_rate=0.05, block=32)
    np.testing.assert_allclose(fast_logits, plain_logits, rtol=1e-5, atol=1e-5)
    for got, expected in zip(fast.weights + fast.biases, plain.weights + plain.biases, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fast.weights[0], _net(layers).weights[0])  # it did train


def test_per_sample_engine_in_float32_at_mnist_size():
    X, y = _data(200, 784, 10, np.float32)
    plain, fast = _net([784, 64, 10], dtype=np.float32), _net([784, 64, 10], dtype=np.float32)
    sgd_minibatches(plain, X, y, batch_size=1, learning_rate=0.01)
    sgd_per_sample(fast, X, y, learning_rate=0.01)
    assert fast.weights[0].dtype == np.float32
    np.testing.assert_allclose(fast.weights[0], plain.weights[0], atol=1e-4)
    np.testing.assert_allclose(fast.weights[1], plain.weights[1], atol=1e-4)


def test_minibatch_engine_returns_each_batchs_logits_before_its_step():
    X, y = _data(10, 6, 3)
    model = _net([6, 5, 3])
    first_batch_logits = model.logits(X[:4])
    logits = sgd_minibatches(model, X, y, batch_size=4, learning_rate=0.5)
    np.testing.assert_allclose(logits[:4], first_batch_logits, rtol=1e-6)
    assert not np.allclose(logits[4:8], _net([6, 5, 3]).logits(X[4:8]))  # after one step


def _plain_sgd(model, X, y, batch_size, learning_rate):
    """The reference: one step per batch from loss_and_gradients (model.backward), whose
    gradients test_model checks against finite differences."""
    for start in range(0, len(y), batch_size):
        batch = slice(start, start + batch_size)
        _, _, dWs, dbs = model.loss_and_gradients(X[batch], y[batch])
        for param, gradient in zip(model.weights + model.biases, dWs + dbs, strict=True):
            param -= learning_rate * gradient


@pytest.mark.parametrize("batch_size", [1, 7, 32, 75])  # 7 and 32 leave a short last batch
@pytest.mark.parametrize("layers", [[6, 3], [6, 5, 3], [6, 5, 4, 3]])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_minibatch_engine_is_plain_sgd(layers, activation, loss, batch_size):
    X, y = _data(75, layers[0], layers[-1])
    reference, engine = _net(layers, activation, loss), _net(layers, activation, loss)
    _plain_sgd(reference, X, y, batch_size, 0.05)
    sgd_minibatches(engine, X, y, batch_size, learning_rate=0.05)
    for got, expected in zip(
        engine.weights + engine.biases, reference.weights + reference.biases, strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert not np.allclose(engine.weights[0], _net(layers).weights[0])  # it did train


def test_minibatch_engine_in_float32_with_blas_updates():
    """784x200 is above blas.GEMM_FROM_ELEMENTS, so the first layer is updated by gemm."""
    X, y = _data(100, 784, 10, np.float32)
    reference = _net([784, 200, 10], dtype=np.float32)
    engine = reference.copy()
    _plain_sgd(reference, X, y, 32, 0.01)
    logits = sgd_minibatches(engine, X, y, 32, learning_rate=0.01)
    assert engine.weights[0].dtype == logits.dtype == np.float32
    for got, expected in zip(
        engine.weights + engine.biases, reference.weights + reference.biases, strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
