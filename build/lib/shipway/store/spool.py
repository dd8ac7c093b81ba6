"""Prediction records the store could not take, kept on local disk until it can.

A spool folder holds JSON-lines files, one per process at a time, named
`predictions-<ns since epoch>-<pid>.jsonl` so that names sort oldest first. The
owner holds an exclusive `flock` on its file while it appends; any process may
replay a file nobody holds, which includes those left by a process that died.
Records the store refuses as invalid go to `rejected-*.jsonl` beside them, for
a person to look at: they are never replayed and never deleted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import orjson

from shipway.store.records import PredictionRecord

try:
    import fcntl
except ImportError:  # Windows: no flock; see _lock.
    fcntl = None  # type: ignore[assignment]

__all__ = ["Spool", "decode_line", "encode_line"]

SPOOL_PREFIX = "predictions"
REJECTED_PREFIX = "rejected"


def encode_line(record: PredictionRecord) -> bytes:
    """One record as one JSON line; the documents are kept as exact strings."""
    return orjson.dumps(
        {
            "request_id": record.request_id,
            "ts": record.ts,
            "service": record.service,
            "model_version": record.model_version,
            "latency_ms": record.latency_ms,
            # Strings, not embedded JSON: a pretty-printed body holds newlines that
            # would break the line framing, and strings keep the bytes exact.
            "inputs": record.inputs.decode("utf-8", "replace"),
            "outputs": record.outputs.decode("utf-8", "replace"),
            "rules_version": record.rules_version,
            "dataset_version": record.dataset_version,
            "run_id": record.run_id,
            "status": record.status,
            "decision": None if record.decision is None else record.decision.decode("utf-8", "replace"),
            "shadow": None if record.shadow is None else record.shadow.decode("utf-8", "replace"),
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


def decode_line(line: bytes) -> PredictionRecord:
    """The record `encode_line` wrote; ValueError, KeyError or TypeError if damaged."""
    d = orjson.loads(line)
    return PredictionRecord(
        request_id=d["request_id"],
        ts=float(d["ts"]),
        service=d["service"],
        model_version=d["model_version"],
        latency_ms=float(d["latency_ms"]),
        inputs=d["inputs"].encode(),
        outputs=d["outputs"].encode(),
        rules_version=d["rules_version"],
        dataset_version=d["dataset_version"],
        run_id=d["run_id"],
        status=int(d["status"]),
        decision=None if d.get("decision") is None else d["decision"].encode(),
        shadow=None if d.get("shadow") is None else d["shadow"].encode(),
    )


class Spool:
    """The spool folder as seen by one process; not thread-safe (one writer thread)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._file: IO[bytes] | None = None
        self._path: Path | None = None

    def append(self, records: Iterable[PredictionRecord]) -> None:
        """Append to this process's file and fsync; raises OSError if the disk fails."""
        f = self._file or self._open_own()
        f.write(b"".join(encode_line(r) for r in records))
        f.flush()
        os.fsync(f.fileno())

    def reject(self, lines: Iterable[bytes]) -> Path:
        """Keep lines the store refused (or that cannot be read) in a rejected file."""
        path = self.directory / f"{REJECTED_PREFIX}-{time.time_ns():020d}-{os.getpid()}.jsonl"
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            for line in lines:
                f.write(line if line.endswith(b"\n") else line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return path

    def close(self) -> None:
        """Close this process's file, which lets any process replay it."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._path = None

    def files(self) -> list[Path]:
        """Spool files in the folder, oldest first, including ones a live process holds."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"{SPOOL_PREFIX}-*.jsonl"))

    def replay(
        self,
        write: Callable[[list[PredictionRecord]], None],
        *,
        chunk_size: int = 5_000,
    ) -> int:
        """Write every file nobody holds through `write`, oldest first, deleting each.

        Closes this process's own file first so it is replayed too. If `write`
        raises, the file being replayed is kept and the error propagates; chunks
        already written will be written again next time, which the store ignores.
        Lines that cannot be decoded go to a rejected file. Returns the number of
        records written.
        """
        self.close()
        replayed = 0
        for path in self.files():
            for_replay = _claim(path)
            if for_replay is None:
                continue  # a live process holds it, or another one replayed it
            with for_replay as f:
                damaged: list[bytes] = []
                for chunk in _chunks(f, chunk_size, damaged):
                    write(chunk)
                    replayed += len(chunk)
                if damaged:
                    self.reject(damaged)
                path.unlink(missing_ok=True)
        return replayed

    def _open_own(self) -> IO[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{SPOOL_PREFIX}-{time.time_ns():020d}-{os.getpid()}.jsonl"
        # Lock under a hidden name, then rename: a replayer must never see the
        # file before its owner holds the lock, or it could delete it under us.
        hidden = self.directory / f".{name}.tmp"
        f = open(hidden, "ab")  # stays open until close()
        _lock(f, blocking=True)
        path = self.directory / name
        os.replace(hidden, path)
        _fsync_dir(self.directory)
        self._file, self._path = f, path
        return f


def _claim(path: Path) -> IO[bytes] | None:
    """The file opened and locked for replay, or None if another process has it."""
    try:
        f = open(path, "rb")  # the caller closes it
    except FileNotFoundError:
        return None
    if not _lock(f, blocking=False):
        f.close()
        return None
    try:
        # Another replayer may have finished and deleted it between our open and lock.
        same = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
        same = False
    if not same:
        f.close()
        return None
    return f


def _chunks(f: IO[bytes], size: int, damaged: list[bytes]) -> Iterator[list[PredictionRecord]]:
    chunk: list[PredictionRecord] = []
    for line in f:
        if not line.strip():
            continue
        try:
            chunk.append(decode_line(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            # Typically the last line of a process killed in the middle of a write.
            damaged.append(line)
            continue
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _lock(f: IO[bytes], *, blocking: bool) -> bool:
    if fcntl is None:
        # Without flock a live file could be replayed twice; the store ignores the
        # duplicates, so the cost is work, not data.
        return True
    flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
    try:
        fcntl.flock(f.fileno(), flags)
    except BlockingIOError:
        return False
    return True


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform; the file's own fsync still holds
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
