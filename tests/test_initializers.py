import numpy as np
import pytest

from mlpcli.nn.initializers import INITIALIZERS, default_init

EXPECTED_STD = {
    "glorot-uniform": np.sqrt(2 / (400 + 200)),
    "glorot-normal": np.sqrt(2 / (400 + 200)),
    "he-uniform": np.sqrt(2 / 400),
    "he-normal": np.sqrt(2 / 400),
    "lecun-normal": np.sqrt(1 / 400),
    "normal": 0.05,
    "zeros": 0.0,
}


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_shape_dtype_and_spread(name):
    W = INITIALIZERS[name](np.random.default_rng(0), 400, 200, 0.05)
    assert W.shape == (400, 200) and W.dtype == np.float32
    assert W.std() == pytest.approx(EXPECTED_STD[name], rel=0.02, abs=1e-9)
    assert abs(W.mean()) < 0.01


def test_uniform_schemes_stay_inside_their_limit():
    W = INITIALIZERS["he-uniform"](np.random.default_rng(0), 100, 50, 0)
    assert np.abs(W).max() <= np.sqrt(6 / 100)


def test_same_generator_seed_same_weights():
    draw = INITIALIZERS["he-normal"]
    a = draw(np.random.default_rng(5), 10, 4, 0)
    b = draw(np.random.default_rng(5), 10, 4, 0)
    c = draw(np.random.default_rng(6), 10, 4, 0)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_default_init_follows_the_activation():
    assert default_init("relu") == default_init("leaky-relu") == "he-normal"
    assert default_init("sigmoid") == default_init("tanh") == "glorot-uniform"
