import numpy as np
import pytest
from conftest import run_state, synthetic_digits

from mlpcli.data import Split, normalize
from mlpcli.engines import fast_numpy
from mlpcli.engines.fast_numpy import BlankTail, sgd_minibatches
from mlpcli.engines.ink import batch_ends, in_ink_order, ink_order
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.losses import LOSSES
from mlpcli.nn.model import MLP
from mlpcli.training import FitOptions, fit


def _margined_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic digits (n, 784) uint8 whose ink stops at a random image row before the
    24th, as real digits leave blank paper below them: their blank tails differ in length."""
    rng = np.random.default_rng(seed)
    images, labels = synthetic_digits(count, rng)
    images[np.arange(28) >= rng.integers(8, 24, count)[:, None]] = 0
    return images.reshape(count, 784), labels.astype(np.int64)


def test_ink_order_puts_the_most_inked_pairs_of_columns_first():
    pixels = np.zeros((5, 6), np.uint8)
    pixels[:1, 0] = 9  # pair (0, 1): inked in 1 row
    pixels[:, 5] = 9  # pair (4, 5): inked in all 5
    pixels[:3, 2] = pixels[1:4, 3] = 9  # pair (2, 3): inked in 4 rows
    np.testing.assert_array_equal(ink_order(pixels), [4, 5, 2, 3, 0, 1])
    np.testing.assert_array_equal(ink_order(np.zeros((3, 6), np.uint8)), np.arange(6))  # ties


def test_in_ink_order_is_the_column_gather():
    pixels = np.random.default_rng(0).integers(0, 3, (50, 784)).astype(np.uint8)
    order = ink_order(pixels)
    np.testing.assert_array_equal(in_ink_order(pixels, order), pixels[:, order])
    assert sorted(order) == list(range(784))


@pytest.mark.parametrize("width, size", [(784, 8), (30, 1)])  # 30 is no multiple of 8
def test_batch_ends_bound_each_batchs_ink_tightly(width, size):
    rng = np.random.default_rng(1)
    ink_ends = rng.integers(0, width + 1, 45)  # one past each row's last inked column
    pixels = (np.arange(width) < ink_ends[:, None]) * rng.integers(1, 256, (45, width))
    pixels = pixels.astype(np.uint8)
    pixels[:10] = 0  # an all-blank first batch
    ends = batch_ends(pixels, 10)  # 45 rows: four batches of 10 and a short one of 5
    assert len(ends) == 5 and ends[0] == 0
    for number, end in enumerate(ends):
        batch = pixels[10 * number : 10 * number + 10]
        assert not batch[:, end:].any()  # blank from `end` on
        assert end % size == 0 and (end == 0 or batch[:, max(0, end - size) : end].any())


@pytest.mark.parametrize("batch_size", [4, 7])  # 7 leaves a short last batch
@pytest.mark.parametrize("layers", [[9, 3], [9, 5, 3], [9, 5, 4, 3]])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_skipping_blank_tails_is_the_same_sgd(layers, activation, loss, batch_size):
    """Each batch's columns from ends[i] on all hold the blank value; skipping them must give
    the step on the whole input, blank tails of every length included (0: all blank)."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(0, 1, (40, layers[0])), rng.integers(0, layers[-1], 40)
    starts = range(0, 40, batch_size)
    ends = rng.integers(0, layers[0] + 1, len(starts))
    ends[:2] = 0, layers[0]
    for start, end in zip(starts, ends, strict=True):
        X[start : start + batch_size, end:] = -0.4
    start_model = MLP.initialize(layers, rng, activation, "glorot-normal", loss)
    start_model.weights = [W.astype(np.float64) for W in start_model.weights]
    start_model.biases = [rng.normal(0, 0.1, b.shape) for b in start_model.biases]
    models = []
    for blank in (None, BlankTail(ends, -0.4)):
        model = start_model.copy()
        models.append((model, sgd_minibatches(model, X, y, batch_size, 0.05, blank)))
    (whole, whole_logits), (skipping, skipping_logits) = models
    np.testing.assert_allclose(skipping_logits, whole_logits, rtol=1e-10, atol=1e-12)
    for got, expected in zip(
        skipping.weights + skipping.biases, whole.weights + whole.biases, strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def _fit_both(monkeypatch, interrupt_at=None):
    """fit() on margined uint8 digits (the ink path) and on the same digits normalized in
    advance (the plain path), with the same shuffles; returns both models and the blank
    tails the engine was given."""
    images, labels = _margined_digits(300, 4)
    stats = (0.1, 0.3)
    given = []
    real_engine = fast_numpy.sgd_minibatches

    def engine(model, X, y, batch_size, learning_rate, blank=None):
        given.append(blank)
        if interrupt_at is not None and len(given) == interrupt_at:
            raise KeyboardInterrupt
        return real_engine(model, X, y, batch_size, learning_rate, blank)

    monkeypatch.setattr(fast_numpy, "sgd_minibatches", engine)
    models = []
    for train in (Split(images, labels, stats), Split(normalize(images, *stats), labels)):
        model = MLP.initialize([784, 16, 10], np.random.default_rng(5))
        options = FitOptions(0.1, 3, 20, 0, engine="numpy")
        fit(run_state(model, 6, 0.1), train, None, options, False)
        models.append(model)
    return models, given


def test_training_on_pixels_skips_blank_margins_and_keeps_pixel_order(monkeypatch):
    (inked, plain), given = _fit_both(monkeypatch)
    assert given[0] is not None and given[-1] is None  # the uint8 split took the ink path
    assert given[0].ends.max() < 784 and given[0].ends.min() > 0
    for got, expected in zip(
        inked.weights + inked.biases, plain.weights + plain.biases, strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    initial = MLP.initialize([784, 16, 10], np.random.default_rng(5))
    assert not np.allclose(inked.weights[0], initial.weights[0], atol=1e-3)  # it did train


def test_an_interrupted_epoch_leaves_the_weights_in_pixel_order(monkeypatch):
    (interrupted, _), _ = _fit_both(monkeypatch, interrupt_at=1)
    initial = MLP.initialize([784, 16, 10], np.random.default_rng(5))
    np.testing.assert_array_equal(interrupted.weights[0], initial.weights[0])


def test_skipping_blank_tails_in_float32_with_blas_updates():
    """Prefixes of 784x200 of 656 rows or more go to gemm (blas.GEMM_FROM_ELEMENTS), with
    the input's rows strided: the prefix of each row is a view."""
    rng = np.random.default_rng(7)
    X, y = rng.normal(0, 1, (96, 784)).astype(np.float32), rng.integers(0, 10, 96)
    ends = np.array([700, 784, 660])
    for start, end in zip(range(0, 96, 32), ends, strict=True):
        X[start : start + 32, end:] = np.float32(-0.4)
    initial = MLP.initialize([784, 200, 10], rng)
    whole, skipping = initial.copy(), initial.copy()
    sgd_minibatches(whole, X, y, 32, 0.01)
    sgd_minibatches(skipping, X, y, 32, 0.01, BlankTail(ends, float(np.float32(-0.4))))
    for got, expected in zip(
        skipping.weights + skipping.biases, whole.weights + whole.biases, strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(skipping.weights[0], initial.weights[0], atol=1e-4)  # it trained


def test_pixels_of_odd_width_train_without_the_ink_path():
    images, labels = _margined_digits(60, 8)
    odd = Split(images[:, :783], labels, (0.1, 0.3))
    assert fast_numpy.InkOrder.of(odd) is None
    model = MLP.initialize([783, 8, 10], np.random.default_rng(9))
    options = FitOptions(0.1, 1, 20, 0, engine="numpy")
    result = fit(run_state(model, 1, 0.1), odd, None, options, False)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
