"""The prediction log's writer process, as the serving process sees it.

With `log.writer = "process"` (the default in `shipway serve`), a worker does not write its
log itself: every fraction of a second it takes what is buffered as it is held (flat lists,
store/log_buffer.py), marshals it (one C call) and sends it over a Unix socket to a writer
process of its own, `python -m shipway.store.log_writer`. That process runs the same
`PredictionLog` with its writer thread: decoding, redaction, encoding, the store, the
spool, held records and drop counts happen there, on whatever core the OS gives it, and
none of it holds the worker's GIL.

The hand-over keeps the log's guarantee (every record appended is written, spooled, held
or counted as dropped):

- A batch is kept, as the bytes sent, until the writer acknowledges it: it acknowledges
  after its writer thread has taken the batch through a cycle, with its counts.
- If the writer dies, the batches it had not acknowledged are spooled (redacted) by the
  serving process, and a new writer replays them, skipping what the dead one stored (if the
  disk fails they are sent to it again instead); what it held in memory is counted as dropped.
  A writer that dies within `_QUICK_S` of its start `_QUICK_DEATHS` times in a row, or that
  cannot load the redact hook, is not started again: the log falls back to its thread.
- `close()` shuts the socket for writing; the writer drains, closes its log (spooling what
  the store did not take) and exits. What it has not acknowledged when the timeout ends is
  given back, for the caller to spool.
- A worker killed with SIGKILL: the writer sees the end of the socket and writes what it
  was sent, so only what was buffered since the last hand-over is lost.
"""

from __future__ import annotations

import inspect
import logging
import marshal
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from shipway.store.log_buffer import Flat, flat_size
from shipway.store.log_counts import COUNTERS
from shipway.store.records import PredictionRecord

__all__ = ["HEADER", "WriterProcess", "hook_reference", "read_message", "record_of_row", "write_message"]

logger = logging.getLogger("shipway.store")

HEADER = struct.Struct("!Q")
_QUICK_S = 5.0
_QUICK_DEATHS = 3


def write_message(sock: socket.socket, message: Any) -> None:
    """Send one marshalled message, framed by its length."""
    payload = marshal.dumps(message)
    sock.sendall(HEADER.pack(len(payload)))
    sock.sendall(payload)


def read_message(reader: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream."""
    header = reader.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (n,) = HEADER.unpack(header)
    payload = reader.read(n)
    if len(payload) < n:
        return None
    return marshal.loads(payload)


def hook_reference(hook: Callable[..., Any] | None) -> tuple[str, str, str] | None:
    """How the writer process finds the redact hook: module, file and qualified name."""
    if hook is None:
        return None
    try:
        file = inspect.getfile(hook)
    except TypeError:
        file = ""
    return (getattr(hook, "__module__", "") or "", file, getattr(hook, "__qualname__", "") or "")


class WriterProcess:
    """One writer process at a time for one prediction log; thread-safe."""

    def __init__(self, spool: Callable[[list[Flat]], bool], config: dict[str, Any]) -> None:
        self.spool = spool  # spools batches a dead writer did not acknowledge; False if it cannot
        self.config = config
        self.failed = False  # no writer process any more: the log falls back to its thread
        self._send_lock = threading.Lock()  # sends, and the switch to a new process
        self._cond = threading.Condition()  # the state below
        self._unacked: deque[tuple[int, bytes, int]] = deque()  # (seq, message, entries)
        self._seq = 0
        self._base = dict.fromkeys(COUNTERS, 0)  # what the writers before this one counted
        self._child: dict[str, Any] = {}  # the current writer's last stats
        self._held_by_minute: list[tuple[tuple[int, str], int]] = []
        self._closing = False
        self._quick_deaths = 0
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._receiver: threading.Thread | None = None
        self._flushing = False  # a flush was asked: a new writer is asked again
        self.drops: Counter[tuple[int, str]] = Counter()  # held by dead writers, for the log to count

    # -- what the log calls -----------------------------------------------------

    def start(self) -> None:
        with self._send_lock:
            self._spawn()

    def send(self, flat: Flat, failures: list[PredictionRecord], drops: Counter[tuple[int, str]]) -> None:
        """Hand over a batch; never raises (a dead writer's batches go to the next one)."""
        n = flat_size(flat)
        if not n and not failures and not drops:
            return
        rows = [_record_row(r) for r in failures]
        with self._send_lock:
            self._seq += 1
            message = marshal.dumps(("batch", self._seq, flat, rows, list(drops.items())))
            with self._cond:
                self._unacked.append((self._seq, message, n))
            self._send(message)

    def flush(self) -> None:
        """Ask the writer to write what it was sent now, not at its next flush interval."""
        with self._send_lock:
            self._flushing = True
            self._send(marshal.dumps(("flush",)))

    def wait(self, timeout: float) -> bool:
        """True once every batch sent is acknowledged and the writer holds nothing."""
        with self._cond:
            return (
                self._cond.wait_for(lambda: self.failed or (not self._unacked and not self._child.get("held")), timeout)
                and not self.failed
            )

    def close(self, timeout: float) -> list[Flat]:
        """Let the writer drain and exit; the batches it did not acknowledge in `timeout`."""
        with self._send_lock:
            self._closing = True
            sock, proc = self._sock, self._proc
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            receiver = self._receiver
        if receiver is not None:
            receiver.join(timeout)  # it ends once the writer has sent its last counts and exited
            if receiver.is_alive() and proc is not None:
                logger.warning("the prediction log's writer process %d did not finish within %s s", proc.pid, timeout)
        return self.take_unacked()

    def take_unacked(self) -> list[Flat]:
        """The batches not acknowledged, oldest first, no longer kept here."""
        with self._cond:
            unacked, self._unacked = self._unacked, deque()
        return [marshal.loads(message)[2] for _, message, _ in unacked]

    @property
    def counts(self) -> dict[str, int]:
        with self._cond:
            return {name: self._base[name] + int(self._child.get(name, 0)) for name in COUNTERS}

    @property
    def pending(self) -> int:
        with self._cond:
            return sum(n for _, _, n in self._unacked) + int(self._child.get("held", 0))

    @property
    def held(self) -> int:
        with self._cond:
            return int(self._child.get("held", 0))

    @property
    def store_up(self) -> bool:
        with self._cond:
            return bool(self._child.get("store_up", False))

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    # -- the writer's life --------------------------------------------------------

    def _spawn(self) -> None:
        """Start a writer and send it the config and every batch not acknowledged (send lock held)."""
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "shipway.store.log_writer", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_same_shipway(),
            )
        except OSError:
            ours.close()
            logger.exception("cannot start the prediction log's writer process; the log falls back to its thread")
            self._give_up()
            return
        finally:
            theirs.close()
        self._sock, self._proc, self._started = ours, proc, time.monotonic()
        self._receiver = threading.Thread(target=self._receive, args=(ours, proc), name="shipway-log-acks", daemon=True)
        self._receiver.start()
        self._send(marshal.dumps(("config", self.config)))
        with self._cond:
            backlog = [message for _, message, _ in self._unacked]
        for message in backlog:
            self._send(message)
        if self._flushing:
            self._send(marshal.dumps(("flush",)))

    def _send(self, message: bytes) -> None:
        sock = self._sock
        if sock is None:
            return  # between writers, or fallen back: the batch stays unacknowledged
        try:
            sock.sendall(HEADER.pack(len(message)))
            sock.sendall(message)  # releases the GIL while the socket is full
        except OSError:
            pass  # the writer died: _receive sees it and sends the batch again to the next one

    def _receive(self, sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        reader = sock.makefile("rb")
        try:
            while (message := read_message(reader)) is not None:
                kind = message[0]
                if kind == "ack":
                    self._acked(*message[1:])
                elif kind == "fatal":
                    logger.error(
                        "the prediction log's writer process cannot run: %s; the log falls back to its thread",
                        message[1],
                    )
                    with self._send_lock:
                        self._give_up()
        except (OSError, ValueError, EOFError):
            pass
        finally:
            reader.close()
        code = proc.wait()
        self._ended(sock, proc, code)

    def _acked(self, seq: int, stats: dict[str, Any], held_by_minute: list[tuple[tuple[int, str], int]]) -> None:
        with self._cond:
            while self._unacked and self._unacked[0][0] <= seq:
                self._unacked.popleft()
            self._child = stats
            self._held_by_minute = held_by_minute
            self._flushing = bool(self._unacked)
            self._quick_deaths = 0 if time.monotonic() - self._started > _QUICK_S else self._quick_deaths
            self._cond.notify_all()

    def _ended(self, sock: socket.socket, proc: subprocess.Popen[bytes], code: int) -> None:
        with self._send_lock:
            if self._proc is not proc:
                return  # already replaced
            sock.close()
            self._sock = None
            with self._cond:
                for name in COUNTERS:
                    self._base[name] += int(self._child.get(name, 0))
                lost = self._child.get("held", 0)
                self.drops.update(dict(self._held_by_minute))  # what it held in memory went with it
                self._child = {"store_up": self._child.get("store_up", False)}  # its counts are in _base now
                self._held_by_minute = []
                self._cond.notify_all()
            if self._closing or self.failed:
                return
            # What it did not acknowledge it may have stored in part: spooled here, the next writer
            # replays it, which skips what is stored. If the disk fails, it is sent again instead.
            orphans = self.take_unacked()
            if orphans and not self.spool(orphans):
                with self._cond:
                    self._unacked.extend(
                        (0, marshal.dumps(("batch", 0, flat, [], [])), flat_size(flat)) for flat in orphans
                    )
            quick = time.monotonic() - self._started < _QUICK_S
            self._quick_deaths = self._quick_deaths + 1 if quick else 0
            logger.error(
                "the prediction log's writer process %d ended (exit code %s) holding %d records, counted as "
                "dropped; %s",
                proc.pid,
                code,
                lost,
                "the log falls back to its thread" if self._quick_deaths >= _QUICK_DEATHS else "starting another",
            )
            if self._quick_deaths >= _QUICK_DEATHS:
                self._give_up()
            else:
                self._spawn()

    def _give_up(self) -> None:
        """No more writer processes (send lock held): the log takes back what is not acknowledged."""
        self.failed = True
        proc, sock = self._proc, self._sock
        self._sock = None
        if sock is not None:
            sock.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
        with self._cond:
            self._cond.notify_all()


def _same_shipway() -> dict[str, str]:
    """The environment, with this process's shipway first on the path: the writer must run the
    same code, whichever way this process found it."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([here, path]) if path else here}


def _record_row(r: PredictionRecord) -> tuple[Any, ...]:
    return (r.request_id, r.ts, r.service, r.model_version, r.latency_ms, r.inputs, r.outputs, r.rules_version,
            r.dataset_version, r.run_id, r.status, r.decision, r.shadow, r.mode)  # fmt: skip


def record_of_row(row: tuple[Any, ...]) -> PredictionRecord:
    """A failed request as `WriterProcess.send` carried it."""
    return PredictionRecord(*row)
