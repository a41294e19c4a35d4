import signal
import threading

import pytest
from conftest import ctrl_c

from mlpcli import interrupts


def test_a_ctrl_c_waits_for_the_next_check():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.at_safe_points():
            ctrl_c()
            reached.append("after the signal")
            interrupts.check()
            reached.append("after the check")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_pending_ctrl_c_is_raised_when_the_block_ends():
    with pytest.raises(KeyboardInterrupt):
        with interrupts.at_safe_points():
            ctrl_c()
    interrupts.check()  # raised once, then forgotten


def test_a_second_ctrl_c_raises_at_once():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.at_safe_points():
            ctrl_c()
            reached.append("after the first")
            ctrl_c()
            reached.append("after the second")
    assert reached == ["after the first"]


def test_check_does_nothing_without_a_ctrl_c():
    with interrupts.at_safe_points():
        interrupts.check()


def test_other_threads_and_other_handlers_are_left_alone():
    outcome = []

    def in_a_thread():
        with interrupts.at_safe_points():
            outcome.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert outcome == [signal.default_int_handler]

    def own_handler(signum, frame):
        outcome.append("own handler ran")

    previous = signal.signal(signal.SIGINT, own_handler)
    try:
        with interrupts.at_safe_points():
            ctrl_c()
            interrupts.check()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert outcome[-1] == "own handler ran"
