"""Release store: content-addressed blobs, manifests, and the atomic HEAD pointer swap.

Layout under the data dir:
  blobs/ab/cd/<sha256>     immutable file contents (data files, manifests, account state, batch results)
  HEAD.json                the only mutable document: current versions, manifests, state ref, batches, fence
  HEAD.lock                fcntl lock serialising pointer swaps
  staging/<uuid>/          work dirs of running imports/corrections (each locked by its owner)
  index.sqlite             the account index (rebuildable)
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import mmap
import os
import queue
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Protocol

EMPTY_HEAD = {"generation": 0, "fence": None, "datasets": {}, "state": None, "batches": {}}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore(Protocol):
    """Where file contents live; an S3-compatible store could implement the same six calls (map and
    local_path through a local cache of the objects being rewritten)."""

    def put(self, src: Path, sha256: str) -> None: ...
    def get(self, sha256: str) -> bytes: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def map(self, sha256: str): ...
    def exists(self, sha256: str) -> bool: ...
    def local_path(self, sha256: str) -> Path: ...


class LocalBlobStore:
    """Blobs as files under <root>/ab/cd/<sha256>; put moves a finished file in (same filesystem)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def local_path(self, sha256: str) -> Path:
        """Path of the blob's file (it may not exist)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"bad blob id {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.local_path(sha256).exists()

    def put(self, src: Path, sha256: str) -> None:
        """Store the file at src (already fsynced by the writer) under its sha256; src is consumed."""
        dest = self.local_path(sha256)
        if dest.exists():
            os.unlink(src)  # content-addressed: the same bytes are already there
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        _fsync_dir(dest.parent)

    def put_bytes(self, data: bytes, tmp_dir: Path) -> str:
        """Store small bytes (manifests, state); return their sha256."""
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            tmp = Path(tmp_dir) / f".blob-{uuid.uuid4().hex}"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.put(tmp, sha)
        return sha

    def get(self, sha256: str) -> bytes:
        """The blob's bytes."""
        return self.local_path(sha256).read_bytes()

    def open(self, sha256: str) -> BinaryIO:
        """The blob opened for binary reading."""
        return open(self.local_path(sha256), "rb")

    def map(self, sha256: str):
        """The blob's bytes as a read-only memory map (b"" when empty): searched and written without copies.

        Not closed explicitly: views of it may outlive the caller's frame (a writer thread's queue,
        a traceback), and closing a map with live views fails; it is unmapped when the last goes.
        """
        return map_file(self.local_path(sha256))


class HashingWriter:
    """A file written by the caller and sha256-hashed by a background thread, fsynced on close; a context manager.

    Hashing releases the GIL, so it runs while the caller writes and searches its
    next block: sha256 is the costliest step per byte, about as much as the
    caller's search and write together, so each side gets one of them. At most two
    blocks wait for the hash (bounded memory). finish() returns the sha256 while the
    thread fsyncs, so the caller can go on with other work; close() waits for the
    fsync. Leaving the `with` block without close() aborts.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.bytes = 0
        self._f = open(self.path, "wb", buffering=0)
        self._h = hashlib.sha256()
        self._q: queue.Queue = queue.Queue(maxsize=2)
        self._error: list[BaseException] = []
        self._written = threading.Event()
        self._finishing = False
        self._closed = False
        # The thread gets only what it needs (not self), so nothing else keeps the writer alive.
        self._t = threading.Thread(target=_hash_loop, args=(self._q, self._f, self._h, self._error, self._written),
                                   daemon=True)
        self._t.start()

    def write(self, data) -> None:
        """Append bytes (immutable, as bytes or a read-only mapping: the thread hashes them later)."""
        if self._error:
            raise self._error[0]
        view = memoryview(data)
        self.bytes += len(view)
        while view:
            view = view[self._f.write(view):]  # a raw write may be short
        self._q.put(data)

    def finish(self) -> str:
        """End the writes; return the sha256 once all is hashed and written (the fsync may still run)."""
        if not self._finishing:
            self._finishing = True
            self._q.put(None)
        self._written.wait()
        if self._error:
            raise self._error[0]
        return self._h.hexdigest()

    def close(self) -> str:
        """Wait for the writes and the fsync (the one of this file); return the sha256 of what was written."""
        sha = self.finish()
        self._closed = True
        self._t.join()
        try:
            if self._error:
                raise self._error[0]
            size = os.fstat(self._f.fileno()).st_size
        finally:
            self._f.close()
        if size != self.bytes:
            raise OSError(f"{self.path}: {size} bytes on disk, {self.bytes} written")
        return sha

    def abort(self) -> None:
        """Stop the thread and close the file without fsync (the caller discards it)."""
        if not self._closed:
            self._closed = True
            self._error.append(OSError("aborted"))  # the thread skips what is still queued, and the fsync
            if not self._finishing:
                self._finishing = True
                self._q.put(None)
            self._t.join()
            self._f.close()

    def __enter__(self) -> "HashingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.abort()


def _hash_loop(q: queue.Queue, f, h, error: list, written: threading.Event) -> None:
    """Body of a HashingWriter's thread: hash each written block until the None sentinel, then fsync."""
    while (data := q.get()) is not None:
        if error:
            continue  # failed or aborted: drain the queue so the producer never blocks
        try:
            h.update(data)
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)
    written.set()
    if not error:
        try:
            os.fsync(f.fileno())
        except BaseException as exc:  # re-raised by close()
            error.append(exc)


class Unmapper:
    """Drops the pages of a read-only map once a pass is well past them (MADV_DONTNEED).

    A mapped file counts as resident as far as it has been read: a pass over a 5 GB
    file would end with 5 GB resident. The pages stay in the page cache; one read
    again (say, still queued for hashing) is simply mapped again.
    """

    LAG = 16 * 1024 * 1024  # well behind what a writer may still have queued

    def __init__(self, buf):
        self.buf = buf if hasattr(buf, "madvise") else None
        self.done = 0

    def passed(self, pos: int) -> None:
        """The pass has got to pos."""
        upto = (pos - self.LAG) & ~(mmap.PAGESIZE - 1)
        if self.buf is not None and upto - self.done >= self.LAG:
            self.buf.madvise(mmap.MADV_DONTNEED, self.done, upto - self.done)
            self.done = upto


def map_file(path: Path):
    """The file's bytes as a read-only memory map (b"" when empty); see LocalBlobStore.map."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def canonical_json(obj) -> bytes:
    """Stable JSON bytes (sorted keys) so equal documents share a blob."""
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8")


class Store:
    """HEAD pointer + blobs + staging dirs under one data dir."""

    def __init__(self, data_dir: Path, blobs: BlobStore | None = None):
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.blobs = blobs or LocalBlobStore(self.root / "blobs")
        self.staging_root = self.root / "staging"
        self.staging_root.mkdir(exist_ok=True)
        self.head_path = self.root / "HEAD.json"
        self.lock_path = self.root / "HEAD.lock"
        self._json_cache: dict[str, object] = {}

    # -- HEAD -------------------------------------------------------------
    def read_head(self) -> dict:
        """The current pointer document (a fresh copy)."""
        try:
            data = self.head_path.read_bytes()
        except FileNotFoundError:
            return copy.deepcopy(EMPTY_HEAD)
        return json.loads(data)

    def publish(self, update: Callable[[dict], dict]) -> dict:
        """Swap HEAD atomically: under the lock, update(current) checks its preconditions
        (raising PublishConflict) and returns the new document, written temp+fsync+replace."""
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                cur = self.read_head()
                new = update(copy.deepcopy(cur))
                new["generation"] = cur.get("generation", 0) + 1
                tmp = self.root / f".HEAD.{os.getpid()}.{uuid.uuid4().hex}.tmp"
                with open(tmp, "wb") as f:
                    f.write(canonical_json(new))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.head_path)
                _fsync_dir(self.root)
                return new
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- JSON blobs -------------------------------------------------------
    def put_json(self, obj, tmp_dir: Path) -> str:
        """Store a JSON document as a blob; return its sha256."""
        return self.blobs.put_bytes(canonical_json(obj), tmp_dir)

    def get_json(self, sha: str):
        """Load a JSON blob (cached: blobs are immutable)."""
        if sha not in self._json_cache:
            self._json_cache[sha] = json.loads(self.blobs.get(sha))
        return copy.deepcopy(self._json_cache[sha])

    # -- staging ----------------------------------------------------------
    @contextlib.contextmanager
    def staging(self):
        """A fresh work dir inside the data dir, locked while in use, removed afterwards."""
        d = self.staging_root / uuid.uuid4().hex
        d.mkdir()
        lock = open(d / ".lock", "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)
            lock.close()

    def clean_stale_staging(self) -> int:
        """Remove staging dirs whose owner died (their lock is free); return how many."""
        n = 0
        for d in self.staging_root.iterdir():
            lockf = d / ".lock"
            try:
                fh = open(lockf, "a")
            except OSError:
                # No lock file: half-created, or being created right now: wait a minute.
                if time.time() - d.stat().st_mtime > 60:
                    shutil.rmtree(d, ignore_errors=True)
                    n += 1
                continue
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue  # a live process owns it
            shutil.rmtree(d, ignore_errors=True)
            fh.close()
            n += 1
        with open(self.lock_path, "a+") as lock:
            # Under the swap lock, so no live publisher's temp file is removed.
            fcntl.flock(lock, fcntl.LOCK_EX)
            for tmp in self.root.glob(".HEAD.*.tmp"):
                tmp.unlink(missing_ok=True)
            fcntl.flock(lock, fcntl.LOCK_UN)
        return n
