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


def test_an_item_waits_for_company_within_max_wait() -> None:
    sizes: list[int] = []

    def record(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    async def main() -> None:
        batcher = Batcher(record, max_batch_size=2, max_wait_s=5.0)
        await batcher.start()
        first = batcher.submit(1)
        await asyncio.sleep(0.05)  # the first item is still waiting for its batch to fill
        second = batcher.submit(2)
        assert await asyncio.gather(first, second) == [1, 2]
        await batcher.stop()

    run(main())
    assert sizes == [2]


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
