"""The one file-I/O helper every layer uses: atomic files and folders, stable JSON, sha256.

Atomic means a reader (or a crash, kill -9 included) sees the old content or the new, never half of it: write to a
temporary name in the same folder, flush and fsync, then one rename. It lives in the lowest layer (opener) so that
algo, the Substra functions and the orchestrator all write files the same way. A Substra task process skips the
fsync for its outputs (`durable_writes`); the rename, hence the atomicity, stays.

Owner-only files (a partner's private data: prepared folders, checkpoints, heads, logs, metrics, predictions,
reports, and Substra's work folder with the secret-key bundles): every private folder 0700, every private file 0600,
whatever the caller's umask. New files are created under umask 077 (`owner_only`), private writes set the mode
explicitly (`write_private`, `private_dir`), and trees a third party wrote (a Substra download, a prepared folder)
are locked down after the fact (`lock_down`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o644
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_durable = [True]  # this process's default for atomic_write's fsync (durable_writes)


def durable_writes(on: bool) -> None:
    """Whether this process's atomic writes fsync before their rename, unless a write says otherwise (default: yes).

    A Substra task turns it off (`fedchem.algo.functions.entry`): its outputs are files that Substra takes into its
    own storage the moment the task ends (a copy, or locally a hard link: orchestrator.run.local_store, which Substra
    does not sync either), so a power cut before then loses the task whatever was synced, while each fsync cost
    ~10 ms here, 70 ms a train task (README, *Figures*). Writes that must survive a crash on their own, the
    partner's protocol state (`fedchem.algo.guard.state`), pass durable=True."""
    _durable[0] = bool(on)


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[IO[bytes]], None], mode: int = FILE_MODE, *,
                 durable: bool | None = None) -> Path:
    """Write `data` (bytes, or a function that writes to a binary file) to `path` atomically, with file mode `mode`;
    fsynced before the rename when `durable` (None: this process's default, see durable_writes)."""
    durable = _durable[0] if durable is None else durable
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, mode: int = FILE_MODE) -> Path:
    """A UTF-8 text file, atomically."""
    return atomic_write(path, text.encode("utf-8"), mode)


def json_text(obj: Any) -> str:
    """The project's stable JSON encoding: sorted keys, two-space indent, UTF-8, one trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_default) + "\n"


def _default(value: Any) -> Any:
    # numpy scalars and paths appear in metadata; anything else is a bug worth a TypeError
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: str | os.PathLike, obj: Any, mode: int = FILE_MODE) -> Path:
    """`obj` as stable JSON (see `json_text`), atomically."""
    return atomic_write_text(path, json_text(obj), mode)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def atomic_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `out_dir`; on success it replaces `out_dir` by renames, on any error it
    is removed and `out_dir` is left as it was. Callers decide beforehand whether `out_dir` may be replaced."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, old)  # onto an empty folder: allowed, atomic
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def move_into_place(src: str | os.PathLike, dest: str | os.PathLike, mode: int | None = None) -> Path:
    """Move a finished file (a download, say) onto `dest` in one rename, after syncing it to disk."""
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fh:
        os.fsync(fh.fileno())
    if mode is not None:
        os.chmod(src, mode)
    os.replace(src, dest)
    return dest


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


OWNER_ONLY_UMASK = 0o077


@contextmanager
def owner_only() -> Iterator[None]:
    """Within the block, everything this process (and the subprocesses it starts) creates is owner-only."""
    old = os.umask(OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def private_dir(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Create `path` (and missing parents) as 0700 folders; with `root`, every folder from root down to path is
    made 0700 even when it already existed (a partner's whole private tree)."""
    path = Path(path)
    with owner_only():
        path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)
    if root is not None:
        for parent in [path, *path.parents]:
            os.chmod(parent, PRIVATE_DIR_MODE)
            if parent == Path(root):
                break
    return path


def write_private(path: str | os.PathLike, data: bytes | str) -> Path:
    """Atomically write a 0600 file in a 0700 folder."""
    path = Path(path)
    private_dir(path.parent)
    return atomic_write(path, data.encode("utf-8") if isinstance(data, str) else data, PRIVATE_FILE_MODE)


def write_private_json(path: str | os.PathLike, obj: Any) -> Path:
    """`obj` as stable JSON in a 0600 file, atomically."""
    return write_private(path, json_text(obj))


def move_private(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Rename a finished file or folder onto `dest` after making it owner-only (its folder too)."""
    src, dest = Path(src), Path(dest)
    lock_down(src)
    private_dir(dest.parent)
    os.replace(src, dest)
    return dest


def lock_down(path: str | os.PathLike) -> Path:
    """Make a file 0600, or a folder and everything under it 0700 / 0600 (symlinks are left alone)."""
    path = Path(path)
    if path.is_symlink():
        return path
    if path.is_file():
        os.chmod(path, PRIVATE_FILE_MODE)
        return path
    os.chmod(path, PRIVATE_DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(path):
        for name, mode in [(d, PRIVATE_DIR_MODE) for d in dirnames] + [(f, PRIVATE_FILE_MODE) for f in filenames]:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, mode)
    return path


def readable_by_others(root: str | os.PathLike) -> list[Path]:
    """Every file or folder under `root` (itself included) that group or others may read, write or enter."""
    root = Path(root)
    return [p for p in [root, *root.rglob("*")] if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077]
