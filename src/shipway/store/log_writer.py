"""The prediction log's writer process: `python -m shipway.store.log_writer FD`.

Started by a serving process's `PredictionLog` (store/log_process.py) with one end of a Unix
socket as FD. It reads the log's settings, then batches of entries, and puts them in a
`PredictionLog` of its own, whose writer thread does what it does in a worker: decode,
redact, write to the store, spool, hold, count. Every flush interval, and at once when asked
(the serving process's `flush()`), it has that thread take what arrived through a cycle, then
sends back what the batches came to (its counts, what it holds). At the end of the socket (the
worker closed its log, or died) it closes its log, which writes or spools what it has, sends
its last counts and exits. SIGINT and SIGTERM are ignored: the worker decides when it ends.
"""

from __future__ import annotations

import importlib
import logging
import marshal
import os
import select
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from shipway.store.log_buffer import Flat
from shipway.store.log_process import HEADER, record_of_row, write_message
from shipway.store.prediction_log import PredictionLog
from shipway.store.redaction import Redact

__all__ = ["main"]

logger = logging.getLogger("shipway.store")

# How long one cycle may take before the writer reads more batches (a store call hanging).
_CYCLE_WAIT_S = 10.0
# The log here runs a cycle when this loop asks, not on a timer of its own.
_OWN_TIMER_S = 3600.0
_READ_EVERY_S = 0.05
_CHUNK = 1 << 20


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s shipway.log_writer[%(process)d] %(message)s"
    )
    sock = socket.socket(fileno=int(argv[1]))
    inbox = Inbox(sock)
    arrived = inbox.read(None)
    if not arrived or arrived[0][0] != "config":
        return 1
    config: dict[str, Any] = arrived.pop(0)[1]
    try:
        redact = _hook(config["redact"])
    except Exception as exc:
        write_message(sock, ("fatal", f"cannot load the redact hook {config['redact']!r}: {exc!r}"))
        return 2
    log = PredictionLog(
        config["store_url"],
        base_dir=None if config["base_dir"] is None else Path(config["base_dir"]),
        flush_interval_s=_OWN_TIMER_S,  # the loop below sets the pace: one cycle an interval
        spool_dir=Path(config["spool_dir"]),
        redact=redact,
        max_buffer=config["max_buffer"],
        retry_interval_s=config["retry_interval_s"],
        writer="thread",
        paced=False,  # no GIL or core shared with the request path here
    )
    log.start()
    seq = 0
    ended = False
    interval = config["flush_interval_s"]
    due = time.monotonic() + interval
    while not ended:
        # Batches arrive every 0.25 s; they are written every flush interval, as
        # the writer thread would, or at once when the serving process flushes.
        now = ready = False
        arrived += inbox.read(0.0 if arrived else max(0.0, due - time.monotonic()))
        for message in arrived:
            if message[0] == "flush":
                now = True
            elif message[0] == "batch":
                _, number, flat, failures, drops = message
                seq = max(seq, number)  # batches sent again after a writer died carry 0
                _put(log, flat, failures, drops)
        arrived = []
        ended = inbox.ended
        if now or ended or time.monotonic() >= due:
            due = time.monotonic() + interval
            ready = log.cycle(_CYCLE_WAIT_S)
        if ready:
            _report(sock, log, seq)
        elif not ended:
            # The parts of a hand-over come a few ms apart; each wake-up costs CPU, and the
            # socket keeps what comes meanwhile.
            time.sleep(min(_READ_EVERY_S, max(0.0, due - time.monotonic())))
    log.close(config["close_timeout_s"])
    _report(sock, log, seq)
    sock.close()
    return 0


def _put(log: PredictionLog, flat: Flat, failures: list[tuple[Any, ...]], drops: list[Any]) -> None:
    dropped = Counter({(int(minute), str(service)): n for (minute, service), n in drops})
    log.put(flat, [record_of_row(row) for row in failures], dropped)


def _report(sock: socket.socket, log: PredictionLog, seq: int) -> None:
    stats = log.stats
    by_minute = list(log.held_by_minute().items()) if stats["held"] else []
    try:
        write_message(sock, ("ack", seq, stats, by_minute))
    except OSError:
        pass  # the worker is gone; what it sent is written all the same


class Inbox:
    """Messages from the serving process, read in the loop's own thread (no reader thread to
    wake for each batch)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ended = False  # the serving process closed its end, or died
        self._data = bytearray()

    def read(self, wait_s: float | None) -> list[Any]:
        """The whole messages that arrived, waiting up to `wait_s` (None: until some) for any."""
        while not self.ended:
            if select.select([self.sock], [], [], wait_s)[0]:
                self._receive()
            messages = self._messages()
            if messages or wait_s is not None:
                return messages
        return self._messages()

    def _receive(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                logger.exception("reading from the serving process failed; writing what arrived")
                chunk = b""
            if not chunk:
                self.ended = True
                return
            self._data += chunk

    def _messages(self) -> list[Any]:
        messages, data, at = [], self._data, 0
        while len(data) - at >= HEADER.size:
            (n,) = HEADER.unpack_from(data, at)
            if len(data) - at - HEADER.size < n:
                break
            messages.append(marshal.loads(memoryview(data)[at + HEADER.size : at + HEADER.size + n]))
            at += HEADER.size + n
        del data[:at]
        return messages


def _hook(reference: tuple[str, str, str] | None) -> Redact | None:
    """The redact hook the serving process named: its module imported by name, else from its file."""
    if reference is None:
        return None
    module_name, file, qualname = reference
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        if not file or not Path(file).is_file():
            raise
        from shipway.core.service import import_file  # pydantic and the rest: only for a service's hook

        module = import_file(Path(file))  # as the serving process did, under the same module name
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)  # a lambda or a nested function has no such path: AttributeError
    return target  # type: ignore[no-any-return]


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)  # not waiting for a writer thread stuck in a store call: close() spooled what it had
