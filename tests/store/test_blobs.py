"""Blob storage: atomic puts, SHA-256 receipts, prefix listing, and a size limit enforced while streaming."""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from crowdalpha.store import BlobStore, BlobTooLarge, InvalidBlobKey, NotFound
from crowdalpha.store.blobs import PARTIAL_DIRNAME


class CountingStream(io.RawIOBase):
    """An endless-looking byte stream that counts how much was read from it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.total - self.read_bytes if size < 0 else min(size, self.total - self.read_bytes)
        self.read_bytes += size
        return b"x" * size


@pytest.fixture(params=["local", "memory"])
def blobs(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BlobStore]:
    """Yield a blob store on a local directory or on fsspec's in-memory filesystem (the non-local path)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "spool"))
    (tmp_path / "spool").mkdir()
    if request.param == "local":
        yield BlobStore(tmp_path / "blobs")
        return
    url = f"memory://crowdalpha-test-{secrets.token_hex(4)}"
    store = BlobStore(url)
    yield store
    with contextlib.suppress(FileNotFoundError):
        fsspec.filesystem("memory").rm(store.root, recursive=True)


def _leftovers(store: BlobStore, tmp_path: Path) -> list[str]:
    """Return partial files left in the store's staging area or the local spool directory."""
    spool = [path.name for path in (tmp_path / "spool").iterdir()]
    staging = [path.name for path in Path(store.root, PARTIAL_DIRNAME).iterdir()] if store.is_local else []
    return spool + staging


def test_put_stores_the_bytes_with_size_and_sha256(blobs: BlobStore, tmp_path: Path) -> None:
    data = secrets.token_bytes(3_000_000)
    info = blobs.put("submissions/8/842/a.csv", io.BytesIO(data), chunk_bytes=65_536)
    assert (info.key, info.size_bytes, info.sha256) == (
        "submissions/8/842/a.csv",
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    assert blobs.exists("submissions/8/842/a.csv") and blobs.size("submissions/8/842/a.csv") == len(data)
    with blobs.open("submissions/8/842/a.csv") as handle:
        handle.seek(1_000_000)
        assert handle.read(10) == data[1_000_000:1_000_010]
    assert blobs.read_bytes("submissions/8/842/a.csv") == data
    assert _leftovers(blobs, tmp_path) == []


def test_keys_lists_by_string_prefix_and_delete_is_idempotent(blobs: BlobStore) -> None:
    for key in ("datasets/v5.2/train.parquet", "datasets/v5.2/live.parquet", "datasets/v5.10/x", "other/y"):
        blobs.put_bytes(key, b"1")
    assert blobs.keys("datasets/v5.2/") == ["datasets/v5.2/live.parquet", "datasets/v5.2/train.parquet"]
    assert blobs.keys("datasets/v5.") == [
        "datasets/v5.10/x",
        "datasets/v5.2/live.parquet",
        "datasets/v5.2/train.parquet",
    ]
    assert len(blobs.keys()) == 4
    assert blobs.keys("nothing/here/") == []
    assert blobs.delete("other/y") and not blobs.delete("other/y")
    assert not blobs.exists("other/y")
    with pytest.raises(NotFound, match="no blob 'other/y'"):
        blobs.open("other/y")
    with pytest.raises(NotFound):
        blobs.size("other/y")


def test_move_renames_a_blob_into_a_new_directory_and_replaces_an_old_one(blobs: BlobStore) -> None:
    blobs.put_bytes("uploads/m/1/p.csv", b"new bytes")
    blobs.move("uploads/m/1/p.csv", "submissions/classic/7/m/a.csv")
    assert blobs.read_bytes("submissions/classic/7/m/a.csv") == b"new bytes"
    assert not blobs.exists("uploads/m/1/p.csv")
    blobs.put_bytes("uploads/m/2/p.csv", b"newer")
    blobs.move("uploads/m/2/p.csv", "submissions/classic/7/m/a.csv")
    assert blobs.read_bytes("submissions/classic/7/m/a.csv") == b"newer"
    assert blobs.keys("uploads/") == []
    with pytest.raises(NotFound, match=r"no blob 'uploads/m/3/p\.csv'"):
        blobs.move("uploads/m/3/p.csv", "submissions/classic/7/m/b.csv")
    assert not blobs.exists("submissions/classic/7/m/b.csv")


def test_a_local_move_keeps_the_file_written_by_the_put(tmp_path: Path) -> None:
    """On a local directory a move is a rename: the stored file is the very one the PUT wrote."""
    blobs = BlobStore(tmp_path / "blobs")
    blobs.put_bytes("uploads/m/1/p.csv", b"x" * 1000)
    inode = (tmp_path / "blobs" / "uploads/m/1/p.csv").stat().st_ino
    blobs.move("uploads/m/1/p.csv", "submissions/s.csv")
    assert (tmp_path / "blobs" / "submissions/s.csv").stat().st_ino == inode


def test_a_local_put_or_move_into_a_directory_removed_since_remakes_it(tmp_path: Path) -> None:
    """The store remembers the directories it made; one removed behind its back is made again."""
    blobs = BlobStore(tmp_path / "blobs")
    blobs.put_bytes("submissions/classic/7/m/a.csv", b"first")
    shutil.rmtree(tmp_path / "blobs" / "submissions")
    blobs.put_bytes("submissions/classic/7/m/b.csv", b"second")
    assert blobs.keys("submissions/") == ["submissions/classic/7/m/b.csv"]
    shutil.rmtree(tmp_path / "blobs" / "submissions")
    blobs.put_bytes("uploads/u.csv", b"third")
    blobs.move("uploads/u.csv", "submissions/classic/7/m/c.csv")
    assert blobs.read_bytes("submissions/classic/7/m/c.csv") == b"third"
    assert list(Path(blobs.root, PARTIAL_DIRNAME).iterdir()) == []


def test_a_put_over_the_limit_raises_while_streaming_and_leaves_nothing(
    blobs: BlobStore, tmp_path: Path
) -> None:
    limit = 100_000
    source = CountingStream(50_000_000)
    with pytest.raises(BlobTooLarge, match=f"upload exceeds the size limit of {limit} bytes"):
        blobs.put("submissions/too-big.csv", source, limit_bytes=limit, chunk_bytes=16_384)
    assert source.read_bytes <= limit + 1  # stopped reading right past the limit, not at the end
    assert not blobs.exists("submissions/too-big.csv")
    assert blobs.keys() == []
    assert _leftovers(blobs, tmp_path) == []


def test_a_put_of_exactly_the_limit_is_accepted(blobs: BlobStore) -> None:
    info = blobs.put("exact.bin", CountingStream(4096), limit_bytes=4096, chunk_bytes=1000)
    assert info.size_bytes == 4096


def test_a_failed_overwrite_keeps_the_old_blob(blobs: BlobStore, tmp_path: Path) -> None:
    blobs.put_bytes("a/b.csv", b"old")
    with pytest.raises(BlobTooLarge):
        blobs.put_bytes("a/b.csv", b"new content that is too long", limit_bytes=5)
    assert blobs.read_bytes("a/b.csv") == b"old"
    blobs.put_bytes("a/b.csv", b"new")
    assert blobs.read_bytes("a/b.csv") == b"new"
    assert _leftovers(blobs, tmp_path) == []


def test_an_error_inside_a_writer_block_stores_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), blobs.writer("streamed/x.csv", limit_bytes=10) as writer:
        writer.write(b"12345")
        raise RuntimeError("client went away")
    assert not blobs.exists("streamed/x.csv")
    with blobs.writer("streamed/y.csv", limit_bytes=10) as writer:
        writer.write(b"12345")
        writer.write(b"67890")
    assert writer.info.size_bytes == 10 and blobs.read_bytes("streamed/y.csv") == b"1234567890"
    assert _leftovers(blobs, tmp_path) == []


@pytest.mark.parametrize(
    "key", ["", "../x", "/abs", "a//b", ".hidden", "a/../b", "a\\b", "a b", "a/", "x" * 1025]
)
def test_unsafe_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        blobs.put_bytes(key, b"1")


def test_local_store_exposes_file_paths_for_zero_copy_serving(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "b"), durable=False)
    store.put_bytes("k/v.bin", b"abc")
    assert store.local_path("k/v.bin") == tmp_path / "b" / "k" / "v.bin"
    assert (tmp_path / "b" / "k" / "v.bin").read_bytes() == b"abc"
    assert BlobStore(f"memory://x-{secrets.token_hex(4)}").local_path("k") is None


def test_a_put_given_the_sha256_reports_it_and_stores_the_same_bytes(blobs: BlobStore) -> None:
    data = b"id,prediction\nn1,0.5\n"
    digest = hashlib.sha256(data).hexdigest()
    info = blobs.put_bytes("submissions/k.csv", data, sha256=digest)
    assert info.sha256 == digest and info.size_bytes == len(data)
    assert blobs.read_bytes("submissions/k.csv") == data
