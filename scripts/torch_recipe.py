"""Train an mlpcli config's recipe in PyTorch, and time how long it takes to reach a test
accuracy: the PyTorch side of scripts/bench.py's "time to 99.0% test" row.

    python scripts/torch_recipe.py configs/fast99.toml --data-dir ../shared/mnist

The recipe is the config's: layers (ReLU), SGD with momentum or Adam, the cosine schedule,
batch size, epochs, and --augment's distortions (random affine maps with the same ranges,
elastic fields with the same alpha and sigma), made on the fly with torch's affine_grid and
grid_sample. The data are mlpcli's split of MNIST (the same 50,000 training images,
normalized alike), so both frameworks learn from the same images. After each epoch the test
accuracy is measured, outside the timed part; the script prints one JSON line per epoch and
a last one with the seconds of training until the target was first reached (null if never).
Needs torch and mlpcli (for the data); torchvision is not used.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_recipe(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    with open(path, "rb") as file:
        recipe = {k.replace("-", "_"): v for k, v in tomllib.load(file).items()}
    from mlpcli.api import TrainConfig

    config = TrainConfig(**recipe)
    config.resolve_defaults()  # the rate and epochs that follow the optimizer and batch size
    return vars(config)  # mlpcli's defaults for what the config leaves out


def affine_theta(n: int, recipe: dict, size: int, generator: torch.Generator) -> torch.Tensor:
    """affine_grid's (n, 2, 3) maps from output to input: mlpcli's inverse affine maps, in
    coordinates where the image spans -1..1 between its corner pixels' centres."""
    draw = torch.rand(5, n, generator=generator, dtype=torch.float64) * 2 - 1
    angle = torch.deg2rad(draw[0] * recipe["rotation"])
    shear = torch.deg2rad(draw[1] * recipe["shear"])
    scale = 1 + draw[2] * recipe["scale"]
    shift = torch.stack([draw[3], draw[4]], 1) * recipe["translate"]
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    rotation = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    shearing = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    shearing[:, 0, 1] = tan
    forward = rotation @ shearing * scale[:, None, None]
    inverse = torch.linalg.inv(forward)
    offset = -(inverse @ (shift * 2 / (size - 1))[:, :, None])
    return torch.cat([inverse, offset], 2).float()


def elastic_offsets(n: int, recipe: dict, size: int, generator: torch.Generator):
    """(n, size, size, 2) displacements, in grid units: alpha * Gaussian(sigma) * noise."""
    sigma, radius = recipe["elastic_sigma"], int(4 * recipe["elastic_sigma"] + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    noise = torch.rand(n * 2, 1, size, size, generator=generator) * 2 - 1
    noise = F.conv2d(noise, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    noise = F.conv2d(noise, kernel.view(1, 1, 1, -1), padding=(0, radius))
    field = noise.view(n, 2, size, size).permute(0, 2, 3, 1) * recipe["elastic_alpha"]
    return field * 2 / (size - 1)


def distort(images: torch.Tensor, recipe: dict, generator: torch.Generator) -> torch.Tensor:
    """Images (n, 1, size, size) -> distorted by the recipe's --augment, bilinear, zeros
    beyond the edges (MNIST's blank paper is 0 before normalization)."""
    kinds = [k for k in recipe["augment"].split(",") if k and k != "none"]
    n, size = len(images), images.shape[-1]
    theta = torch.eye(2, 3).repeat(n, 1, 1)
    if "affine" in kinds:
        theta = affine_theta(n, recipe, size, generator)
    grid = F.affine_grid(theta, images.shape, align_corners=True)
    if "elastic" in kinds:
        grid = grid + elastic_offsets(n, recipe, size, generator)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="an mlpcli config, e.g. configs/fast99.toml")
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST files")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    parser.add_argument("--stop-at-target", action="store_true", help="stop once reached")
    args = parser.parse_args()
    recipe = load_recipe(args.config)
    torch.set_num_threads(args.threads)
    torch.manual_seed(recipe["seed"])
    generator = torch.Generator().manual_seed(recipe["seed"])

    from mlpcli.data import load_mnist, make_splits

    splits, _ = make_splits(load_mnist(args.data_dir), recipe["validation_size"], recipe["seed"])
    train, test = splits["train"], splits["test"]
    pixels = torch.from_numpy(train.X.reshape(-1, 1, 28, 28).astype(np.float32) / 255)
    labels = torch.from_numpy(train.y)
    mean, std = train.normalization
    test_X = torch.from_numpy(test.features())
    test_y = torch.from_numpy(test.y)

    layers = recipe["layers"]
    parts = []
    for fan_in, fan_out in zip(layers, layers[1:], strict=False):
        parts += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*parts[:-1])
    if recipe["optimizer"] in ("adam", "adamw"):
        make = torch.optim.AdamW if recipe["optimizer"] == "adamw" else torch.optim.Adam
        optimizer = make(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=recipe["lr"],
            momentum=0.0 if recipe["optimizer"] == "sgd" else recipe["momentum"],
            nesterov=recipe["optimizer"] == "nesterov",
            weight_decay=recipe["weight_decay"],
        )
    epochs, batch_size = recipe["epochs"], recipe["batch_size"]
    trained, reached = 0.0, None
    for epoch in range(1, epochs + 1):
        if recipe["schedule"] == "cosine":  # as mlpcli's: lr at epoch e of E, e from 1
            rate = recipe["min_lr"] + (recipe["lr"] - recipe["min_lr"]) * 0.5 * (
                1 + math.cos(math.pi * (epoch - 1) / epochs)
            )
            for group in optimizer.param_groups:
                group["lr"] = rate
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            images = distort(pixels[rows], recipe, generator) if recipe["augment"] else pixels[rows]
            X = ((images - mean) / std).view(len(rows), -1)
            optimizer.zero_grad()
            F.cross_entropy(model(X), labels[rows]).backward()
            optimizer.step()
        trained += time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            accuracy = (model(test_X).argmax(1) == test_y).float().mean().item()
        print(json.dumps({"epoch": epoch, "seconds": trained, "test_accuracy": accuracy}))
        sys.stdout.flush()
        if reached is None and accuracy >= args.target:
            reached = trained
            if args.stop_at_target:
                break
    print(json.dumps({"reached": reached, "target": args.target, "epochs": epoch}))


if __name__ == "__main__":
    main()
