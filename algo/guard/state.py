"""A partner's private protocol state on its own node: one owner-only JSON record per plan and per (plan, round).

What is recorded (before the matching output is written, so a crash fails closed): the key setup of a plan (its
round range, roster, the pinned public bundles, the plan's signing key), and per round: the masking (once, with the
roster masked against), the one survivor set confirmed, and which kind of share (b: self-mask seed, s: mask key) of
which party was released. Writes are temp file + fsync + rename + fsync of the folder, so they survive kill -9;
an exclusive fcntl lock on the node folder serialises the check-then-record of concurrent tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from fedchem.opener.errors import ProtocolError
from fedchem.opener.fileio import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, atomic_write

LOCK = ".lock"
REFUSALS = "refusals.log"
_PLAN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def private_dir(path: Path) -> Path:
    """Create (if needed) a folder only its owner may enter, whatever the umask; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Owner-only file, atomically (fileio: temp file, fsync, rename), then the folder fsynced so the rename
    itself survives a crash."""
    path = Path(path)
    atomic_write(path, data, PRIVATE_FILE_MODE, durable=True)  # even in a task process (fileio.durable_writes)
    _fsync_dir(path.parent)


class NodeState:
    """The protocol records of one partner's node folder."""

    def __init__(self, node_dir: Path):
        self.root = private_dir(Path(node_dir))

    @contextlib.contextmanager
    def locked(self):
        """Exclusive lock over the whole node state (blocks until the other task is done)."""
        import fcntl

        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _plan_dir(self, plan_id: str) -> Path:
        if not isinstance(plan_id, str) or not _PLAN_ID.match(plan_id):
            raise ProtocolError(f"plan id {plan_id!r} is not a UUID", "partner state", "pass a plan built by fedchem")
        return self.root / "plans" / plan_id

    def _read(self, path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def _write(self, path: Path, record: dict) -> None:
        private_dir(self.root / "plans")
        private_dir(path.parent)
        atomic_write_bytes(path, json.dumps(record, indent=1, sort_keys=True).encode())

    def plan(self, plan_id: str) -> dict | None:
        return self._read(self._plan_dir(plan_id) / "plan.json")

    def save_plan(self, plan_id: str, record: dict) -> None:
        self._write(self._plan_dir(plan_id) / "plan.json", record)

    def round(self, plan_id: str, round_: int) -> dict:
        return self._read(self._plan_dir(plan_id) / f"round_{int(round_):04d}.json") or {}

    def save_round(self, plan_id: str, round_: int, record: dict) -> None:
        self._write(self._plan_dir(plan_id) / f"round_{int(round_):04d}.json", record)

    def signing_key_path(self, plan_id: str) -> Path:
        return self._plan_dir(plan_id) / "signing.key"

    def save_secret(self, path: Path, data: bytes) -> None:
        private_dir(self.root / "plans")
        private_dir(path.parent)
        atomic_write_bytes(path, data)

    def log_refusal(self, line: str) -> None:
        """Append one line to the node's private refusal log (what was refused and by which rule; no data)."""
        fd = os.open(self.root / REFUSALS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line.replace("\n", " | ") + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
