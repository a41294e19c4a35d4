"""Optimizers against torch.optim's trajectories, step for step: from the stored output of
scripts/torch_trajectories.py, and against torch itself where it is installed."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mlpcli.nn.model import MLP, train_step
from mlpcli.nn.optim import OPTIMIZERS, limit_unit_norms, make_optimizer

ROOT = Path(__file__).resolve().parents[1]
STORED = json.loads((ROOT / "tests" / "data" / "torch_trajectories.json").read_text())
spec = importlib.util.spec_from_file_location(
    "trajectories", ROOT / "scripts/torch_trajectories.py"
)
trajectories = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trajectories)


def our_trajectory(case: dict) -> list[list[np.ndarray]]:
    """The parameters after each step of mlpcli's train_step on the script's problem."""
    start = trajectories.problem()
    model = MLP([W.copy() for W in start["weights"]], [b.copy() for b in start["biases"]], "tanh")
    optimizer = make_optimizer(
        case["optimizer"],
        model.params,
        case["learning_rate"],
        case["weight_decay"],
        **case["settings"],
    )
    steps = []
    for X, y in zip(start["X"], start["y"], strict=True):
        train_step(model, optimizer, X, y)
        steps.append([p.copy() for p in model.params])
    return steps


def assert_same_trajectory(ours, theirs):
    for step, (mine, expected) in enumerate(zip(ours, theirs, strict=True), 1):
        for index, (a, b) in enumerate(zip(mine, expected, strict=True)):
            np.testing.assert_allclose(
                a, np.asarray(b, np.float32), rtol=2e-5, atol=2e-6, err_msg=f"step {step}, {index}"
            )


def test_every_optimizer_has_a_stored_trajectory():
    assert {case["optimizer"] for case in STORED["cases"].values()} == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(STORED["cases"]))
def test_steps_match_torch_optim_stored(name):
    case = STORED["cases"][name]
    ours = our_trajectory(case)
    assert_same_trajectory(ours, case["trajectory"])
    start = trajectories.problem()["weights"][0]
    assert not np.allclose(ours[-1][0], start, atol=1e-3)  # the steps moved the weights


@pytest.mark.parametrize("name", sorted(trajectories.CASES))
def test_steps_match_torch_optim_installed(name):
    pytest.importorskip("torch")
    case = STORED["cases"][name]
    theirs = trajectories.torch_trajectory(name, trajectories.problem())
    assert_same_trajectory(our_trajectory(case), theirs)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_saved_state_continues_the_same_steps(name):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    make = lambda model: make_optimizer(name, model.params, 0.05, 0.01)  # noqa: E731
    straight = MLP.initialize([6, 5, 3], np.random.default_rng(1))
    optimizer = make(straight)
    for batch in range(4):
        train_step(
            straight, optimizer, X[10 * batch : 10 * batch + 10], y[10 * batch : 10 * batch + 10]
        )
    paused = MLP.initialize([6, 5, 3], np.random.default_rng(1))
    first = make(paused)
    for batch in range(2):
        train_step(paused, first, X[10 * batch : 10 * batch + 10], y[10 * batch : 10 * batch + 10])
    resumed = paused.copy()
    second = make(resumed)
    second.load_state({k: v.copy() for k, v in first.state().items()})
    for batch in range(2, 4):
        train_step(
            resumed, second, X[10 * batch : 10 * batch + 10], y[10 * batch : 10 * batch + 10]
        )
    for a, b in zip(straight.params, resumed.params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert second.steps == 4


def test_momentum_and_adam_worked_by_hand():
    """One parameter, gradient 2 then 1: the update rules written out."""
    p = np.array([1.0], np.float32)
    momentum = make_optimizer("momentum", [p], 0.1, momentum=0.5)
    momentum.step([p], [np.array([2.0], np.float32)])  # v = 2, p = 1 - 0.2
    momentum.step([p], [np.array([1.0], np.float32)])  # v = 0.5 * 2 + 1 = 2, p = 0.8 - 0.2
    np.testing.assert_allclose(p, [0.6], rtol=1e-6)
    q = np.array([1.0], np.float32)
    adam = make_optimizer("adam", [q], 0.1, eps=0.0)
    adam.step([q], [np.array([2.0], np.float32)])  # first step: m_hat / sqrt(s_hat) = 1
    np.testing.assert_allclose(q, [0.9], rtol=1e-6)


def test_max_norm_scales_long_columns_back_and_leaves_short_ones():
    W = np.array([[3.0, 0.1], [4.0, 0.2]], np.float32)  # column norms 5 and ~0.22
    limit_unit_norms([W], 2.0)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), [2.0, np.hypot(0.1, 0.2)], rtol=1e-6)
    np.testing.assert_allclose(W[:, 0], [1.2, 1.6], rtol=1e-6)  # the direction is kept


def test_max_norm_is_applied_after_every_step():
    model = MLP.initialize([6, 5, 3], np.random.default_rng(0), init="normal", init_scale=3.0)
    optimizer = make_optimizer("sgd", model.params, 0.1, max_norm=1.0)
    rng = np.random.default_rng(1)
    train_step(model, optimizer, rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 3, 8))
    for W in model.weights:
        assert np.linalg.norm(W, axis=0).max() <= 1.0 + 1e-6
