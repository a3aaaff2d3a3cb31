"""Substra's local worker folder of a run, RUN_DIR/substra-work/: owner-only, and gone on every exit path.

In local mode Substra's subprocess backend keeps every task output there, among them every partner's secret-key
bundle and private outputs. A run holds an exclusive lock on RUN_DIR/.run.lock while it works (the kernel releases
it when the process dies, kill -9 included); the folder is removed when the run ends (success, failure, Ctrl-C,
SIGTERM), and a folder left by a killed run is removed by the next `run`, `run --resume` or `status`, which can tell
from the free lock that no live run uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

from fedchem.opener.errors import ConfigError, os_errors
from fedchem.opener.fileio import owner_only, private_dir

WORK = "substra-work"
LOCK = ".run.lock"


class Terminated(KeyboardInterrupt):
    """SIGTERM / SIGHUP during a run: unwinds like Ctrl-C, so every `finally` (cleanup included) runs."""


def work_root(run_dir: Path) -> Path:
    return Path(run_dir) / WORK


@contextlib.contextmanager
def _lock(run_dir: Path, wait: bool = False) -> Iterator[bool]:
    """The run folder's lock: yields True when taken (no live run holds it), False when a live run does."""
    path = Path(run_dir) / LOCK
    existed = path.exists()
    with owner_only():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            if not existed:  # a lock file this call made goes with it, removed while still held
                path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def remove_work(run_dir: Path) -> bool:
    """Remove RUN_DIR/substra-work (secret-key bundles, private outputs); True if there was one."""
    root = work_root(run_dir)
    if not root.exists():
        return False
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():  # a file we may not delete: say so rather than leave secrets silently
        raise ConfigError("could not remove the Substra work folder (it may hold secret-key bundles)",
                          where=str(root), fix="remove it by hand (rm -rf) and check its permissions")
    return True


def clean_stale(run_dir: Path) -> str:
    """For `status` and a new `run`: remove a work folder no live run holds. Returns 'removed', 'busy' or ''."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return ""
    with _lock(run_dir) as free:
        if not free:
            return "busy"
        return "removed" if remove_work(run_dir) else ""


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into an exception for the block (main thread only; Ctrl-C already unwinds)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def run_session(run_dir: Path, keep: bool = False, say: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the run folder for one run: lock, stale work folder removed, owner-only files (umask 077), signals
    unwinding; on exit, whatever the reason, the work folder is removed (unless `keep`, for tests that read it)."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise ConfigError("the run folder path names an existing file", where=str(run_dir),
                          fix="give --run-dir a new folder (the file is left as it is)")
    made = [d for d in (run_dir, *run_dir.parents) if not d.exists()]  # the folders this run creates, deepest first
    with os_errors(run_dir), owner_only():
        run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _lock(run_dir) as free:
            if not free:
                raise ConfigError("another fedchem process is running this run", where=str(run_dir),
                                  fix="wait for it to finish (`fedchem status RUN_DIR`), or stop it first")
            if remove_work(run_dir) and say:
                say("removed the Substra work folder a killed run left behind (it held secret-key bundles)")
            with owner_only(), _signals_unwind():
                try:
                    yield private_dir(work_root(run_dir))
                finally:
                    if not keep:
                        remove_work(run_dir)
    finally:
        for folder in made:  # refused before anything started: the folders it made go too, if still empty
            try:
                folder.rmdir()
            except OSError:
                break
