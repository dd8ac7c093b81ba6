"""The micro-batcher, in-process: batch sizes, waits, overload, isolation."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from shipway.errors import Overloaded, PredictError
from shipway.serving.batching import Batcher


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_items_that_arrive_together_run_as_one_batch() -> None:
    sizes: list[int] = []

    def double(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [i * 2 for i in items]

    async def main() -> list[int]:
        batcher = Batcher(double, max_batch_size=8, max_wait_s=0.05)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
        await batcher.stop()
        return list(results)

    assert run(main()) == [i * 2 for i in range(20)]
    assert sizes == [8, 8, 4]


def test_a_lone_request_is_not_held_for_company() -> None:
    """At one connection nobody else is coming: the item runs without waiting out max_wait."""

    async def main() -> list[int]:
        batcher = Batcher(lambda items: items, max_batch_size=8, max_wait_s=3600.0)
        await batcher.start()
        # Each caller waits for its answer before sending again, as one connection does.
        answers = [await asyncio.wait_for(batcher.submit(i), timeout=60) for i in range(3)]
        await batcher.stop()
        return answers

    assert run(main()) == [0, 1, 2]


def test_callers_of_a_shared_batch_are_waited_for() -> None:
    """After a batch of two, the next lone item waits (within max_wait) for the other caller."""
    sizes: list[int] = []

    def record(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    async def main() -> None:
        batcher = Batcher(record, max_batch_size=8, max_wait_s=3600.0)
        await batcher.start()
        assert await asyncio.gather(batcher.submit(1), batcher.submit(2)) == [1, 2]
        first = batcher.submit(3)
        for _ in range(20):  # loop passes in which the first item could have been dispatched
            await asyncio.sleep(0)
        assert not first.done() and batcher.queued == 1
        assert await asyncio.gather(first, batcher.submit(4)) == [3, 4]
        await batcher.stop()

    run(main())
    assert sizes == [2, 2]


def test_items_that_arrive_while_a_batch_runs_form_the_next_batch() -> None:
    """Even with no wait at all (max_wait 0), a busy model gathers the next batch."""
    sizes: list[int] = []
    running, release = threading.Event(), threading.Event()

    def blocking(items: list[int]) -> list[int]:
        sizes.append(len(items))
        running.set()
        release.wait(30)
        return items

    async def main() -> list[int]:
        batcher = Batcher(blocking, max_batch_size=8, max_wait_s=0)
        await batcher.start()
        first = batcher.submit(0)
        await asyncio.to_thread(running.wait, 30)
        rest = [batcher.submit(i) for i in range(1, 4)]
        release.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return list(results)

    assert run(main()) == [0, 1, 2, 3]
    assert sizes == [1, 3]


def test_the_wait_for_company_ends_at_max_wait() -> None:
    """Company that never comes holds an item for max_wait at most: the item is answered."""

    async def main() -> list[int]:
        batcher = Batcher(lambda items: items, max_batch_size=8, max_wait_s=0.01)
        await batcher.start()
        await asyncio.gather(*(batcher.submit(i) for i in range(4)))  # company of four expected
        answer = await asyncio.wait_for(batcher.submit(9), timeout=60)
        await batcher.stop()
        return [answer]

    assert run(main()) == [9]


def test_overload_by_expected_wait() -> None:
    release = threading.Event()

    def slow(items: list[int]) -> list[int]:
        release.wait(5)
        return items

    async def main() -> Overloaded:
        batcher = Batcher(slow, max_batch_size=1, max_wait_s=0, max_queue_wait_s=0.5)
        batcher.batch_seconds = 0.2  # as measured on earlier batches
        await batcher.start()
        futures = [batcher.submit(0), batcher.submit(1)]  # expected waits 0.2 s and 0.4 s
        with pytest.raises(Overloaded) as info:
            for i in range(2, 10):
                futures.append(batcher.submit(i))
        release.set()
        await asyncio.gather(*futures)
        await batcher.stop()
        return info.value

    error = run(main())
    assert "batching.max_queue_wait_ms" in str(error) and error.retry_after_s >= 1


def test_an_idle_worker_runs_a_request_whose_batch_takes_longer_than_the_limit() -> None:
    async def main() -> list[int]:
        batcher = Batcher(lambda items: items, max_batch_size=1, max_wait_s=0, max_queue_wait_s=0.5)
        batcher.batch_seconds = 2.0  # a model slower than the limit, as measured on earlier batches
        await batcher.start()
        answers = [await asyncio.wait_for(batcher.submit(i), timeout=60) for i in range(3)]
        await batcher.stop()
        return answers

    assert run(main()) == [0, 1, 2]


def test_hard_queue_cap() -> None:
    async def main() -> None:
        batcher = Batcher(lambda items: items, max_queue=3)
        await batcher.start()
        futures = [batcher.submit(i) for i in range(3)]
        with pytest.raises(Overloaded, match=r"batching\.max_queue"):
            batcher.submit(3)
        await asyncio.gather(*futures)
        await batcher.stop()

    run(main())


def test_items_whose_caller_gave_up_are_not_run() -> None:
    seen: list[int] = []

    def record(items: list[int]) -> list[int]:
        seen.extend(items)
        return items

    async def main() -> None:
        batcher = Batcher(record, max_wait_s=0.05)
        await batcher.start()
        keep, drop = batcher.submit(1), batcher.submit(2)
        drop.cancel()
        assert await keep == 1
        await batcher.stop()

    run(main())
    assert seen == [1]


def test_errors_are_delivered_to_their_own_item() -> None:
    def mixed(items: list[int]) -> list[Any]:
        return [PredictError("predict", ValueError(i)) if i == 2 else i for i in items]

    async def main() -> list[Any]:
        batcher = Batcher(mixed, max_wait_s=0.05)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
        await batcher.stop()
        return list(results)

    results = run(main())
    assert results[0] == 0 and results[1] == 1 and results[3] == 3
    assert isinstance(results[2], PredictError)


def test_stop_drains_the_queue() -> None:
    async def main() -> list[int]:
        batcher = Batcher(lambda items: items, max_batch_size=2, max_wait_s=0)
        await batcher.start()
        futures = [batcher.submit(i) for i in range(7)]
        await batcher.stop()
        assert all(f.done() for f in futures)
        return [f.result() for f in futures]

    assert run(main()) == list(range(7))


def test_inline_runs_a_lone_item_on_the_loop_thread_and_a_crowd_on_the_predict_thread() -> None:
    threads: list[tuple[int, int]] = []  # (batch size, thread that ran it)

    def record(items: list[int]) -> list[int]:
        threads.append((len(items), threading.get_ident()))
        return [i + 1 for i in items]

    async def main() -> tuple[int, int | None]:
        batcher = Batcher(record, max_batch_size=8, max_wait_s=0.0, inline=True)
        await batcher.start()
        lone = [await batcher.submit(i) for i in range(3)]  # one connection: one at a time
        crowd = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
        assert lone == [1, 2, 3] and list(crowd) == [1, 2, 3, 4, 5]
        assert batcher.executor is not None
        predict_thread = batcher.executor.submit(threading.get_ident).result()
        await batcher.stop()
        return threading.get_ident(), predict_thread

    loop_thread, predict_thread = run(main())
    assert threads[:3] == [(1, loop_thread)] * 3
    assert threads[3:] == [(5, predict_thread)]


def test_inline_waits_its_turn_while_the_predict_thread_runs_another_call() -> None:
    """The model need not be thread-safe: while the predict thread runs a trace or a gate, a
    lone item goes to that thread, behind it, instead of running beside it on the loop."""
    running: list[str] = []
    overlaps: list[list[str]] = []
    release = threading.Event()

    def call(name: str) -> str:
        running.append(name)
        if len(running) > 1:
            overlaps.append(list(running))
        if name == "trace":
            release.wait(60)
        running.remove(name)
        return name

    async def main() -> str:
        batcher = Batcher(lambda items: [call(f"item {i}") for i in items], inline=True)
        await batcher.start()
        assert batcher.executor is not None
        trace = asyncio.wrap_future(batcher.executor.submit(call, "trace"))
        deadline = asyncio.get_running_loop().time() + 60
        while "trace" not in running and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        item = batcher.submit(1)
        await asyncio.sleep(0)  # the batcher looks at its queue: the thread is busy
        await asyncio.sleep(0)
        assert not item.done()
        release.set()
        answer = await asyncio.wait_for(item, timeout=60)
        await trace
        await batcher.stop()
        return str(answer)

    assert run(main()) == "item 1"
    assert overlaps == []
