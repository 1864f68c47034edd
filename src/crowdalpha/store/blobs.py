"""Blob storage through fsspec: a local directory by default, any fsspec URL (``s3://…``, ``memory://…``).

Keys are relative paths of simple segments (``submissions/8/842/<id>.csv``). A put is atomic: readers
see the whole blob or nothing. On a local directory bytes go to a temporary file under
``<root>/.partial/`` and are renamed into place; elsewhere they are spooled to a local temporary file
and uploaded in one call at the end. A size limit is enforced while streaming: the write that would
cross it raises BlobTooLarge before any byte past the limit is written, and nothing is left behind.
A local directory is read, probed and deleted with plain file calls (fsspec's local layer costs tens
of microseconds per call, and an upload makes several); ``move`` renames a blob without copying it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, Protocol

import fsspec
from fsspec.implementations.local import LocalFileSystem

from crowdalpha.store.errors import BlobTooLarge, InvalidBlobKey, NotFound

DEFAULT_CHUNK_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 1024
PARTIAL_DIRNAME = ".partial"
MAX_KNOWN_DIRECTORIES = 100_000
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._=+-]*$")


class Readable(Protocol):
    """Anything with ``read(n) -> bytes`` (an open binary file, a request body stream, BytesIO)."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes; empty at the end."""
        ...


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its key, size in bytes and SHA-256 (hex) of its content."""

    key: str
    size_bytes: int
    sha256: str


def validate_key(key: str) -> str:
    """Return the key if it is a safe relative path of simple segments; raise InvalidBlobKey otherwise."""
    segments = key.split("/")
    if not key or len(key) > MAX_KEY_LENGTH or not all(_SEGMENT.match(segment) for segment in segments):
        raise InvalidBlobKey(
            f"invalid blob key {key!r}: use '/'-separated segments of letters, digits and ._=+- "
            "that do not start with '.', at most 1024 characters"
        )
    return key


class BlobStore:
    """Blobs under one fsspec URL (a plain path means a local directory, created if missing)."""

    def __init__(self, url: str | Path, *, durable: bool = True) -> None:
        self.url = str(url)
        self.fs, root = fsspec.core.url_to_fs(self.url)
        self.root = root.rstrip("/") or "/"
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.durable = durable
        self._directories: set[str] = set()
        """Local directories this store has made or found (a blob's directory is made once, not per put)."""
        if self.is_local:
            Path(self.root, PARTIAL_DIRNAME).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> str:
        """Return the filesystem path of a key."""
        return self._path_of_valid(validate_key(key))

    def _path_of_valid(self, key: str) -> str:
        """Return the filesystem path of a key already validated."""
        return f"{self.root.rstrip('/')}/{key}"

    def _make_directory_of(self, path: str) -> None:
        """Make the directory of a local path unless this store has made or seen it already."""
        directory = path.rpartition("/")[0]
        if directory not in self._directories:
            os.makedirs(directory, exist_ok=True)
            if len(self._directories) >= MAX_KNOWN_DIRECTORIES:
                self._directories.clear()
            self._directories.add(directory)

    def _replace_local(self, source: str, target: str) -> None:
        """Rename a local file to ``target`` (replacing any); make the target's directory if it is missing."""
        try:
            os.replace(source, target)
        except FileNotFoundError:
            if not os.path.isfile(source):
                raise
            self._directories.discard(target.rpartition("/")[0])  # removed since this store saw it
            self._make_directory_of(target)
            os.replace(source, target)

    def writer(self, key: str, *, limit_bytes: int | None = None) -> BlobWriter:
        """Return a writer that stores the blob atomically when its ``with`` block ends without error."""
        return BlobWriter(self, key, limit_bytes=limit_bytes)

    def put(
        self,
        key: str,
        source: Readable,
        *,
        limit_bytes: int | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> BlobInfo:
        """Return the stored blob's info after streaming ``source`` in, reading at most limit + 1 bytes."""
        with self.writer(key, limit_bytes=limit_bytes) as writer:
            while True:
                want = chunk_bytes if limit_bytes is None else min(chunk_bytes, limit_bytes - writer.size + 1)
                data = source.read(want)
                if not data:
                    break
                writer.write(data)
        return writer.info

    def put_bytes(
        self, key: str, data: bytes, *, limit_bytes: int | None = None, sha256: str | None = None
    ) -> BlobInfo:
        """Return the stored blob's info after storing ``data`` under ``key``.

        ``sha256``: the data's SHA-256 (hex) when the caller has computed it already (an upload's
        receipt has); it is then reported as it is instead of being computed a second time.
        """
        writer = BlobWriter(self, key, limit_bytes=limit_bytes, sha256=sha256)
        with writer:
            writer.write(data)
        return writer.info

    def open(self, key: str) -> BinaryIO:
        """Return the blob opened for binary reading (seekable); raise NotFound if absent."""
        path = self._path(key)
        try:
            if self.is_local:
                return open(path, "rb")
            return self.fs.open(path, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no blob {key!r}") from None

    def read_bytes(self, key: str) -> bytes:
        """Return the blob's whole content; raise NotFound if absent."""
        with self.open(key) as handle:
            return handle.read()

    def size(self, key: str) -> int:
        """Return the blob's size in bytes; raise NotFound if absent."""
        path = self._path(key)
        try:
            if self.is_local:
                return os.stat(path).st_size
            return int(self.fs.size(path))
        except FileNotFoundError:
            raise NotFound(f"no blob {key!r}") from None

    def exists(self, key: str) -> bool:
        """Return True if a blob is stored under the key."""
        path = self._path(key)
        if self.is_local:
            return os.path.isfile(path)
        return bool(self.fs.isfile(path))

    def delete(self, key: str) -> bool:
        """Delete the blob; return whether it existed."""
        path = self._path(key)
        try:
            if self.is_local:
                os.unlink(path)
            else:
                self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        return True

    def move(self, source_key: str, target_key: str) -> None:
        """Store the blob of ``source_key`` under ``target_key`` (replacing any) and remove the source.

        On a local directory this is one atomic rename: no byte is copied, and readers of the target
        see the old blob or the new one, never a mix. Raises NotFound if the source is absent.
        """
        source, target = self._path(source_key), self._path(target_key)
        try:
            if self.is_local:
                self._replace_local(source, target)
            else:
                parent = target.rsplit("/", 1)[0]
                with contextlib.suppress(Exception):
                    self.fs.makedirs(parent, exist_ok=True)
                self.fs.mv(source, target)
        except FileNotFoundError:
            raise NotFound(f"no blob {source_key!r}") from None

    def keys(self, prefix: str = "") -> list[str]:
        """Return the sorted keys that start with ``prefix`` (a string prefix, not only a directory)."""
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = f"{self.root.rstrip('/')}/{directory}" if directory else self.root
        try:
            paths = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self.fs._strip_protocol(self.root).rstrip("/") + "/"
        keys = []
        for path in paths:
            key = self.fs._strip_protocol(path)[len(root) :] if path.startswith(root) else None
            if key is None or key.startswith(f"{PARTIAL_DIRNAME}/") or not key.startswith(prefix):
                continue
            keys.append(key)
        return sorted(keys)

    def local_path(self, key: str) -> Path | None:
        """Return the blob's local file path (for zero-copy serving), or None if storage is not local."""
        return Path(self._path(key)) if self.is_local else None


class BlobWriter:
    """Streams one blob: ``write`` chunks (checked against the limit), stored atomically on success."""

    def __init__(
        self, store: BlobStore, key: str, *, limit_bytes: int | None, sha256: str | None = None
    ) -> None:
        if limit_bytes is not None and limit_bytes < 0:
            raise ValueError(f"limit_bytes must be non-negative, got {limit_bytes}")
        self.store = store
        self.key = validate_key(key)
        self.limit_bytes = limit_bytes
        self.size = 0
        self._known_sha256 = sha256
        """The content's SHA-256 as the caller computed it (then not hashed here), or None."""
        self._digest = hashlib.sha256()
        self._info: BlobInfo | None = None
        self._handle: IO[bytes] | None = None
        self._temp_path: str | None = None

    def __enter__(self) -> BlobWriter:
        """Open the temporary file and return the writer."""
        if self.store.is_local:
            directory = f"{self.store.root}/{PARTIAL_DIRNAME}"
            self._temp_path = f"{directory}/{uuid.uuid4().hex}.partial"
            try:
                self._handle = open(self._temp_path, "xb")
            except FileNotFoundError:  # the staging directory was removed since the store was opened
                Path(directory).mkdir(parents=True, exist_ok=True)
                self._handle = open(self._temp_path, "xb")
        else:
            descriptor, self._temp_path = tempfile.mkstemp(prefix="crowdalpha-blob-", suffix=".partial")
            self._handle = os.fdopen(descriptor, "wb")
        return self

    def write(self, data: bytes) -> int:
        """Append bytes and return how many; raise BlobTooLarge (and discard everything) past the limit."""
        if self._handle is None:
            raise RuntimeError("BlobWriter.write outside its with block")
        if self.limit_bytes is not None and self.size + len(data) > self.limit_bytes:
            self.abort()
            raise BlobTooLarge(self.limit_bytes)
        self._handle.write(data)
        if self._known_sha256 is None:
            self._digest.update(data)
        self.size += len(data)
        return len(data)

    @property
    def info(self) -> BlobInfo:
        """Return the stored blob's info (only after a successful commit)."""
        if self._info is None:
            raise RuntimeError("the blob is not stored yet")
        return self._info

    def commit(self) -> BlobInfo:
        """Store the written bytes under the key atomically and return the blob's info."""
        if self._handle is None or self._temp_path is None:
            raise RuntimeError("BlobWriter.commit outside its with block")
        handle, temp_path = self._handle, self._temp_path
        try:
            handle.flush()
            if self.store.durable:
                os.fsync(handle.fileno())
            handle.close()
            final = self.store._path_of_valid(self.key)
            if self.store.is_local:
                # A new blob's directory is made before the rename, not after it fails (one call fewer).
                self.store._make_directory_of(final)
                self.store._replace_local(temp_path, final)
            else:
                parent = final.rsplit("/", 1)[0]
                with contextlib.suppress(Exception):
                    self.store.fs.makedirs(parent, exist_ok=True)
                self.store.fs.put_file(temp_path, final)
                os.unlink(temp_path)
        except BaseException:
            self.abort()
            raise
        self._handle = None
        self._temp_path = None
        sha256 = self._known_sha256 if self._known_sha256 is not None else self._digest.hexdigest()
        self._info = BlobInfo(key=self.key, size_bytes=self.size, sha256=sha256)
        return self._info

    def abort(self) -> None:
        """Discard everything written so far; nothing is stored."""
        handle, temp_path = self._handle, self._temp_path
        self._handle = None
        self._temp_path = None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()
        if temp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_path)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Commit on a normal exit; abort on an exception (which then propagates)."""
        if exc_type is None:
            if self._handle is not None:
                self.commit()
        else:
            self.abort()
