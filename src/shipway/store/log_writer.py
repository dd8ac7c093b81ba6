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
import importlib.util
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from shipway.store.log_buffer import Flat
from shipway.store.log_process import read_message, record_of_row, write_message
from shipway.store.prediction_log import PredictionLog
from shipway.store.redaction import Redact

__all__ = ["main"]

logger = logging.getLogger("shipway.store")

# How long one cycle may take before the writer reads more batches (a store call hanging).
_CYCLE_WAIT_S = 10.0


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s shipway.log_writer[%(process)d] %(message)s"
    )
    sock = socket.socket(fileno=int(argv[1]))
    reader = sock.makefile("rb")
    first = read_message(reader)
    if first is None or first[0] != "config":
        return 1
    config: dict[str, Any] = first[1]
    try:
        redact = _hook(config["redact"])
    except Exception as exc:
        write_message(sock, ("fatal", f"cannot load the redact hook {config['redact']!r}: {exc!r}"))
        return 2
    log = PredictionLog(
        config["store_url"],
        base_dir=None if config["base_dir"] is None else Path(config["base_dir"]),
        flush_interval_s=config["flush_interval_s"],
        spool_dir=Path(config["spool_dir"]),
        redact=redact,
        max_buffer=config["max_buffer"],
        retry_interval_s=config["retry_interval_s"],
        writer="thread",
        paced=False,  # no GIL or core shared with the request path here
    )
    log.start()
    inbox: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=_read_all, args=(reader, inbox), daemon=True).start()
    seq = 0
    ended = False
    interval = config["flush_interval_s"]
    due = time.monotonic() + interval
    while not ended:
        # Batches arrive every fraction of a second; they are written every flush interval, as
        # the writer thread would, or at once when the serving process flushes.
        now = ready = False
        for message in _next(inbox, max(0.0, due - time.monotonic())):
            if message is None:
                ended = True
            elif message[0] == "flush":
                now = True
            elif message[0] == "batch":
                _, number, flat, failures, drops = message
                seq = max(seq, number)  # batches sent again after a writer died carry 0
                _put(log, flat, failures, drops)
        if now or time.monotonic() >= due:
            due = time.monotonic() + interval
            ready = log.cycle(_CYCLE_WAIT_S)
        if ready:
            _report(sock, log, seq)
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


def _next(inbox: queue.Queue[Any], wait_s: float) -> list[Any]:
    """What arrived, waiting up to `wait_s` for the first message."""
    try:
        messages = [inbox.get(timeout=wait_s)]
    except queue.Empty:
        return []
    while True:
        try:
            messages.append(inbox.get_nowait())
        except queue.Empty:
            return messages


def _read_all(reader: Any, inbox: queue.Queue[Any]) -> None:
    try:
        while (message := read_message(reader)) is not None:
            inbox.put(message)
    except (OSError, ValueError, EOFError):
        logger.exception("reading from the serving process failed; writing what arrived")
    inbox.put(None)


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
        sys.path.insert(0, str(Path(file).parent))  # as the serving process did: its neighbours import
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)  # a lambda or a nested function has no such path: AttributeError
    return target  # type: ignore[no-any-return]


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)  # not waiting for a writer thread stuck in a store call: close() spooled what it had
