"""Adaptive micro-batching: requests that arrive together run as one batch.

One batch runs at a time, in the worker's one predict thread (so models need not be
thread-safe). While it runs, new requests queue; the next batch takes what is queued, up
to `max_batch_size`. When the model is idle, the batcher runs what is queued at once,
unless it expects company: it expects as many items as it held when the last batch ended
(that batch's and those queued during it), since under load those callers send again.
Then it waits until that many are queued, or the batch is full, or the oldest item has
waited `max_wait_s` since it arrived. A lone caller never waits; a crowd is gathered
into one batch, which costs the model less than several. A request that would wait longer
than `max_queue_wait_s` is refused at once with `Overloaded`.

A batch never mixes model versions: each item names the function that runs it (the live
version's, or a canary candidate's; `run` when it names none), and a batch takes the oldest
item's function and the queued items with the same one, leaving the others queued in order.

With `inline`, a lone item skips the predict thread: when nothing else is queued or
running, it runs on the event loop's thread. The hand-over there and back costs two thread
wake-ups, which on a loaded machine each wait for a CPU (docs/benchmarks.md); the price is
that while it runs the loop answers nothing, so its timeout cannot fire (a hang is ended by
the worker timeout). Requests that arrive meanwhile are read together afterwards, and
go to the predict thread as a batch.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any

from shipway.errors import Overloaded, ShipwayError
from shipway.serving.predict_thread import PredictThread

__all__ = ["Batcher"]

RunItems = Callable[[list[Any]], list[Any]]
OnBatch = Callable[[int, list[float], float], None]
# The item, its caller's future, perf_counter() at arrival, and the function that runs it.
_Item = tuple[Any, "asyncio.Future[Any]", float, RunItems | None]


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
        inline: bool = False,
        on_batch: OnBatch | None = None,
    ) -> None:
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue_wait_s = max_queue_wait_s
        self.max_queue = max_queue
        self.inline = inline
        self.on_batch = on_batch
        self.batch_seconds = 0.0  # moving average of one batch's run time
        self.executor: PredictThread | None = None
        self.running_since: float | None = None  # perf_counter() when the current batch started
        self._queue: deque[_Item] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = 0  # items in the batch being run
        self._company = 1  # items expected in the next batch (see the module docstring)
        self._considering = False  # a look at the queue is scheduled for this loop pass
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.executor = PredictThread()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, item: Any, run: RunItems | None = None) -> asyncio.Future[Any]:
        """Queue one item, to be run by `run` (default: `self.run` when its batch starts); the
        future resolves to its output, or raises its error."""
        queued = len(self._queue)
        if queued >= self.max_queue:
            raise Overloaded(
                f"{queued} items are queued, the most this worker holds (batching.max_queue); "
                f"retry shortly or add workers.",
                retry_after_s=1,
            )
        # An idle worker runs the item at once, however long its batches take: refusing it would
        # refuse every request to a model slower than the limit, for ever (nothing would run to
        # bring batch_seconds down).
        if self.batch_seconds and (queued or self._running):
            expected = (queued // self.max_batch_size + 1) * self.batch_seconds
            if expected > self.max_queue_wait_s:
                raise Overloaded(
                    f"the expected queue wait is {expected * 1000:.0f} ms, over the "
                    f"{self.max_queue_wait_s * 1000:.0f} ms limit (batching.max_queue_wait_ms) "
                    f"with {queued} items queued; retry later or add workers.",
                    retry_after_s=max(1, math.ceil(expected)),
                )
        loop = self._loop
        assert loop is not None, "start() first"
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((item, future, perf_counter(), run))
        if not self._running and not self._considering:
            # At the end of this loop pass, not now: the other items of a /predict/batch, and
            # requests read in the same pass, join the batch.
            self._considering = True
            loop.call_soon(self._consider)
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
        """Run what is queued (for at most `timeout`), then stop the thread."""
        drained = await self.drain(timeout)
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        if self.executor is not None:
            # A predict that never returns must not hold the process: don't join it.
            self.executor.shutdown(wait=drained, cancel_futures=True)

    def _consider(self) -> None:
        """The model is idle: run a batch now, or wait for the company expected."""
        self._considering = False
        queue = self._queue
        if self._running or not queue or self._stopped:
            return
        if self.inline and len(queue) == 1 and self._company <= 1 and self._run_inline():
            return
        if len(queue) < min(self._company, self.max_batch_size):
            remaining = queue[0][2] + self.max_wait_s - perf_counter()
            if remaining > 0:
                if self._timer is None:
                    assert self._loop is not None
                    self._timer = self._loop.call_later(remaining, self._time_up)
                return
        self._dispatch()

    def _run_inline(self) -> bool:
        """Run the one queued item here, on the loop's thread; False if the predict thread is
        busy (a trace, /explain, a gate), since the model need not be thread-safe."""
        assert self.executor is not None
        lock = self.executor.lock
        if not lock.acquire(blocking=False):
            return False
        item = self._queue.popleft()
        results: Any = None
        error: BaseException | None = None
        self._running = 1
        started = self.running_since = perf_counter()
        try:
            if not item[1].done():
                results = (item[3] or self.run)([item[0]])  # the item's version: a canary's runs its own
        except BaseException as exc:  # delivered to the caller, as from the thread
            error = exc
        finally:
            lock.release()
        if results is None and error is None:  # its caller gave up before it ran
            self._running = 0
            self.running_since = None
            return True
        self._finish([item], started, results, error)
        return True

    def _time_up(self) -> None:
        self._timer = None
        if not self._running:
            self._dispatch()

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queue = self._queue
        while queue:
            batch = self._take(queue)
            # Items whose caller gave up (timeout, disconnect) are not run.
            live = [b for b in batch if not b[1].done()]
            if live:
                break
        else:
            return
        assert self.executor is not None and self._loop is not None
        loop = self._loop
        run = live[0][3] or self.run
        self._running = len(live)
        started = self.running_since = perf_counter()

        def done(results: Any, error: BaseException | None) -> None:  # in the predict thread
            loop.call_soon_threadsafe(self._finish, live, started, results, error)

        self.executor.call(run, ([b[0] for b in live],), done)

    def _take(self, queue: deque[_Item]) -> list[_Item]:
        """The next batch: up to max_batch_size items run by the oldest item's function."""
        size = min(len(queue), self.max_batch_size)
        which = queue[0][3]
        batch = [queue.popleft() for _ in range(size)]
        if all(b[3] is which for b in batch):
            return batch
        kept = [b for b in batch if b[3] is which]
        others = [b for b in batch if b[3] is not which]
        while queue and len(kept) < self.max_batch_size:  # fill up from behind, in order
            nxt = queue.popleft()
            (kept if nxt[3] is which else others).append(nxt)
        queue.extendleft(reversed(others))
        return kept

    def _finish(self, live: list[_Item], started: float, results: Any, error: BaseException | None) -> None:
        elapsed = perf_counter() - started
        self._running = 0
        self.running_since = None
        self.batch_seconds = elapsed if not self.batch_seconds else 0.8 * self.batch_seconds + 0.2 * elapsed
        # The callers of this batch are likely to send again, like those who queued during it.
        self._company = len(live) + len(self._queue)
        if error is not None:  # run() should not raise; never strand a caller
            results = [error] * len(live)
        for (_, future, _, _), result in zip(live, results, strict=False):
            if future.done():
                continue
            if isinstance(result, (ShipwayError, BaseException)):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self.on_batch is not None:
            self.on_batch(len(live), [started - b[2] for b in live], elapsed)
        self._consider()
