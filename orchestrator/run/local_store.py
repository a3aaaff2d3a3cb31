"""Local mode: Substra's subprocess backend stores a task's outputs as hard links to the files the task wrote,
instead of copies.

Why. After each task, Substra's local worker copies every output from the task's scratch folder into its store
(`local-worker/outputs/<task>/`) and then deletes the scratch folder. A train task's masked update and optimizer state
are each twice the trunk's size: on these machines, whose freed memory goes back to the host, writing a fresh copy of
them was about a quarter of a second of every train task (README, *Figures*). A hard link gives the store the very
file the task wrote, and the scratch folder's deletion then only drops the second name. Substra reads the stored
file afterwards as before (its sha256 checksum, every later task's inputs, downloads).

How. Substra 1.0's worker calls `shutil.copy(scratch, store)` for each output and nothing else of `shutil` but
`rmtree`; `link_outputs` gives that module a `shutil` whose `copy` links (or copies where no link can be made,
another file system) and whose other names are shutil's own. Substra is pinned to 1.0.0 (pyproject.toml); on any
other version, or a worker that no longer works this way, nothing is changed and Substra copies as before.

Checksums side by side. Substra then hashes each stored output (sha256, `fs.hash_file`), one after the other, while
the run waits: a train task's masked update and optimizer state, 67 MB each in the demo, cost ~0.1 s of every train
task, on one core of two (bench/round.py). When a task's first output is stored, its large outputs are hashed
together on a thread each (hashlib releases the GIL), and the worker's `fs.hash_file` takes the digest of the file
it is given from there. Each digest is taken once, and only for the same file unchanged (device, inode, size and
modification time, checked again after the hashing; not the change time, which the link itself moves); any other
file is hashed by Substra's own function. It is still sha256 over the stored file, computed by this process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import types
from concurrent.futures import ThreadPoolExecutor

SUBSTRA_VERSION = "1.0.0"  # the version whose worker this adapts (its _save_output copies with shutil.copy)
SIDE_BY_SIDE_BYTES = 1 << 20  # outputs from this size on are hashed beside the task's other large outputs


def link_or_copy(src, dst, *, follow_symlinks: bool = True):
    """`shutil.copy`'s contract (returns dst; a folder as dst gets the file's name) with a hard link where one can
    be made. The linked file keeps the task's own mode (owner-only, as the task wrote it), as copy keeps it."""
    target = os.path.join(dst, os.path.basename(src)) if os.path.isdir(dst) else dst
    DIGESTS.prefetch(os.path.dirname(os.path.abspath(src)))
    try:
        os.link(src, target, follow_symlinks=follow_symlinks)
    except OSError:  # another file system, an existing target, a file system without links: Substra's copy
        return shutil.copy(src, dst, follow_symlinks=follow_symlinks)
    return target


def _identity(st: os.stat_result) -> tuple:
    """What makes a digest reusable: the same file (device, inode), unchanged (size, modification time; a new link
    moves the change time, not these)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def sha256_of(path) -> str:
    """Substra's checksum of a file (`substra.sdk.fs.hash_file`: sha256, hex), read in large blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class OutputDigests:
    """sha256 of a finished task's large outputs, made side by side when its first output is stored, each taken
    once by the worker's hash_file (see the module's docstring)."""

    def __init__(self) -> None:
        self._folder: str | None = None  # the task output folder last hashed
        self._ready: dict[tuple, str] = {}  # file identity -> its sha256

    def prefetch(self, folder: str) -> None:
        """Hash the large files of `folder` on a thread each, unless it is the folder done last (its later outputs)."""
        if folder == self._folder:
            return
        self._folder, self._ready = folder, {}  # the previous task's leftovers are of no further use
        try:
            entries = [e for e in os.scandir(folder) if e.is_file(follow_symlinks=False)
                       and e.stat().st_size >= SIDE_BY_SIDE_BYTES]
        except OSError:
            return
        if len(entries) < 2:  # nothing to do side by side: Substra's own hashing, as before
            return
        before = [_identity(e.stat()) for e in entries]
        with ThreadPoolExecutor(min(len(entries), os.cpu_count() or 1), thread_name_prefix="fedchem-sha256") as ex:
            digests = list(ex.map(sha256_of, [e.path for e in entries]))
        for entry, key, digest in zip(entries, before, digests):
            try:
                unchanged = _identity(os.stat(entry.path)) == key
            except OSError:
                unchanged = False
            if unchanged:
                self._ready[key] = digest

    def take(self, path) -> str | None:
        """The digest made for this very file, unchanged since (and forgotten once taken); None otherwise."""
        try:
            return self._ready.pop(_identity(os.stat(path)), None)
        except OSError:
            return None


DIGESTS = OutputDigests()


def hash_file(path) -> str:
    """`substra.sdk.fs.hash_file` for Substra's worker: the side-by-side digest of this file when one was made."""
    from substra.sdk import fs

    digest = DIGESTS.take(path)
    return digest if digest is not None else fs.hash_file(path)


class _StandIn(types.ModuleType):
    """A module for Substra's worker: the names given replaced, every other name the original module's."""

    def __init__(self, original: types.ModuleType, **names) -> None:
        super().__init__(original.__name__)
        self._original = original
        self.__dict__.update(names)

    def __getattr__(self, name: str):
        return getattr(self._original, name)


class _PrefetchedFs(_StandIn):
    """substra.sdk.fs for Substra's worker: `hash_file` takes side-by-side digests."""

    def __init__(self) -> None:
        from substra.sdk import fs

        super().__init__(fs, hash_file=hash_file)


class _LinkingShutil(_StandIn):
    """shutil for Substra's worker module: `copy` links."""

    def __init__(self) -> None:
        super().__init__(shutil, copy=link_or_copy)


def _worker_module():
    """Substra's local worker module when it is the one this adapts, else None."""
    import substra
    from substra.sdk.backends.local.compute import worker

    if substra.__version__ != SUBSTRA_VERSION or not hasattr(worker.Worker, "_save_output"):
        return None
    if getattr(worker, "shutil", None) is not shutil and not isinstance(worker.shutil, _LinkingShutil):
        return None  # something else replaced it: leave it alone
    from substra.sdk import fs

    if getattr(worker, "fs", None) is not fs and not isinstance(worker.fs, _PrefetchedFs):
        return None
    return worker


def link_outputs() -> bool:
    """Make this process's Substra local workers store outputs as hard links (idempotent). True if they do."""
    worker = _worker_module()
    if worker is None:
        return False
    if not isinstance(worker.shutil, _LinkingShutil):
        worker.shutil = _LinkingShutil()
    if not isinstance(worker.fs, _PrefetchedFs):  # the checksums of a task's large outputs, side by side
        worker.fs = _PrefetchedFs()
    return True


def outputs_linked() -> bool:
    """True if this process's Substra local workers store outputs as hard links."""
    worker = _worker_module()
    return worker is not None and isinstance(worker.shutil, _LinkingShutil)
