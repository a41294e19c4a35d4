import numpy as np
import pytest

from mlpcli.nn.losses import LOSSES, cross_entropy, log_softmax, softmax


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_central_differences(name):
    rng = np.random.default_rng(1)
    Z = rng.normal(0, 1.5, (4, 10))
    y = rng.integers(0, 10, 4)
    loss = LOSSES[name]
    dZ = loss.gradient(Z, y)
    h = 1e-6
    numeric = np.zeros_like(Z)
    for index in np.ndindex(Z.shape):  # finite differences need one probe per entry
        bump = np.zeros_like(Z)
        bump[index] = h
        numeric[index] = (loss.value(Z + bump, y) - loss.value(Z - bump, y)) / (2 * h)
    np.testing.assert_allclose(dZ, numeric, rtol=1e-5, atol=1e-8)


def test_softmax_survives_huge_logits():
    Z = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        P = softmax(Z)
        log_P = log_softmax(Z)
    np.testing.assert_allclose(P, [[1, 0, 0]], atol=1e-7)
    assert log_P[0, 0] == 0 and log_P[0, 2] == pytest.approx(-2000)


def test_cross_entropy_by_hand():
    Z = np.log(np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25]]))
    assert cross_entropy(Z, np.array([0, 2])) == pytest.approx(-(np.log(0.7) + np.log(0.25)) / 2)


def test_mse_by_hand():
    Z = np.array([[0.5, 0.0], [0.0, 2.0]])
    # half squared error per sample, averaged: ((0.25 + 0) + (0 + 1)) / 2 / 2
    assert LOSSES["mse"].value(Z, np.array([0, 1])) == pytest.approx(0.3125)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_probabilities_are_distributions(name):
    Z = np.random.default_rng(2).normal(0, 3, (5, 10))
    P = LOSSES[name].probabilities(Z)
    assert (P >= 0).all()
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("layout", ["row order", "column order", "strided rows"])
def test_softmax_work_is_the_same_in_any_layout(layout):
    """The row-wise work runs on a column-order copy (by_columns): whatever the layout of
    the logits, each row's results are that row's, as computed one row at a time."""
    rng = np.random.default_rng(3)
    Z = rng.normal(0, 3, (50, 10)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    laid_out = {
        "row order": Z,
        "column order": np.asfortranarray(Z),
        "strided rows": np.repeat(Z, 2, axis=0)[::2],
    }[layout]
    one_by_one = np.array([np.exp(z - z.max()) / np.exp(z - z.max()).sum() for z in Z])
    np.testing.assert_allclose(softmax(laid_out), one_by_one, rtol=1e-6)
    np.testing.assert_allclose(np.exp(log_softmax(laid_out)), one_by_one, rtol=1e-5)
    expected = -np.mean([np.log(one_by_one[i, y[i]]) for i in range(50)])
    assert cross_entropy(laid_out, y) == pytest.approx(expected, rel=1e-5)
