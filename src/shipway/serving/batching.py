"""Adaptive micro-batching: requests that arrive together run as one batch.

One batch runs at a time, in one executor thread per worker (so models need
not be thread-safe). While it runs, new requests queue; the next batch takes
what is queued, up to `max_batch_size`. An item waits for its batch to fill
at most `max_wait_s` after it arrived, so under load nothing waits on purpose
and at low load latency grows by at most that. A request that would wait
longer than `max_queue_wait_s` is refused at once with `Overloaded`.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any

from shipway.errors import Overloaded, ShipwayError

__all__ = ["Batcher"]

RunItems = Callable[[list[Any]], list[Any]]
OnBatch = Callable[[int, list[float], float], None]


class Batcher:
    """Queue items, run them in batches through `run`, resolve each item's future."""

    def __init__(
        self,
        run: RunItems,
        *,
        max_batch_size: int = 64,
        max_wait_s: float = 0.002,
        max_queue_wait_s: float = 1.0,
        max_queue: int = 10_000,
        on_batch: OnBatch | None = None,
    ) -> None:
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue_wait_s = max_queue_wait_s
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.batch_seconds = 0.0  # moving average of one batch's run time
        self._queue: deque[tuple[Any, asyncio.Future[Any], float]] = deque()
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.executor: ThreadPoolExecutor | None = None
        self._running = 0
        self.running_since: float | None = None  # perf_counter() when the current batch started

    async def start(self) -> None:
        self._wake, self._full = asyncio.Event(), asyncio.Event()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="shipway-predict")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, item: Any) -> asyncio.Future[Any]:
        """Queue one item; the future resolves to its output, or raises its error."""
        queued = len(self._queue)
        if queued >= self.max_queue:
            raise Overloaded(
                f"{queued} items are queued, the most this worker holds (batching.max_queue); "
                f"retry shortly or add workers.",
                retry_after_s=1,
            )
        if self.batch_seconds:
            expected = (queued // self.max_batch_size + 1) * self.batch_seconds
            if expected > self.max_queue_wait_s:
                raise Overloaded(
                    f"the expected queue wait is {expected * 1000:.0f} ms, over the "
                    f"{self.max_queue_wait_s * 1000:.0f} ms limit (batching.max_queue_wait_ms) "
                    f"with {queued} items queued; retry later or add workers.",
                    retry_after_s=max(1, math.ceil(expected)),
                )
        assert self._wake is not None and self._full is not None, "start() first"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future, perf_counter()))
        if queued == 0:
            self._wake.set()
        if queued + 1 >= self.max_batch_size:
            self._full.set()
        return future

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued item has been run; False if `timeout` ran out first."""
        deadline = None if timeout is None else perf_counter() + timeout
        while self._queue or self._running:
            if deadline is not None and perf_counter() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def stop(self, timeout: float | None = None) -> None:
        """Run what is queued (for at most `timeout`), then stop the loop and the thread."""
        drained = await self.drain(timeout)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.executor is not None:
            # A predict that never returns must not hold the process: don't join it.
            self.executor.shutdown(wait=drained, cancel_futures=True)

    async def _loop(self) -> None:
        assert self._wake is not None and self._full is not None and self.executor is not None
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            remaining = queue[0][2] + self.max_wait_s - perf_counter()
            if remaining > 0 and len(queue) < self.max_batch_size:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), remaining)
                except TimeoutError:
                    pass
            size = min(len(queue), self.max_batch_size)
            batch = [queue.popleft() for _ in range(size)]
            self._full.clear()
            started = perf_counter()
            # Items whose caller gave up (timeout, disconnect) are not run.
            live = [b for b in batch if not b[1].done()]
            if not live:
                continue
            self._running = len(live)
            self.running_since = started
            try:
                results = await loop.run_in_executor(self.executor, self.run, [b[0] for b in live])
            except BaseException as err:  # run() should not raise; never strand a caller
                results = [err] * len(live)
            finally:
                self._running = 0
                self.running_since = None
            elapsed = perf_counter() - started
            self.batch_seconds = elapsed if not self.batch_seconds else 0.8 * self.batch_seconds + 0.2 * elapsed
            for (_, future, _), result in zip(live, results, strict=False):
                if future.done():
                    continue
                if isinstance(result, (ShipwayError, BaseException)):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if self.on_batch is not None:
                self.on_batch(len(live), [started - b[2] for b in live], elapsed)
