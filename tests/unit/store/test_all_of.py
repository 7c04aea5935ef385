"""`all_of`: results in order, and an error raised only once every call has ended."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shopstream.store.mongo import all_of


def test_results_come_back_in_the_order_of_the_calls() -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert all_of(pool, [lambda i=i: i * i for i in range(6)]) == [0, 1, 4, 9, 16, 25]


def test_an_error_is_raised_after_the_other_calls_have_finished() -> None:
    release = threading.Event()
    finished: list[str] = []

    def fails() -> None:
        release.set()
        raise ValueError("boom")

    def slow() -> str:
        release.wait(5)
        time.sleep(0.2)  # still writing well after the other call failed
        finished.append("slow")
        return "slow"

    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(ValueError, match="boom"):
            all_of(pool, [slow, fails])
        assert finished == ["slow"]  # ended before the error reached the caller


def test_a_first_call_that_uses_the_same_pool_again_finishes_with_one_thread() -> None:
    # The driver's rollups (first) split their writes on the pool that runs the customer sets
    # beside them: the first call runs on the caller's thread, so nothing waits on the pool
    # from inside it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        inner = lambda: sum(all_of(pool, [lambda: 1, lambda: 2, lambda: 3]))  # noqa: E731
        outer = threading.Thread(target=lambda: result.append(all_of(pool, [inner, slow_ten])))
        result: list[list[int]] = []
        outer.start()
        outer.join(timeout=5)
        assert result == [[6, 10]]


def slow_ten() -> int:
    time.sleep(0.1)  # holds the pool's only thread while the first call submits to it
    return 10
