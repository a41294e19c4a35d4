import numpy as np
import pytest
from conftest import ctrl_c, run_state, synthetic_digits

from mlpcli.data import Split, normalize
from mlpcli.engines import fast_numpy
from mlpcli.errors import TrainingDiverged
from mlpcli.nn.model import MLP
from mlpcli.training import FitOptions, fit
from mlpcli.training import loop as loop_module


def _data(count=300, seed=0):
    images, labels = synthetic_digits(count, np.random.default_rng(seed))
    return Split(normalize(images, 0.2, 0.35), labels.astype(np.int64))


def _model(seed=0):
    return MLP.initialize([784, 16, 10], np.random.default_rng(seed))


def _fit(options, validation=None, seed=0, **kwargs):
    """fit() of a fresh model on the 300 synthetic training digits, without progress bars."""
    state = run_state(_model(), seed, options.learning_rate)
    return fit(state, _data(), validation, options, progress=False, **kwargs)


def _scripted_validation(monkeypatch, losses, accuracies=None):
    """Make the per-epoch validation loss (and accuracy) follow `losses` (and `accuracies`);
    keep a copy of the model each time."""
    seen = []

    def scripted(model, split):
        seen.append(model.copy())
        epoch = len(seen) - 1
        return {"loss": losses[epoch], "accuracy": accuracies[epoch] if accuracies else 0.5}

    monkeypatch.setattr(loop_module, "evaluate_split", scripted)
    return seen


def test_early_stopping_restores_the_best_epoch(monkeypatch):
    seen = _scripted_validation(monkeypatch, [1.0, 0.5, 0.6, 0.7, 0.4])
    result = _fit(FitOptions(0.05, epochs=5, batch_size=32, patience=2), _data(50, 1))
    assert result.stopped_early and len(result.history) == 4 and result.best_epoch == 2
    for best, restored in zip(seen[1].weights, result.model.weights, strict=True):
        np.testing.assert_array_equal(best, restored)
    assert not np.array_equal(seen[3].weights[0], result.model.weights[0])


def test_improvements_smaller_than_min_delta_do_not_count(monkeypatch):
    _scripted_validation(monkeypatch, [1.0, 0.95, 0.9, 0.85])
    result = _fit(FitOptions(0.05, epochs=4, patience=2, min_delta=0.1), _data(50, 1))
    assert result.best_epoch == 1 and len(result.history) == 3


def test_patience_zero_runs_every_epoch(monkeypatch):
    _scripted_validation(monkeypatch, [1.0, 2.0, 3.0, 4.0])
    result = _fit(FitOptions(0.05, epochs=4, patience=0), _data(50, 1))
    assert len(result.history) == 4 and result.best_epoch == 1 and not result.stopped_early


@pytest.mark.parametrize("engine", ["numpy", "reference"])
def test_training_learns_the_synthetic_digits(engine):
    result = _fit(FitOptions(0.1, epochs=5, batch_size=16, engine=engine), _data(100, 1))
    assert result.engine == engine
    assert result.history[-1]["validation_accuracy"] > 0.95
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_divergence_stops_with_advice():
    with pytest.raises(TrainingDiverged, match="lower the learning rate.*--lr"):
        _fit(FitOptions(1e9, epochs=3, batch_size=8))


def test_ctrl_c_keeps_the_best_weights_so_far(monkeypatch):
    calls = []
    real_engine = fast_numpy.sgd_minibatches

    def engine(*args):
        calls.append(1)
        if len(calls) == 2:  # in epoch 2: each epoch's 300 samples are one chunk
            raise KeyboardInterrupt
        return real_engine(*args)

    monkeypatch.setattr(fast_numpy, "sgd_minibatches", engine)
    # named: auto's trial of the engines would take steps of its own first
    result = _fit(FitOptions(0.05, epochs=5, batch_size=30, engine="numpy"), _data(50, 1))
    assert result.interrupted and result.best_epoch == 1 and len(result.history) == 1
    assert result.state.epoch == 1  # the state is that of the last completed epoch


@pytest.mark.parametrize("batch_size, updates", [(64, 5), (0, 1), (1000, 1), (7, 43)])
def test_batch_size_sets_updates_per_epoch(monkeypatch, batch_size, updates):
    calls = []
    real_forward = fast_numpy.forward  # called once per step, with the step's batch last
    monkeypatch.setattr(
        fast_numpy, "forward", lambda *args: (calls.append(len(args[-1])), real_forward(*args))[1]
    )
    result = _fit(FitOptions(0.01, epochs=1, batch_size=batch_size, engine="numpy"))
    assert len(calls) == updates
    assert sum(calls) == 300  # every sample in exactly one update
    assert result.state.optimizer.steps == updates


def test_batch_size_one_takes_the_per_sample_path(monkeypatch):
    seen = []
    monkeypatch.setattr(
        fast_numpy, "sgd_per_sample", lambda m, X, y, lr: (seen.append(len(y)), X[:, :10])[1]
    )
    _fit(FitOptions(0.01, epochs=1, batch_size=1, engine="numpy"))
    assert sum(seen) == 300


def test_same_seed_same_weights_other_seed_other_weights():
    def run(seed):
        return _fit(FitOptions(0.05, epochs=2, batch_size=10), seed=seed).model.weights[0]

    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_each_epochs_learning_rate_comes_from_the_schedule_and_is_recorded():
    from mlpcli.nn.schedules import Schedule

    state = run_state(_model(), 0, 0.1)
    state.schedule = Schedule("step", 0.1, epochs=4, step_epochs=2, factor=0.5)
    result = fit(state, _data(), None, FitOptions(0.1, epochs=4, patience=0), progress=False)
    assert [r["learning_rate"] for r in result.history] == [0.1, 0.1, 0.05, 0.05]


def test_ctrl_c_while_a_progress_bar_is_made_waits_until_it_is_whole(monkeypatch):
    """The CI failure: Ctrl-C landing inside tqdm's constructor left a half-made bar whose
    __del__ printed a traceback. Now the bar is made whole, then training stops."""
    import tqdm

    bars = []

    class InterruptedWhileMade(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            ctrl_c()
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm, "tqdm", InterruptedWhileMade)
    result = _fit(FitOptions(0.05, epochs=3, batch_size=30), _data(50, 1))
    assert result.interrupted and result.best_epoch == 0 and result.history == []
    assert len(bars) == 1  # the constructor ran to its end


def test_monitor_accuracy_keeps_the_epoch_of_best_validation_accuracy(monkeypatch):
    # the loss keeps rising while the accuracy peaks at epoch 3: the monitors keep other epochs
    losses, accuracies = [0.10, 0.11, 0.12, 0.13], [0.95, 0.96, 0.97, 0.96]
    for monitor, best in (("loss", 1), ("accuracy", 3)):
        seen = _scripted_validation(monkeypatch, losses, accuracies)
        options = FitOptions(0.05, epochs=4, patience=0, monitor=monitor)
        result = _fit(options, _data(50, 1))
        assert result.best_epoch == best
        np.testing.assert_array_equal(result.model.weights[0], seen[best - 1].weights[0])


def test_threads_respect_the_option_openmp_and_the_affinity_mask(monkeypatch):
    import os

    from mlpcli.engines.base import usable_cpus

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert usable_cpus() == allowed and usable_cpus(1) == 1
    assert usable_cpus(allowed + 5) == allowed  # never more than the mask allows
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert usable_cpus() == 1 and usable_cpus(4) == 1  # whichever allows fewer
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert usable_cpus() == allowed


def test_one_thread_takes_the_same_steps():
    one = _fit(FitOptions(0.05, epochs=2, batch_size=10, threads=1))
    every = _fit(FitOptions(0.05, epochs=2, batch_size=10))
    for a, b in zip(one.model.params, every.model.params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_idle_cpus_counts_what_this_process_may_use():
    import os

    from mlpcli.engines.base import idle_cpus

    idle = idle_cpus(0.05)
    if not hasattr(os, "sched_getaffinity"):
        assert idle is None
        return
    assert idle is not None and 0 <= idle <= len(os.sched_getaffinity(0))
