"""Reference trajectories of torch.optim for tests/test_optim.py, which CI runs without torch.

A small float32 network (6-5-4-3, tanh, cross-entropy on softmax, mean over the batch) takes
STEPS steps on fixed batches with each optimizer; its parameters after every step are written
to tests/data/torch_trajectories.json, with the initial weights and the data. The test takes
the same steps with mlpcli's own backward() and optimizers and compares.

    pip install torch==2.13.0 && python scripts/torch_trajectories.py
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np

LAYERS = [6, 5, 4, 3]
STEPS = 6
BATCH = 8
# name -> (mlpcli optimizer, its settings, learning rate, weight decay)
CASES = {
    "sgd": ("sgd", {}, 0.1, 0.0),
    "sgd-weight-decay": ("sgd", {}, 0.1, 0.05),
    "momentum": ("momentum", {"momentum": 0.9}, 0.1, 0.0),
    "momentum-weight-decay": ("momentum", {"momentum": 0.8}, 0.1, 0.05),
    "nesterov-weight-decay": ("nesterov", {"momentum": 0.9}, 0.1, 0.05),
    "adam": ("adam", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, 0.01, 0.0),
    "adam-weight-decay": ("adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6}, 0.01, 0.05),
    "adamw": ("adamw", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, 0.01, 0.1),
}
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "torch_trajectories.json"


def problem() -> dict:
    """Initial weights (fan_in, fan_out), biases and STEPS batches, from a fixed seed."""
    rng = np.random.default_rng(2024)
    weights = [rng.normal(0, 0.6, (i, o)).astype(np.float32) for i, o in pairwise(LAYERS)]
    biases = [rng.normal(0, 0.1, o).astype(np.float32) for o in LAYERS[1:]]
    X = rng.normal(0, 1, (STEPS, BATCH, LAYERS[0])).astype(np.float32)
    y = rng.integers(0, LAYERS[-1], (STEPS, BATCH))
    return {"weights": weights, "biases": biases, "X": X, "y": y}


def torch_trajectory(case: str, start: dict) -> list[list[list]]:
    """The parameters W1, b1, W2, ... after each step of torch.optim."""
    import torch

    name, settings, lr, wd = CASES[case]
    params = []
    for W, b in zip(start["weights"], start["biases"], strict=True):
        params += [torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)]
    if name in ("sgd", "momentum", "nesterov"):
        optimizer = torch.optim.SGD(
            params,
            lr=lr,
            momentum=settings.get("momentum", 0.0),
            nesterov=name == "nesterov",
            weight_decay=wd,
        )
    else:
        kind = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        optimizer = kind(
            params,
            lr=lr,
            betas=(settings["beta1"], settings["beta2"]),
            eps=settings["eps"],
            weight_decay=wd,
        )
    trajectory = []
    for X, y in zip(start["X"], start["y"], strict=True):
        A = torch.tensor(X)
        for layer in range(len(LAYERS) - 1):
            A = A @ params[2 * layer] + params[2 * layer + 1]
            if layer < len(LAYERS) - 2:
                A = torch.tanh(A)
        loss = torch.nn.functional.cross_entropy(A, torch.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        trajectory.append([p.detach().numpy().tolist() for p in params])
    return trajectory


def main() -> None:
    import torch

    start = problem()
    written = {
        "torch_version": torch.__version__,
        "layers": LAYERS,
        "cases": {
            case: {
                "optimizer": CASES[case][0],
                "settings": CASES[case][1],
                "learning_rate": CASES[case][2],
                "weight_decay": CASES[case][3],
                "trajectory": torch_trajectory(case, start),
            }
            for case in CASES
        },
    }
    OUT.write_text(json.dumps(written))
    print(f"wrote {OUT} ({len(CASES)} optimizers, {STEPS} steps each, torch {torch.__version__})")


if __name__ == "__main__":
    main()
