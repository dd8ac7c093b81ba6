"""The worker's one predict thread: batches, and every other call on the model (a trace,
`/explain`, the validation gate), one at a time, so that models need not be thread-safe.

It is a `concurrent.futures.Executor` for those other calls. Batches take a shorter way
(`call`): a tuple on a `SimpleQueue` and a callback, with no Future and no lock of
Python's own. On one core, `loop.run_in_executor` on a one-thread `ThreadPoolExecutor`
takes about three times as long per hand-over and back (48 against 16 us, and 85
against 30 us on a busier minute: docs/benchmarks.md, issue 15); at one connection that
is a few percent of a request. The thread is a daemon: a predict that never returns must
not keep the process from exiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from queue import SimpleQueue
from typing import Any

__all__ = ["PredictThread"]

logger = logging.getLogger("shipway.serving")

# A job: the function, its one argument, and what to call in the thread with (result, error).
Done = Callable[[Any, BaseException | None], None]
_Job = tuple[Callable[..., Any], tuple[Any, ...], Done]


class PredictThread(Executor):
    """One daemon thread running jobs in the order they were given."""

    def __init__(self, name: str = "shipway-predict") -> None:
        self._jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self._closed = False
        # Held while a job runs: whoever else calls the model (the batcher's inline run) takes it too.
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], done: Done) -> None:
        """Run `fn(*args)` in the thread, then `done(result, None)` or `done(None, error)` there."""
        self._jobs.put((fn, args, done))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("the predict thread is shut down")
        future: Future[Any] = Future()

        def run() -> Any:
            return fn(*args, **kwargs) if future.set_running_or_notify_cancel() else None

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done() or (isinstance(error, CancelledError) and future.cancel()):
                return
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

        self.call(run, (), settle)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop after the jobs given so far (or, with `cancel_futures`, after the one running)."""
        if self._closed:
            return
        self._closed = True
        if cancel_futures:
            while not self._jobs.empty():
                job = self._jobs.get_nowait()
                if job is not None:
                    job[2](None, CancelledError())
        self._jobs.put(None)
        if wait:
            self._thread.join()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            fn, args, done = job
            result, error = None, None
            try:
                with self.lock:
                    result = fn(*args)
            except BaseException as exc:  # delivered to the caller; the thread lives on
                error = exc
            try:
                done(result, error)
            except Exception:
                logger.exception("the predict thread could not deliver a result")
            del job, fn, args, done, result, error  # free the batch before waiting for the next
