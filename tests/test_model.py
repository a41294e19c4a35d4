import numpy as np
import pytest
from conftest import central_differences, rounding_bound, run_state

from mlpcli.data import Split
from mlpcli.engines.fast_numpy import sgd_minibatches, sgd_per_sample
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.losses import LOSSES
from mlpcli.nn.model import MLP
from mlpcli.training import FitOptions, fit


def _float64_net(activation: str, loss: str, layers=(6, 5, 4, 3)) -> MLP:
    rng = np.random.default_rng(3)
    model = MLP.initialize(list(layers), rng, activation, "glorot-normal", loss, leaky_slope=0.1)
    model.weights = [W.astype(np.float64) for W in model.weights]
    model.biases = [rng.normal(0, 0.1, b.shape) for b in model.biases]
    return model


@pytest.mark.parametrize("samples", [1, 7])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_two_hidden_layer_gradients_match_central_differences(activation, loss, samples):
    model = _float64_net(activation, loss)
    rng = np.random.default_rng(4)
    X, y = rng.normal(0, 1, (samples, 6)), rng.integers(0, 3, samples)
    _, _, dWs, dbs = model.loss_and_gradients(X, y)
    numeric = central_differences(
        lambda: model.loss_and_gradients(X, y)[0], model.weights + model.biases
    )
    for grad, expected in zip(dWs + dbs, numeric, strict=True):
        np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-7)


def test_one_sgd_step_worked_by_hand():
    # One input x = [1, 2], one hidden ReLU unit, two outputs, cross-entropy, label 0.
    model = MLP(
        [np.array([[0.5], [0.25]], np.float32), np.array([[1.0, -1.0]], np.float32)],
        [np.zeros(1, np.float32), np.zeros(2, np.float32)],
        "relu",
        "cross-entropy",
    )
    X, y = np.array([[1.0, 2.0]], np.float32), np.array([0])
    loss, logits, dWs, dbs = model.loss_and_gradients(X, y)
    # hidden z = 0.5 + 0.5 = 1, a = 1; logits [1, -1]; p0 = e / (e + 1/e)
    p0 = np.exp(1) / (np.exp(1) + np.exp(-1))
    assert logits.tolist() == [[1.0, -1.0]]
    assert loss == pytest.approx(-np.log(p0), rel=1e-6)
    # dlogits = [p0 - 1, 1 - p0]; dW2 = a * dlogits; da = dlogits . [1, -1] = 2 (p0 - 1)
    np.testing.assert_allclose(dWs[1], [[p0 - 1, 1 - p0]], rtol=1e-6)
    np.testing.assert_allclose(dWs[0], [[2 * (p0 - 1)], [4 * (p0 - 1)]], rtol=1e-6)
    for step in (sgd_minibatches, sgd_per_sample):  # the two engines take the same step
        stepped = model.copy()
        args = (X, y, 1, 0.5) if step is sgd_minibatches else (X, y, 0.5)
        assert step(stepped, *args).tolist() == [[1.0, -1.0]]
        np.testing.assert_allclose(
            stepped.weights[0], [[0.5 - (p0 - 1)], [0.25 - 2 * (p0 - 1)]], rtol=1e-6
        )
        np.testing.assert_allclose(stepped.biases[1], [-0.5 * (p0 - 1), -0.5 * (1 - p0)], rtol=1e-6)


def test_a_tiny_network_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0])
    model = MLP.initialize([2, 8, 2], np.random.default_rng(0), "tanh", "glorot-uniform")
    before = model.loss_and_gradients(X, y)[0]
    options = FitOptions(learning_rate=0.5, epochs=500, batch_size=0, patience=0)
    result = fit(run_state(model, 1, 0.5), Split(X, y), None, options, progress=False)
    assert result.history[-1]["train_loss"] < before / 10
    assert (result.model.predict(X) == y).all()


def test_predict_proba_rows_sum_to_one_and_predict_is_argmax():
    model = MLP.initialize([784, 16, 10], np.random.default_rng(0))
    X = np.random.default_rng(1).normal(0, 1, (20, 784)).astype(np.float32)
    P = model.predict_proba(X)
    assert P.shape == (20, 10) and P.dtype == np.float32
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), P.argmax(axis=1))
    # chunks of 3 rows take other BLAS kernels than 20 rows do: the same sums, in other orders
    apart = np.abs(model.logits(X, chunk=3) - model.logits(X))
    assert (apart <= rounding_bound(model, X)).all()
