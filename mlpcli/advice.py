"""What a finished run's figures say to change, for the one who trains it."""

from __future__ import annotations

from .config import TrainConfig
from .nn.optim import default_learning_rate


def did_not_learn(config: TrainConfig, meta: dict) -> str | None:
    """Why a finished run looks like it learned nothing, with the option to change, or None.
    Near chance: validation accuracy (training accuracy without validation data) below 1.5
    times what guessing gives."""
    accuracy = meta.get("validation_accuracy", meta.get("train_accuracy"))
    chance = 1 / len(meta.get("classes", range(10)))
    if accuracy is None or accuracy >= 1.5 * chance:
        return None
    default = default_learning_rate(config.optimizer, config.batch_size)
    if config.batch_size == 1 and config.lr > 0.01:
        cause = (
            f"--lr {config.lr:g} is too high for per-sample steps; leave --lr out for "
            f"{config.optimizer}'s rate at batch 1, {default:.2g}"
        )
    elif config.optimizer in ("adam", "adamw") and config.lr > 0.01:
        cause = (
            f"--lr {config.lr:g} is too high for {config.optimizer}; leave --lr out for its "
            f"rate at this batch size, {default:.2g}"
        )
    elif config.init == "zeros":
        cause = "--init zeros gives every unit the same weights; leave --init out"
    else:
        cause = f"try a lower --lr than {config.lr:g}, e.g. --lr {config.lr / 10:g}"
    return (
        f"the best epoch's accuracy is {100 * accuracy:.1f}%, about what guessing gives "
        f"({100 * chance:.0f}%): this network did not learn. {cause}"
    )
