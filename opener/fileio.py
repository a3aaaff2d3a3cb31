"""The one file-I/O helper every layer uses: atomic files and folders, stable JSON, sha256.

Atomic means a reader (or a crash, kill -9 included) sees the old content or the new, never half of it: write to a
temporary name in the same folder, flush and fsync, then one rename. It lives in the lowest layer (opener) so that
algo, the Substra functions and the orchestrator all write files the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o644
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[IO[bytes]], None], mode: int = FILE_MODE) -> Path:
    """Write `data` (bytes, or a function that writes to a binary file) to `path` atomically, with file mode `mode`."""
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
