"""The one error type for user mistakes: what is wrong, where, and what to do.

It lives at the bottom of the package (opener is imported by everything above it) so that algo, metrics and the
orchestrator raise the same type, and the CLI turns it into a clean message and a non-zero exit, never a traceback.
Messages must not contain SMILES, compound ids or values of another partner (DESIGN.md section 7, invariant 5).
"""

from __future__ import annotations

import errno
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager


class FedchemError(Exception):
    """A problem the user can fix: bad input, inconsistent configs, a run that cannot go on.

    what:  what is wrong, in one sentence.
    where: the file, row, key or task concerned (may be empty).
    fix:   what to do about it (may be empty).
    """

    exit_code = 2

    def __init__(self, what: str, where: str = "", fix: str = ""):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.message())

    def message(self) -> str:
        parts = [f"error: {self.what}"]
        if self.where:
            parts.append(f"  where: {self.where}")
        if self.fix:
            parts.append(f"  what to do: {self.fix}")
        return "\n".join(parts)


class ConfigError(FedchemError):
    """A config file is missing, malformed, or disagrees with another config."""


class DataError(FedchemError):
    """A partner's raw or prepared data cannot be used as it is."""


class PrivacyError(FedchemError):
    """A compute plan, output or report would break a privacy invariant (DESIGN.md section 7)."""


class ProtocolError(FedchemError):
    """The secure-aggregation protocol cannot go on (too few survivors, tampered or refused shares)."""


class RunStopped(ProtocolError):
    """A federated run stopped cleanly (too few survivors, a failed aggregation) and can be resumed: exit 3."""

    exit_code = 3


# The exit codes of every command (documented in each `--help`; see orchestrator/cli/main.py).
EXIT_OK = 0
EXIT_USER_ERROR = FedchemError.exit_code
EXIT_STOPPED = RunStopped.exit_code
EXIT_CODES_HELP = """\
exit codes:
  0  done
  2  a mistake in the input, the configs or the command line (the message says what, where, and what to do)
  3  a federated run stopped cleanly and can be resumed (`fedchem run --resume RUN_DIR`)
"""

# What reading a damaged, truncated or foreign file (JSON, .npz) raises, besides OSError: callers that read a file
# they did not write in this process catch these and say which file is damaged.
DAMAGED = (ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError, zipfile.BadZipFile, zlib.error)

_OS_PROBLEMS = {
    errno.EACCES: ("permission denied", "choose a place you may write to (and read from), or fix the permissions"),
    errno.EPERM: ("operation not permitted", "choose a place you may write to (and read from), or fix the "
                                             "permissions"),
    errno.EROFS: ("the file system is read-only", "choose a folder on a writable file system"),
    errno.ENOSPC: ("no space left on the device", "free some space, or choose an output folder on another disk"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space, or choose an output folder on another disk"),
    errno.EFBIG: ("a file grew larger than this file system or this process allows (ulimit -f)",
                  "raise the limit (ulimit -f unlimited), or write to another file system"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path: every part before the last "
                                                                   "must be a folder"),
    errno.EISDIR: ("the path is a folder where a file is expected", "give the path of a file, not of a folder"),
    errno.ENOENT: ("the file or folder does not exist", "check the path"),
    errno.ENAMETOOLONG: ("the path is too long", "use a shorter path"),
    errno.EEXIST: ("the path already exists", "choose another path, or remove it first"),
    errno.ENOTEMPTY: ("the folder is not empty", "choose another path, or empty it first"),
    errno.ELOOP: ("the path has too many symbolic links (a loop?)", "check the symbolic links on the path"),
    errno.EMFILE: ("too many files are open", "raise the limit (ulimit -n)"),
}


def interrupted_by(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (KeyboardInterrupt, SIGTERM's Terminated included) behind `exc`, itself or one its handling led
    to: an interrupt that lands inside a library's cleanup can surface as another error (CPython's shutil.rmtree
    closes a file descriptor twice when interrupted between its close and its bookkeeping, raising EBADF)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__context__ or exc.__cause__
    return None


def from_os_error(exc: BaseException, where: object = None) -> FedchemError | None:
    """The user-facing form of an operating-system or encoding error, or None when it is not one the user can fix
    (then it stays a bug with a traceback). `where` names the file or folder being read or written when the error
    itself does not (a failed write() carries no file name)."""
    if isinstance(exc, FedchemError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        return DataError("a file is not UTF-8 text", where=str(where) if where else "",
                         fix="save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)")
    if not isinstance(exc, OSError) or exc.errno not in _OS_PROBLEMS:
        return None
    code = exc.errno
    if code == errno.EEXIST and exc.filename and os.path.exists(exc.filename) and not os.path.isdir(exc.filename):
        code = errno.ENOTDIR  # mkdir(parents=True) meeting a file on the way: a file where a folder should be
    what, fix = _OS_PROBLEMS[code]
    places = [str(p) for p in (where, exc.filename, exc.filename2) if p]
    places = list(dict.fromkeys(places))
    return FedchemError(f"cannot read or write a file: {what}", where="; ".join(places), fix=fix)


@contextmanager
def os_errors(where: object = None) -> Iterator[None]:
    """Turn an operating-system or encoding error raised inside into a FedchemError naming `where` (and the file
    the error names); used around every command by the CLI, and around writers whose failed write() names no file."""
    try:
        yield
    except (OSError, UnicodeDecodeError) as exc:
        err = from_os_error(exc, where)
        if err is None:
            raise
        raise err from exc
