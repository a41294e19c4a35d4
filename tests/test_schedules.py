import math

import pytest

from mlpcli.nn.schedules import Schedule


def rates(schedule: Schedule, epochs: int) -> list[float]:
    return [schedule.learning_rate(e) for e in range(1, epochs + 1)]


def test_constant_and_step():
    assert rates(Schedule("constant", 0.1, 3), 3) == [0.1, 0.1, 0.1]
    step = Schedule("step", 1.0, 7, step_epochs=3, factor=0.5)
    assert rates(step, 7) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_cosine_falls_from_the_base_to_near_min_lr_by_the_last_epoch():
    cosine = Schedule("cosine", 1.0, 5, min_lr=0.1)
    got = rates(cosine, 5)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * k / 5)) / 2 for k in range(5)]
    assert got == pytest.approx(expected)
    assert got[0] == 1.0 and all(a > b for a, b in zip(got, got[1:], strict=False))


def test_warmup_ramps_up_then_the_schedule_starts():
    warm = Schedule("cosine", 0.3, 6, warmup_epochs=2)
    got = rates(warm, 6)
    assert got[:3] == pytest.approx([0.1, 0.2, 0.3])  # base * e / 3, then the first cosine epoch
    assert got[3] < 0.3 and got[5] > 0


def test_plateau_cuts_after_more_than_patience_bad_epochs_and_remembers():
    plateau = Schedule("plateau", 1.0, 20, factor=0.1, patience=1)
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.92], 1):  # two epochs without improvement
        plateau.observe(epoch, loss)
    assert plateau.learning_rate(5) == pytest.approx(0.1)
    again = Schedule("plateau", 1.0, 20, factor=0.1, patience=1)
    again.load_state(plateau.state())
    assert again.learning_rate(5) == pytest.approx(0.1) and again.best == 0.9
    floor = Schedule("plateau", 1.0, 20, factor=0.1, patience=0, min_lr=0.05)
    for epoch, loss in enumerate([1.0, 1.0, 1.0, 1.0], 1):
        floor.observe(epoch, loss)
    assert floor.learning_rate(5) == 0.05
