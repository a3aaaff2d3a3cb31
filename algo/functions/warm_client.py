"""The task script's side of the warm task server (fedchem.algo.functions.warmstart): hand the task over, wait,
exit with its status. Also the messages both sides exchange.

Why a module of its own, on builtins only. Every task of a local run starts an interpreter for this alone: through
fedchem's package and the standard library's socket, json and signal it cost ~16 ms of each task's ~50 ms start
(bench/round.py's start-up table). The task script carries this file's text (orchestrator.run.archive) and runs it
before any import, with nothing but modules the interpreter has already loaded (os, sys) or builds in (_signal,
marshal) and the _socket extension. The messages are marshal-encoded: plain dicts of str, int and lists, exchanged
with a peer of the same user only (the server checks SO_PEERCRED; its socket sits in an owner-only folder).
"""

import _signal
import _socket
import marshal
import os
import sys

ENV = "FEDCHEM_WARM_SOCKET"  # the server's socket, set by the local run for its tasks
DISABLE_ENV = "FEDCHEM_WARM"  # "0": every task starts its own interpreter (cold), as Substra does it
STREAMS = 3  # stdin, stdout, stderr travel with the request
_FD_BYTES = 4  # a descriptor in SCM_RIGHTS data: a C int


def send_message(sock, message: dict, fds: list | None = None) -> None:
    """One length-prefixed marshal message, with file descriptors riding on its first byte when given."""
    data = marshal.dumps(message)
    frame = len(data).to_bytes(4, "big") + data
    if fds:
        rights = b"".join(int(fd).to_bytes(_FD_BYTES, sys.byteorder, signed=True) for fd in fds)
        sock.sendmsg([frame[:1]], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        frame = frame[1:]
    sock.sendall(frame)


def _recv_exact(sock, n: int, fds: list) -> bytes:
    buf = b""
    while len(buf) < n:
        if not buf and not fds:  # the first byte may carry descriptors
            chunk, ancillary, _flags, _addr = sock.recvmsg(n, _socket.CMSG_SPACE(STREAMS * _FD_BYTES))
            for level, kind, data in ancillary:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    usable = len(data) - len(data) % _FD_BYTES
                    fds.extend(int.from_bytes(data[i:i + _FD_BYTES], sys.byteorder, signed=True)
                               for i in range(0, usable, _FD_BYTES))
        else:
            chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        buf += chunk
    return buf


def recv_message(sock) -> tuple:
    """The next message (a dict) and any descriptors sent with it; ConnectionError when the peer is gone,
    ValueError for what is not one of these messages."""
    fds: list = []
    length = int.from_bytes(_recv_exact(sock, 4, fds), "big")
    message = marshal.loads(_recv_exact(sock, length, fds))
    if not isinstance(message, dict):
        raise ValueError("not a warm-server message")
    return message, fds


def run_warm(argv: list, module: str) -> None:
    """Run this task in a warm child and exit with its status; return (do nothing) when no server takes it.

    Called by the task script before its imports. Once the server has said it forked, this never returns: the
    task's outcome is the child's, never a second, cold run of the same task."""
    path = os.environ.get(ENV)
    if not path or os.environ.get(DISABLE_ENV) == "0":
        return
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        umask = os.umask(0o077)
        os.umask(umask)
        request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask,
                   "path": list(sys.path), "module": module}
        send_message(sock, request, list(range(STREAMS)))
        pid = int(recv_message(sock)[0]["pid"])
    except (OSError, ValueError, KeyError, EOFError, TypeError):  # no server, or it refused before forking
        sock.close()
        return
    try:  # signals go through a pidfd: never to another process that reused the number
        child = os.pidfd_open(pid)
    except OSError:  # it has ended already (its status is on the way)
        child = -1
    for sig in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP):
        _signal.signal(sig, lambda signum, _frame: _die_with(child, signum))
    try:
        status = int(recv_message(sock)[0]["status"])
    except (OSError, ValueError, KeyError, EOFError, TypeError):
        forward(child, _signal.SIGKILL)
        sys.stderr.write("fedchem: the warm task server went away while task process %d ran; the task is stopped "
                         "(rerun with FEDCHEM_WARM=0 to start every task cold)\n" % pid)
        os._exit(1)
    if status < 0:  # the child died of a signal: so does this script, as a cold task would have
        _signal.signal(-status, _signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        os._exit(128 - status)
    os._exit(status)


def _die_with(pidfd: int, signum: int) -> None:
    """A signal for this script: the child gets it too, and the script ends by it, as a cold task would."""
    forward(pidfd, signum)
    _signal.signal(signum, _signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def forward(pidfd: int, signum: int) -> None:
    """Signal the process behind a pidfd (nothing when it has ended, or when there is none: -1)."""
    if pidfd >= 0:
        try:
            _signal.pidfd_send_signal(pidfd, signum)
        except OSError:  # ProcessLookupError included: it has ended
            pass
