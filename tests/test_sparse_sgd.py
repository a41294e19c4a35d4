"""The compiled step (sparse_sgd.py, _sparse_sgd.c) against the NumPy engine it stands in for."""

import os

import numpy as np
import pytest
from conftest import exited_cleanly, run_state

from mlpcli.api import TrainConfig
from mlpcli.data import Split, normalize
from mlpcli.engines import compiled as sparse_sgd
from mlpcli.engines.base import StepOptions
from mlpcli.engines.choice import choose_engine, fastest_engine, usable_engines
from mlpcli.engines.fast_numpy import sgd_minibatches, sgd_per_sample
from mlpcli.errors import ConfigError
from mlpcli.nn.losses import cross_entropy
from mlpcli.nn.model import MLP
from mlpcli.nn.optim import make_optimizer
from mlpcli.training import FitOptions, fit

STATS = (0.13, 0.31)  # an MNIST-like normalization (mean, std of pixel / 255)

if os.environ.get("CI") and not sparse_sgd.available():  # CI builds it: a miss is a bug there
    raise ImportError("the compiled step was not built, though CI has a C compiler")
needs_build = pytest.mark.skipif(not sparse_sgd.available(), reason="compiled step not built")


@pytest.fixture(params=sparse_sgd.SIMD_PATHS)
def simd(request, monkeypatch):
    """Each build of the step that this machine runs, in turn (MLPCLI_SIMD caps it)."""
    if request.param not in sparse_sgd.simd_paths():
        pytest.skip(f"this CPU or build has no {request.param} step")
    monkeypatch.setenv(sparse_sgd.SIMD_VARIABLE, request.param)
    return request.param


def _digits(n: int, d: int = 784, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images with MNIST's look: blank paper and about a fifth of the pixels inked,
    some at full ink, plus an all-blank image; labels 0-9."""
    rng = np.random.default_rng(seed)
    ink = rng.random((n, d)) < 0.2
    pixels = np.where(ink, rng.integers(1, 256, (n, d)), 0).astype(np.uint8)
    pixels[rng.random((n, d)) < 0.05] = 255
    pixels[3] = 0
    return pixels, rng.integers(0, 10, n)


def _sgd(model, learning_rate):
    return make_optimizer("sgd", model.params, learning_rate)


def _both_engines(layers, activation, batch_size, threads, n=300):
    """The same steps by the NumPy engine on normalized rows (its per-sample path at batch
    size 1) and by the compiled one on the pixels: their logits and models."""
    pixels, labels = _digits(n)
    rows = np.random.default_rng(1).permutation(n)[: n - 7]  # shuffled; some rows unused
    reference = MLP.initialize(layers, np.random.default_rng(2), activation=activation)
    compiled = reference.copy()
    X, learning_rate = normalize(pixels[rows], *STATS), 0.01 if batch_size == 1 else 0.1
    if batch_size == 1:
        expected = sgd_per_sample(reference, X, labels[rows], learning_rate)
    else:
        expected = sgd_minibatches(reference, X, labels[rows], batch_size, learning_rate)
    ink = sparse_sgd.InkPixels.of(Split(pixels, labels, STATS))
    optimizer = make_optimizer("sgd", compiled.params, learning_rate)
    trained = sparse_sgd.train_on_ink(
        compiled, ink, rows, labels[rows], batch_size, optimizer, threads
    )
    return (trained, expected), (compiled, reference)


@needs_build
@pytest.mark.parametrize(
    "layers, activation, batch_size, threads",
    [
        ([784, 64, 10], "relu", 64, 1),  # one thread's columns in one pass: updates by rows
        ([784, 300, 10], "relu", 32, 2),  # two threads, updates by columns, 300 not /16
        ([784, 100, 30, 10], "tanh", 50, 2),  # depth, a short last batch
        ([784, 40, 20, 16, 10], "sigmoid", 17, 1),
        ([784, 130, 10], "leaky-relu", 64, 2),
        ([784, 10], "relu", 64, 1),  # no hidden layer: softmax regression
        ([784, 64, 10], "relu", 1, 2),  # per-sample SGD, two threads asked for
        ([784, 100, 30, 10], "tanh", 1, 1),
        ([784, 64, 2048, 10], "relu", 64, 2),  # 64x2048 weights: BLAS's products above
    ],
)
def test_compiled_step_takes_the_numpy_engines_steps(layers, activation, batch_size, threads, simd):
    (trained, expected), (compiled, reference) = _both_engines(
        layers, activation, batch_size, threads
    )
    np.testing.assert_allclose(trained.logits, expected, rtol=1e-4, atol=1e-4)
    for mine, theirs in zip(
        compiled.weights + compiled.biases, reference.weights + reference.biases, strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=2e-6)
    start = MLP.initialize(layers, np.random.default_rng(2), activation=activation)
    moved = [np.abs(a - b).max() for a, b in zip(compiled.weights, start.weights, strict=True)]
    assert min(moved) > 1e-4  # every layer trained


@needs_build
@needs_build
def test_the_large_layers_above_the_first_take_numpy_s_blas_where_it_is_openblas():
    """The parity tests' 64x2048 layers run through this gemm, not the step's kernels."""
    from threadpoolctl import threadpool_info

    if not any(lib.get("internal_api") == "openblas" for lib in threadpool_info()):
        pytest.skip("numpy here does not use OpenBLAS: the step's own kernels run")
    assert sparse_sgd.gemm_address() != 0


@needs_build
def test_the_c_files_names_are_the_references():
    """compiled.py reads the codes of the C file's activations and optimizers from the
    module, in the enums' order: each names the reference's own (nn/), plain SGD apart."""
    from mlpcli.nn.activations import ACTIVATIONS
    from mlpcli.nn.optim import OPTIMIZERS

    assert set(sparse_sgd.ACTIVATION_CODES) == set(ACTIVATIONS)
    assert set(sparse_sgd.OPTIMIZER_CODES) == {"plain-sgd", *OPTIMIZERS}
    assert sparse_sgd.MAX_LAYERS >= 3


def test_the_chunks_loss_and_hits_are_those_of_its_logits():
    pixels, labels = _digits(200)
    ink = sparse_sgd.InkPixels.of(Split(pixels, labels, STATS))
    model = MLP.initialize([784, 64, 10], np.random.default_rng(0))
    rows = np.arange(200)
    trained = sparse_sgd.train_on_ink(model, ink, rows, labels, 16, _sgd(model, 0.1), 1)
    assert trained.loss == pytest.approx(cross_entropy(trained.logits, labels), rel=1e-5)
    assert trained.correct == (trained.logits.argmax(axis=1) == labels).sum() > 0
    diverged = sparse_sgd.train_on_ink(model, ink, rows, labels, 8, _sgd(model, 1e30), 1)
    assert not np.isfinite(diverged.loss)  # what fit() stops on


@needs_build
def test_ink_pixels_hold_each_rows_ink_in_order():
    pixels, labels = _digits(40, d=30)
    ink = sparse_sgd.InkPixels.of(Split(pixels, labels, STATS))
    for r in range(40):
        part = slice(ink.rowptr[r], ink.rowptr[r + 1])
        np.testing.assert_array_equal(ink.cols[part], np.flatnonzero(pixels[r]))
        np.testing.assert_array_equal(ink.pixels[part], pixels[r][pixels[r] != 0])
    blank_and_full = np.array([[0, 255]], np.uint8)
    x = normalize(blank_and_full, *STATS)[0]
    assert ink.blank == x[0] and ink.blank + 255 * ink.scale == pytest.approx(x[1], rel=1e-6)


@needs_build
def test_gathering_refuses_counts_that_do_not_match_the_pixels():
    pixels, _ = _digits(5, d=30)
    rowptr = np.empty(6, np.int64)
    sparse_sgd._sparse_sgd.count_ink(pixels, 5, 30, rowptr, 2)
    np.testing.assert_array_equal(np.diff(rowptr), (pixels != 0).sum(axis=1))
    rowptr[2:] += 1  # row 1 given room for one pixel too many
    cols, values = np.empty(rowptr[-1], np.uint16), np.empty(rowptr[-1], np.uint8)
    with pytest.raises(ValueError, match="rowptr does not match"):
        sparse_sgd._sparse_sgd.gather_ink(pixels, 5, 30, rowptr, cols, values, 2)


@needs_build
def test_bad_indices_are_refused_before_anything_is_written():
    pixels, labels = _digits(20)
    ink = sparse_sgd.InkPixels.of(Split(pixels, labels, STATS))
    model = MLP.initialize([784, 16, 10], np.random.default_rng(0))
    before = model.copy()
    for rows, y in ((np.array([0, 20]), labels[:2]), (np.array([0, 1]), np.array([0, 10]))):
        with pytest.raises(IndexError):
            sparse_sgd.train_on_ink(model, ink, rows, y, 2, _sgd(model, 0.1), 1)
    np.testing.assert_array_equal(model.weights[0], before.weights[0])


def test_auto_chooses_among_the_engines_that_take_the_options():
    pixels, labels = _digits(50)
    split = Split(pixels, labels, STATS)
    compiled = "compiled" if sparse_sgd.available() else "numpy"
    plain = StepOptions("relu", "cross-entropy")
    assert choose_engine("auto", plain, split).name == compiled
    assert choose_engine("auto", StepOptions("relu", "mse"), split).name == "numpy"
    features = Split(normalize(pixels, *STATS), labels)
    assert choose_engine("auto", plain, features).name == "numpy"
    assert choose_engine("numpy", plain, split).name == "numpy"
    for beyond in (
        StepOptions(optimizer="adam"),
        StepOptions(weight_decay=1e-4),
        StepOptions(max_norm=3.0),
        StepOptions(dropout=0.5),
        StepOptions(input_dropout=0.2),
    ):
        expected = "reference" if beyond.input_dropout or not sparse_sgd.available() else compiled
        assert choose_engine("auto", beyond, split).name == expected
        assert choose_engine("auto", beyond, features).name == "reference"
        with pytest.raises(ConfigError, match="--engine numpy cannot train this: its fused"):
            choose_engine("numpy", beyond, split)
    with pytest.raises(ConfigError, match="no --input-dropout|not built"):
        choose_engine("compiled", StepOptions(input_dropout=0.2), split)
    deep = StepOptions(layers=(784, *[16] * sparse_sgd.MAX_LAYERS, 10))
    assert choose_engine("auto", deep, split).name == "numpy"
    with pytest.raises(ConfigError, match="at most 16 layers|not built"):
        choose_engine("compiled", deep, split)
    assert (
        list(usable_engines(plain, split))
        == [compiled, "numpy", "reference"][compiled == "numpy" :]
    )
    assert list(usable_engines(StepOptions(input_dropout=0.2), split)) == ["reference"]
    with pytest.raises(ConfigError, match="cross-entropy loss only|not built"):
        choose_engine("compiled", StepOptions("relu", "mse"), split)


def test_config_refuses_an_engine_that_cannot_run_it():
    with pytest.raises(ConfigError, match="--engine compiled cannot train this"):
        TrainConfig(engine="compiled", loss="mse").validate()
    with pytest.raises(ConfigError, match="--engine numpy cannot train this"):
        TrainConfig(engine="numpy", optimizer="adam").validate()
    with pytest.raises(ConfigError, match="unknown engine"):
        TrainConfig(engine="fast").validate()


@needs_build
def test_fit_reports_the_engine_and_every_engine_learns_alike():
    pixels, labels = _digits(400)
    labels = (pixels[:, :392] > 0).sum(axis=1) % 2  # learnable: ink in the top half, odd or even
    split = Split(pixels, labels, STATS)
    results = {}
    for engine in ("compiled", "numpy", "reference"):
        model = MLP.initialize([784, 32, 10], np.random.default_rng(3))
        options = FitOptions(0.05, 3, 20, 0, engine=engine)
        results[engine] = fit(run_state(model, 4, 0.05), split, None, options, False)
        assert results[engine].engine == engine
    per_sample = FitOptions(0.01, 1, 1, 0)  # auto: batch size 1 is the compiled step's too
    model = MLP.initialize([784, 32, 10], np.random.default_rng(3))
    assert fit(run_state(model, 4, 0.01), split, None, per_sample, False).engine == "compiled"
    for engine in ("numpy", "reference"):
        for a, b in zip(results["compiled"].history, results[engine].history, strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
        for a, b in zip(
            results["compiled"].model.params, results[engine].model.params, strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_cli_says_why_the_compiled_step_cannot_run(tmp_path):
    from click.testing import CliRunner

    from mlpcli.cli import cli

    out = tmp_path / "m.npz"
    args = ["train", "--engine", "compiled", "--loss", "mse", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--engine compiled cannot train this" in result.output
    assert exited_cleanly(result) and not out.exists()


RECIPES = {
    "momentum": ("momentum", {"momentum": 0.9}, 0.05, 0.0, 0.0),
    "momentum-per-sample": ("momentum", {"momentum": 0.9}, 0.002, 0.0, 0.0),
    "nesterov-decay": ("nesterov", {"momentum": 0.8}, 0.05, 1e-3, 0.0),
    "adam": ("adam", {}, 0.003, 0.0, 0.0),
    "adam-decay": ("adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6}, 0.003, 1e-3, 0.0),
    "adamw": ("adamw", {}, 0.003, 0.05, 0.0),
    "sgd-decay-max-norm": ("sgd", {}, 0.1, 1e-3, 1.5),
    "momentum-max-norm": ("momentum", {}, 0.05, 0.0, 0.5),
}


def _adams_step(recipe, params, state, means):
    """The params that the reference's Adam makes of `params` and its `state` (as state()
    gave them) with the gradient whose step left the mean buffers `means`: m = b1 m_old +
    (1 - b1) g, read back in float64."""
    name, settings, learning_rate, decay, max_norm = RECIPES[recipe]
    params = [p.copy() for p in params]
    optimizer = make_optimizer(name, params, learning_rate, decay, max_norm, **settings)
    optimizer.load_state(state)
    grads = []
    for i, (param, mean) in enumerate(zip(params, means, strict=True)):
        old = state[f"mean.{i}"].astype(np.float64)
        grad = old + (mean - old) / (1 - optimizer.beta1)
        if not optimizer.decoupled:  # the mean holds g + wd p: the optimizer adds wd p again
            grad -= decay * param
        grads.append(grad.astype(np.float32))
    optimizer.step(params, grads)
    return params


def _engine_pair(recipe, layers, activation, batch_size, dropout):
    """The reference engine and the compiled one on the same model, optimizer and masks."""
    from mlpcli.engines.compiled import CompiledEngine
    from mlpcli.engines.reference import ReferenceEngine
    from mlpcli.nn.dropout import Dropout

    name, settings, learning_rate, decay, max_norm = RECIPES[recipe]
    pixels, labels = _digits(300)
    split = Split(pixels, labels, STATS)
    engines = []
    for engine in (ReferenceEngine, CompiledEngine):
        model = MLP.initialize(layers, np.random.default_rng(2), activation=activation)
        optimizer = make_optimizer(name, model.params, learning_rate, decay, max_norm, **settings)
        masks = Dropout(dropout, 0.0, np.random.default_rng(8)) if dropout else None
        engines.append(engine(model, optimizer, masks, split, batch_size))
    return engines


@needs_build
@pytest.mark.parametrize(
    "recipe, layers, activation, batch_size, dropout",
    [
        ("momentum", [784, 64, 10], "relu", 64, 0.0),
        ("nesterov-decay", [784, 300, 10], "relu", 32, 0.0),  # two threads, 300 not /16
        ("momentum", [784, 100, 30, 10], "tanh", 50, 0.0),  # depth, a short last batch
        ("adam", [784, 100, 30, 10], "relu", 50, 0.0),
        ("adam-decay", [784, 130, 10], "leaky-relu", 64, 0.5),
        ("adamw", [784, 64, 32, 10], "relu", 40, 0.3),
        ("adamw", [784, 40, 20, 10], "sigmoid", 17, 0.2),  # dropout with f' from Z
        ("sgd-decay-max-norm", [784, 200, 10], "relu", 64, 0.0),
        ("momentum-max-norm", [784, 64, 10], "relu", 64, 0.5),
        ("momentum-per-sample", [784, 64, 10], "relu", 1, 0.0),
        ("adam", [784, 10], "relu", 32, 0.0),  # no hidden layer
        ("momentum", [784, 64, 2048, 10], "relu", 64, 0.0),  # BLAS's products above
        ("adamw", [784, 64, 2048, 10], "tanh", 50, 0.3),
        ("sgd-decay-max-norm", [784, 32, 4096, 10], "relu", 64, 0.0),
    ],
)
def test_compiled_step_takes_the_references_steps(
    recipe, layers, activation, batch_size, dropout, simd
):
    """Step for step, to float32 rounding: after each batch the two engines' weights and
    buffers agree, and the next batch starts both from the reference's, so that rounding
    does not compound through the network's kinks (a ReLU whose input is within rounding of
    0 passes its gradient in one engine and not the other). Adam divides each gradient by its
    own running size: where a gradient is mostly rounding (a sum that cancels), the two
    engines' rounding moves its weight by a good part of lr apart. So with Adam the weights
    are held to the reference's step from the gradient the compiled engine took (read back
    from its mean buffer), and that gradient to the reference's through the buffers."""
    reference, compiled = _engine_pair(recipe, layers, activation, batch_size, dropout)
    order = np.random.default_rng(1).permutation(300)[:293]
    for _ in range(2):  # the second epoch counts on from the first's steps
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            before = [p.copy() for p in reference.model.params]
            state = {name: a.copy() for name, a in reference.optimizer.state().items()}
            a, b = (next(iter(engine.run_epoch(rows))) for engine in (reference, compiled))
            assert a.rows == b.rows and abs(a.correct - b.correct) <= 1
            assert a.loss == pytest.approx(b.loss, rel=1e-4, abs=1e-5)
            expected = reference.model.params
            if "mean" in reference.optimizer.buffers:
                expected = _adams_step(recipe, before, state, compiled.optimizer.buffers["mean"])
            for mine, theirs, synced in zip(
                compiled.model.params, expected, reference.model.params, strict=True
            ):
                np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=2e-5)
                mine[...] = synced
            for name, buffers in reference.optimizer.buffers.items():
                for mine, theirs in zip(compiled.optimizer.buffers[name], buffers, strict=True):
                    np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-6)
                    mine[...] = theirs
    assert compiled.optimizer.steps == reference.optimizer.steps == 2 * -(-293 // batch_size)
    start = MLP.initialize(layers, np.random.default_rng(2), activation=activation)
    moved = [
        np.abs(a - b).max() for a, b in zip(compiled.model.weights, start.weights, strict=True)
    ]
    assert min(moved) > 1e-4  # every layer trained
    if RECIPES[recipe][4]:
        for W in compiled.model.weights:
            assert np.linalg.norm(W, axis=0).max() <= RECIPES[recipe][4] * (1 + 1e-5)


@needs_build
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_one_thread_and_two_take_bitwise_the_same_steps(name, simd):
    """A run takes the idle cores (training.loop), so its thread count depends on the
    machine's load: that must change the time alone, or the same command would not give the
    same checkpoint."""
    pixels, labels = _digits(400)
    ink = sparse_sgd.InkPixels.of(Split(pixels, labels, STATS))
    rows = np.random.default_rng(1).permutation(400)
    models = []
    for threads in (1, 2):
        model = MLP.initialize([784, 256, 32, 10], np.random.default_rng(2))
        optimizer = make_optimizer(name, model.params, 0.01)
        sparse_sgd.train_on_ink(model, ink, rows, labels[rows], 32, optimizer, threads)
        models.append(model)
    for one, two in zip(models[0].params, models[1].params, strict=True):
        np.testing.assert_array_equal(one, two)


@needs_build
def test_mlpcli_simd_caps_the_build_that_trains(monkeypatch):
    lanes = {"avx512": 16, "avx2": 8, "baseline": 4}  # floats per vector, one register each
    widest = sparse_sgd.simd_paths()[0]
    monkeypatch.delenv(sparse_sgd.SIMD_VARIABLE, raising=False)
    assert sparse_sgd.simd_path() == widest
    assert sparse_sgd.step_module().LANES == lanes[widest]
    for cap in sparse_sgd.SIMD_PATHS:
        monkeypatch.setenv(sparse_sgd.SIMD_VARIABLE, cap)
        runs = sparse_sgd.SIMD_PATHS[sparse_sgd.SIMD_PATHS.index(cap) :]
        expected = next(p for p in runs if p in sparse_sgd.simd_paths())
        assert sparse_sgd.simd_path() == expected
        assert sparse_sgd.step_module().LANES == lanes[expected]
    monkeypatch.setenv(sparse_sgd.SIMD_VARIABLE, "sse9")
    with pytest.raises(ConfigError, match="MLPCLI_SIMD=sse9 .* one of avx512, avx2, baseline"):
        sparse_sgd.simd_path()


@needs_build
def test_a_bad_mlpcli_simd_is_a_usage_error(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mlpcli.cli import cli

    monkeypatch.setenv(sparse_sgd.SIMD_VARIABLE, "sse9")
    out = tmp_path / "m.npz"
    result = CliRunner().invoke(cli, ["train", "--engine", "compiled", "--out", str(out)])
    assert result.exit_code == 2 and "MLPCLI_SIMD=sse9" in result.output
    assert isinstance(result.exception, SystemExit) and not out.exists()


def test_auto_takes_the_engine_it_timed_fastest():
    pixels, labels = _digits(50)
    split = Split(pixels, labels, STATS)
    plain = StepOptions("relu", "cross-entropy")
    names = list(usable_engines(plain, split))
    for fastest in names:  # whichever is made out to be quickest, and by how much
        told = {name: 1e-5 if name == fastest else 3e-5 for name in names}
        choice = fastest_engine(plain, split, lambda engine, told=told: told[engine.name])
        assert choice.engine.name == fastest and choice.seconds_per_sample == told
        assert choice.summary().startswith(f"{fastest}, 3.00x as fast as ")
    lone = fastest_engine(StepOptions(input_dropout=0.2), split, lambda engine: 1 / 0)
    assert lone.engine.name == "reference" and lone.summary() == "reference"  # nothing timed


def test_auto_times_the_engines_without_touching_the_run():
    """The trial trains copies: the run then takes exactly the steps of the engine it chose
    when that engine is named, from the same weights, buffers and random streams."""
    pixels, labels = _digits(400)
    split = Split(pixels, labels, STATS)
    results, told = {}, []
    for engine in ("auto", None):
        model = MLP.initialize([784, 32, 10], np.random.default_rng(3))
        state = run_state(model, 4, 0.05, "momentum")
        options = FitOptions(0.05, 2, 20, 0, engine=engine or results["auto"].engine)
        options.optimizer, options.dropout = "momentum", 0.2
        results[engine] = fit(state, split, None, options, False, on_engine=told.append)
    auto, named = results["auto"], results[None]
    assert told == [auto.choice] and named.choice is None  # said once, for auto alone
    timed = auto.choice.seconds_per_sample
    assert set(timed) == set(usable_engines(StepOptions(optimizer="momentum", dropout=0.2)))
    assert auto.engine == min(timed, key=timed.get) and all(s > 0 for s in timed.values())
    for a, b in zip(auto.model.params, named.model.params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert auto.history[-1]["train_loss"] == named.history[-1]["train_loss"]


@needs_build
def test_the_step_flushes_subnormal_buffers_and_leaves_the_thread_as_it_was(simd):
    """A dead unit's momentum decays into the subnormal range, where each multiply-add takes
    x86's slow path: the step treats subnormals as zero, and restores the mode after."""
    pixels, labels = _digits(64)
    ink = sparse_sgd.InkPixels.of(Split(pixels, labels, STATS))
    model = MLP.initialize([784, 32, 10], np.random.default_rng(0))
    model.biases[0][:8] = -1e4  # eight units that never fire: their gradients are exactly 0
    optimizer = make_optimizer("momentum", model.params, 0.01, momentum=0.9)
    subnormal = np.float32(1e-39)
    assert 0 < subnormal < np.finfo(np.float32).tiny
    for velocity in optimizer.buffers["velocity"]:
        velocity[...] = subnormal
    sparse_sgd.train_on_ink(model, ink, np.arange(64), labels, 64, optimizer, 1)
    dead = optimizer.buffers["velocity"][0][:, :8]
    assert (dead == 0).all()  # 0.9 * 1e-39 would stay subnormal
    assert np.float32(1e-38) * np.float32(0.01) > 0  # this thread computes subnormals again
