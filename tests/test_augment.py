"""--augment: the geometry of the distortions, their seeds, and training on them."""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_state, synthetic_digits
from PIL import Image

from mlpcli.cli import cli
from mlpcli.data import Split
from mlpcli.data.augment import Augmentation, epoch_rng, gaussian_matrix, warp
from mlpcli.engines.compiled import available
from mlpcli.nn.model import MLP
from mlpcli.training import FitOptions, fit

SIZE = 29  # odd, so that the centre (14, 14) is a pixel


def dot(x: int, y: int) -> np.ndarray:
    """A round blob of ink centred on pixel (x, y): smooth, so that resampling it keeps its
    centre of mass, where a single pixel's would shift a little with the sampling grid."""
    ys, xs = np.indices((SIZE, SIZE))
    blob = 200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.2**2))
    return np.rint(blob).astype(np.uint8)[None]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(x, y) of the ink of an (h, w) image."""
    weights = image.astype(np.float64)
    ys, xs = np.indices(image.shape)
    return (xs * weights).sum() / weights.sum(), (ys * weights).sum() / weights.sum()


def affine(angle=0.0, scale=1.0, shear=0.0, shift=(0.0, 0.0)):
    """warp()'s arguments for one image's map."""
    from mlpcli.data.augment import affine_inverse

    inverse = affine_inverse(np.array([angle]), np.array([scale]), np.array([shear]))
    return inverse, np.array([shift], dtype=float)


@pytest.mark.parametrize(
    "angle, expected",
    [
        (90, (14, 4)),  # 10 px right of the centre turns to 10 px above it (y is down)
        (-90, (14, 24)),
        (180, (4, 14)),
        (30, (14 + 10 * np.cos(np.radians(30)), 14 - 10 * np.sin(np.radians(30)))),
    ],
)
def test_a_rotation_turns_a_point_counterclockwise_about_the_centre(angle, expected):
    turned = warp(dot(24, 14), *affine(angle=angle))[0]
    assert centre_of_mass(turned) == pytest.approx(expected, abs=0.05)


def test_scale_shear_and_shift_move_a_point_where_they_should():
    moved = warp(dot(20, 10), *affine(scale=1.5))[0]  # (6, -4) from the centre, times 1.5
    assert centre_of_mass(moved) == pytest.approx((14 + 9, 14 - 6), abs=0.05)
    sheared = warp(dot(14, 18), *affine(shear=45))[0]  # x += tan(45) * (y - cy)
    assert centre_of_mass(sheared) == pytest.approx((18, 18), abs=0.05)
    shifted = warp(dot(14, 14), *affine(shift=(2.5, -1)))[0]
    assert centre_of_mass(shifted) == pytest.approx((16.5, 13), abs=0.05)
    assert int(shifted.sum()) == pytest.approx(int(dot(14, 14).sum()), rel=0.03)  # ink kept


def test_what_leaves_the_image_is_blank_paper():
    gone = warp(dot(28, 14), *affine(shift=(9, 0)))
    assert not gone.any()


def test_identity_parameters_give_the_images_back():
    images, _ = synthetic_digits(300, np.random.default_rng(0))
    still = Augmentation(("affine", "elastic"), rotation=0, scale=0, shear=0, translate=0, alpha=0)
    np.testing.assert_array_equal(still.distort(images, np.random.default_rng(1)), images)


def test_the_gaussian_matrix_blurs_as_scipy_does():
    ndimage = pytest.importorskip("scipy.ndimage")
    signal = np.random.default_rng(0).random(28).astype(np.float32)
    for sigma in (1.0, 4.0, 6.5):
        expected = ndimage.gaussian_filter1d(signal, sigma, mode="constant", truncate=4.0)
        np.testing.assert_allclose(gaussian_matrix(28, sigma) @ signal, expected, atol=1e-5)


def test_elastic_fields_have_the_covariance_of_simards_smoothed_noise():
    """Simard's field is alpha G N G^T with N uniform in [-1, 1]: each pixel's variance is
    alpha^2 / 3 (G G^T)_yy (G G^T)_xx, and neighbours move together."""
    from mlpcli.data.augment import Warper

    alpha, sigma, count = 10.0, 4.0, 4000
    warper = Warper(count, 28, 28)
    field = warper.elastic_field(count, np.random.default_rng(2), alpha, sigma)  # (2, m, h, w)
    blur = gaussian_matrix(28, sigma).astype(np.float64)
    spread = np.diag(blur @ blur.T)
    expected = alpha**2 / 3 * spread[:, None] * spread[None, :]  # (h, w)
    measured = field.astype(np.float64).var(axis=(0, 1))
    np.testing.assert_allclose(measured, expected, rtol=0.08)
    assert abs(field.mean()) < 0.05
    neighbours = np.corrcoef(field[0, :, 10, 10], field[0, :, 10, 11])[0, 1]
    assert neighbours > 0.9  # a Gaussian 4 pixels wide moves neighbours together
    stronger = Warper(count, 28, 28).elastic_field(
        count, np.random.default_rng(2), 2 * alpha, sigma
    )
    np.testing.assert_allclose(stronger, 2 * field, rtol=1e-4, atol=1e-4)  # linear in alpha


def test_the_same_seed_and_epoch_give_the_same_distortions():
    images, _ = synthetic_digits(600, np.random.default_rng(0))
    both = Augmentation(("affine", "elastic"))
    first = both.distort(images, epoch_rng(7, 3))
    np.testing.assert_array_equal(both.distort(images, epoch_rng(7, 3)), first)
    assert (both.distort(images, epoch_rng(7, 4)) != first).mean() > 0.1  # another epoch
    assert (both.distort(images, epoch_rng(8, 3)) != first).mean() > 0.1  # another seed
    assert first.dtype == np.uint8 and first.shape == images.shape


def digits_split(count: int) -> Split:
    images, labels = synthetic_digits(count, np.random.default_rng(3))
    return Split(images.reshape(count, -1), labels.astype(np.int64), (0.1, 0.3), (28, 28))


@pytest.mark.skipif(not available(), reason="the compiled step was not built")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_compiled_step_trains_on_augmented_epochs_as_the_reference(optimizer):
    train = digits_split(700)
    seen = []
    results = {}
    for engine in ("compiled", "reference"):
        model = MLP.initialize([784, 32, 10], np.random.default_rng(0))
        state = run_state(model, 0, 0.01 if optimizer == "adam" else 0.1, optimizer)
        options = FitOptions(
            epochs=3,
            batch_size=50,
            patience=0,
            engine=engine,
            optimizer=optimizer,
            augmentation=Augmentation(("affine", "elastic")),
            seed=5,
        )
        result = fit(state, train, None, options, progress=False, on_epoch=seen.append)
        assert result.engine == engine
        results[engine] = result
    compiled, reference = results["compiled"], results["reference"]
    for a, b in zip(compiled.state.model.params, reference.state.model.params, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    losses = [r["train_loss"] for r in compiled.history]
    assert losses == pytest.approx([r["train_loss"] for r in reference.history], rel=1e-4)


def test_augmented_epochs_differ_and_keep_the_labels():
    from mlpcli.data.augment import AugmentedEpochs

    train = digits_split(300)
    epochs = AugmentedEpochs(train, Augmentation(("affine",)), seed=1, last_epoch=3)
    epochs.background = True  # the second and third come from the background thread
    try:
        first, second, third = (epochs.epoch(e).X.copy() for e in (1, 2, 3))
    finally:
        epochs.close()
    assert (first != second).mean() > 0.05 and (second != third).mean() > 0.05
    again = AugmentedEpochs(train, Augmentation(("affine",)), seed=1, last_epoch=3)
    np.testing.assert_array_equal(again.epoch(2).X, second)  # made in the foreground
    assert np.array_equal(again.epoch(2).y, train.y)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize(
    "args, option",
    [
        (["--elastic-sigma", "-1"], "--elastic-sigma"),
        (["--elastic-sigma", "0"], "--elastic-sigma"),
        (["--scale", "1"], "--scale"),
        (["--scale", "-0.1"], "--scale"),
        (["--rotation", "181"], "--rotation"),
        (["--augment", "affine,swirl"], "--augment"),
    ],
)
def test_ranges_that_make_no_sense_are_usage_errors(tiny_mnist, tmp_path, args, option):
    result = run("train", *args, "--out", tmp_path / "c.npz")
    assert result.exit_code == 2
    assert option in result.output
    assert not (tmp_path / "c.npz").exists()


def test_a_config_sets_the_distortions(tiny_mnist, tmp_path):
    config = tmp_path / "augmented.toml"
    config.write_text('augment = ["affine", "elastic"]\nrotation = 20\nelastic-sigma = 5\n')
    out = tmp_path / "c.npz"
    args = ["--config", config, "--layers", "784,8,10", "--epochs", 1, "--out", out, "-q"]
    args += ["--validation-size", 100]
    assert run("train", *args).exit_code == 0
    from mlpcli import load_checkpoint

    options = load_checkpoint(out).meta["options"]
    assert (options["augment"], options["rotation"], options["elastic_sigma"]) == (
        "affine,elastic",
        20,
        5,
    )
    config.write_text('augment = "affine"\nrotation = "a lot"\n')
    assert run("train", "--config", config).exit_code == 2


def test_the_preview_writes_a_grid_of_originals_and_distortions(tiny_mnist, tmp_path):
    out = tmp_path / "preview.png"
    args = ["--augment", "affine", "--images", 3, "--variants", 4, "--out", out, "-q"]
    args += ["--validation-size", 100]
    result = run("augment-preview", *args)
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * (3 * 30 - 2), 2 * (5 * 30 - 2))  # 28 px tiles, 2 px gaps, zoom 2
    tiles = [grid[:56, 60 * k : 60 * k + 56] for k in range(5)]
    assert all((tiles[0] != tiles[k]).any() for k in range(1, 5))
    assert run("augment-preview", *args).exit_code == 2  # will not replace it unasked
    shown = run("augment-preview", "--augment", "elastic", "--show", "--variants", 2, *args[-2:])
    assert shown.exit_code == 0 and shown.output.count("distortion") == 2
    assert run("augment-preview", "--augment", "none").exit_code == 2  # nothing to preview


@pytest.mark.skipif(
    __import__("mlpcli.engines.base", fromlist=["x"]).usable_cpus() < 2,
    reason="needs two CPUs to give the images one",
)
@pytest.mark.parametrize("second, kept", [(0.5, True), (3.0, False)])
def test_a_run_keeps_the_background_only_when_it_was_quicker(second, kept):
    from mlpcli.training.augmenting import AugmentedTraining

    class Engine:
        threads = 2
        reads_split_while_training = True

        def use(self, split):
            self.split = split

    engine = Engine()
    feeding = AugmentedTraining(engine, digits_split(64), Augmentation(("affine",)), 0, 5, 2)
    try:
        feeding.before(1)
        feeding.after(1.0)  # the first epoch: images made, then trained on both threads
        assert feeding.epochs.background and engine.threads == 1  # the trial
        feeding.before(2)
        feeding.after(second)
        assert feeding.epochs.background == kept
        assert engine.threads == (1 if kept else 2)
        feeding.before(3)  # made in the background during epoch 2 either way
        assert engine.split.X.shape == (64, 784)
    finally:
        feeding.close()


def test_an_engine_indexes_only_the_split_an_epoch_trains_on():
    """An augmented run hands the engine each epoch's images: the split it was built with
    and any it was given but never trained on are not indexed (the compiled step's ink)."""
    from mlpcli.engines.reference import ReferenceEngine

    prepared = []

    class Counting(ReferenceEngine):
        def prepare(self, train):
            prepared.append(train)

    first, second, third = digits_split(64), digits_split(64), digits_split(64)
    model = MLP.initialize([784, 8, 10], np.random.default_rng(0))
    state = run_state(model)
    engine = Counting(model, state.optimizer, None, first, 16)
    engine.use(second)
    engine.use(third)
    for _ in engine.run_epoch(np.arange(64)):
        pass
    for _ in engine.run_epoch(np.arange(64)):
        pass
    assert len(prepared) == 1 and prepared[0] is third


def test_the_distortions_do_not_depend_on_blas_threads():
    """A run's thread count follows the machine's load; some BLAS kernels round differently
    when a product is split over threads, and the same seed must give the same images."""
    from threadpoolctl import threadpool_limits

    images, _ = synthetic_digits(600, np.random.default_rng(0))
    both = Augmentation(("affine", "elastic"))
    made = []
    for threads in (1, 2):
        with threadpool_limits(threads, "blas"):
            made.append(both.distort(images, epoch_rng(0, 3)))
    np.testing.assert_array_equal(made[0], made[1])


def test_one_buffer_makes_the_same_epochs_once_each_is_taken():
    """For an engine that indexes an epoch's pixels before it trains (the compiled step), the
    next epoch is made over the same buffer: the same images, in half the memory."""
    from mlpcli.data.augment import AugmentedEpochs

    train = digits_split(300)
    made = {}
    for buffers in (1, 2):
        epochs = AugmentedEpochs(train, Augmentation(("affine",)), 1, 3, buffers)
        epochs.background = True
        try:
            made[buffers] = []
            for e in (1, 2, 3):
                made[buffers].append(epochs.epoch(e).X.copy())  # what the engine indexes
                epochs.ahead(e)
        finally:
            epochs.close()
        assert len(epochs.buffers) == buffers
    for one, two in zip(made[1], made[2], strict=True):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("shape", [(28, 28), (20, 33)])
def test_the_compiled_sampler_makes_the_numpy_warps_bytes(shape, monkeypatch):
    """Warper.warp's sampling fused in C (the compiled step's module) gives the same bytes as
    its NumPy steps, on every build this CPU runs: beyond the edges, at every fraction."""
    from mlpcli.engines import compiled

    if not compiled.available():
        pytest.skip("the compiled step was not built")
    rng = np.random.default_rng(3)
    images = np.where(rng.random((300, *shape)) < 0.3, rng.integers(0, 256, (300, *shape)), 0)
    images = images.astype(np.uint8)  # 300: a short last chunk after 256
    wide = Augmentation(("affine", "elastic"), rotation=40, scale=0.3, translate=8, alpha=60)
    for augmentation in (wide, Augmentation(("affine",)), Augmentation(("elastic",))):
        monkeypatch.setenv("MLPCLI_SAMPLER", "numpy")
        expected = augmentation.distort(images, epoch_rng(5, 1))
        monkeypatch.delenv("MLPCLI_SAMPLER")
        for path in compiled.simd_paths():
            monkeypatch.setenv(compiled.SIMD_VARIABLE, path)
            np.testing.assert_array_equal(augmentation.distort(images, epoch_rng(5, 1)), expected)
    assert (expected != images).mean() > 0.05  # the images did move
