"""The artifact folder: files stored by the SHA-256 of their bytes.

`<root>/<digest[:2]>/<digest>`: the same bytes are stored once, whatever their names,
and a digest names them on every machine. The root is local by default
(`.shipway/objects`); a team points it at a shared path. A file is hashed while it is
copied (one read), then renamed into place, so a reader never sees half a file; where
the file is on the same file system and `link=True`, it is hard-linked instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from shipway.errors import StoreError

__all__ = ["CHUNK", "ObjectStore", "hash_file"]

CHUNK = 1 << 20  # 1 MiB reads: past this size, hashing speed no longer grows
_HEX = frozenset("0123456789abcdef")


def hash_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class ObjectStore:
    """A content-addressed folder of files. The constructor touches nothing."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """Where the bytes of `digest` live (whether or not they are stored)."""
        if len(digest) != 64 or not _HEX.issuperset(digest):
            raise StoreError(f"bad artifact digest {digest!r}: expected 64 lower-case hex characters (a SHA-256)")
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(
        self, source: Path, *, link: bool = False, observe: Callable[[memoryview], object] | None = None
    ) -> tuple[str, int]:
        """Store a file; return its digest and size. Costs one read and one write (or a link).

        `observe` sees every chunk as it is copied, so a caller can compute more from the one
        read (it forces a copy instead of a link)."""
        source = Path(source)
        if not source.is_file():
            raise StoreError(f"cannot store {str(source)!r} as an artifact: it is not a file; pass the path of a file")
        if link and observe is None:
            digest = hash_file(source)
            target = self.path(digest)
            if target.is_file():
                return digest, target.stat().st_size
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
                return digest, target.stat().st_size
            except FileExistsError:
                return digest, target.stat().st_size
            except OSError:
                pass  # another file system, or links not allowed: copy instead
        return self._copy_in(source, observe)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes; return their digest and size."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.is_file():
            self._write(target, lambda fh: fh.write(data))
        return digest, len(data)

    def get_bytes(self, digest: str) -> bytes:
        return self._existing(digest).read_bytes()

    def copy_to(self, digest: str, target: Path) -> Path:
        """Write the stored bytes of `digest` to `target` (its folder created)."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._existing(digest), target)
        return target

    def _existing(self, digest: str) -> Path:
        path = self.path(digest)
        if not path.is_file():
            raise StoreError(
                f"the artifact {digest[:12]} is not in the artifact folder {self.root}; point "
                "experiments.objects at the folder that holds it (a shared path for a team)"
            )
        return path

    def _copy_in(self, source: Path, observe: Callable[[memoryview], object] | None = None) -> tuple[str, int]:
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as fh:
                buffer = bytearray(CHUNK)
                view = memoryview(buffer)
                while n := fh.readinto(buffer):
                    digest.update(view[:n])
                    out.write(view[:n])
                    if observe is not None:
                        observe(view[:n])
                    size += n
            hexdigest = digest.hexdigest()
            target = self.path(hexdigest)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return hexdigest, size

    def _write(self, target: Path, write: Callable[[BinaryIO], object]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
