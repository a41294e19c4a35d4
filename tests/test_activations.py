import numpy as np
import pytest

from mlpcli.nn.activations import ACTIVATIONS, get_activation, sigmoid


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_matches_central_differences(name):
    activation = get_activation(name, leaky_slope=0.1)
    rng = np.random.default_rng(0)
    Z = rng.normal(0, 2, (6, 5))
    Z[np.abs(Z) < 1e-3] = 0.5  # keep clear of the kink of the ReLU family
    h = 1e-6
    numeric = (activation.forward(Z + h) - activation.forward(Z - h)) / (2 * h)
    analytic = activation.derivative(Z, activation.forward(Z))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_sigmoid_is_stable_at_extremes():
    Z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        A = sigmoid(Z)
    np.testing.assert_allclose(A, [0, 1.9287e-22, 0.5, 1, 1], rtol=1e-3, atol=0)
    assert A.dtype == np.float32


def test_leaky_relu_keeps_its_slope():
    forward = get_activation("leaky-relu", leaky_slope=0.2).forward
    np.testing.assert_allclose(forward(np.array([-10.0, 3.0])), [-2.0, 3.0])


def test_relu_zeroes_negatives_and_keeps_dtype():
    A = ACTIVATIONS["relu"].forward(np.array([-1.0, 0.0, 2.5], dtype=np.float32))
    assert A.dtype == np.float32
    np.testing.assert_array_equal(A, [0, 0, 2.5])
