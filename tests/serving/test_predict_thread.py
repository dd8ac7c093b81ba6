"""The worker's predict thread: one thread, jobs in order, results and errors delivered."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError
from typing import Any

import pytest

from shipway.serving.predict_thread import PredictThread


def test_jobs_run_in_order_on_one_thread() -> None:
    thread = PredictThread()
    seen: list[tuple[int, str]] = []
    futures = [thread.submit(lambda i=i: seen.append((i, threading.current_thread().name)) or i) for i in range(20)]
    assert [f.result(timeout=30) for f in futures] == list(range(20))
    assert [i for i, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"shipway-predict"}
    thread.shutdown()


def test_an_error_goes_to_its_caller_and_the_thread_lives_on() -> None:
    thread = PredictThread()

    def boom() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        thread.submit(boom).result(timeout=30)
    assert thread.submit(lambda: 7).result(timeout=30) == 7
    thread.shutdown()


def test_call_delivers_in_the_thread() -> None:
    thread = PredictThread()
    got: list[Any] = []
    done = threading.Event()

    def deliver(result: Any, error: BaseException | None) -> None:
        got.append((result, error, threading.current_thread().name))
        done.set()

    thread.call(sum, ([1, 2, 3],), deliver)
    assert done.wait(30)
    assert got == [(6, None, "shipway-predict")]
    thread.shutdown()


def test_shutdown_cancelling_drops_jobs_not_started() -> None:
    thread = PredictThread()
    started, release = threading.Event(), threading.Event()
    running = thread.submit(lambda: started.set() or release.wait(30))
    assert started.wait(30)
    waiting = thread.submit(lambda: 1)
    thread.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert running.result(timeout=30) is True
    with pytest.raises(CancelledError):
        waiting.result(timeout=30)
    with pytest.raises(RuntimeError, match="shut down"):
        thread.submit(lambda: 1)


def test_it_serves_run_in_executor() -> None:
    thread = PredictThread()

    async def main() -> int:
        return await asyncio.get_running_loop().run_in_executor(thread, pow, 2, 10)

    assert asyncio.run(main()) == 1024
    thread.shutdown()
