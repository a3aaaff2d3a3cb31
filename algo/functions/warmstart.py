"""Warm task processes for Substra's local backend: a server that has imported the task modules forks one child per
task, so a task no longer pays the interpreter's start and torch's import (~1.5 s a train task, README).

Why. Substra's subprocess backend starts `python function.py @args` for every task; a 3-partner round runs 7 such
processes and one torch import costs more than the round's local training. The backend passes this process's
environment to every task, so a local run (`orchestrator.run.driver`) starts `serve()` in a child process, sets
FEDCHEM_WARM_SOCKET for the time of the run, and each task script calls `run_warm()` first: it hands its argv,
working folder, environment, umask and standard streams (as file descriptors, SCM_RIGHTS) to the server, which
forks; the child takes them over and runs the same `substratools.execute` the script would have run. The script
then waits and exits with the child's status; a SIGTERM, SIGINT or SIGHUP it gets goes to the child and ends the
script too. When no server answers, the script runs the task itself (cold), as before.

What a child shares with its server: the imported modules and nothing else. The server imports code only (no data,
no keys, no torch operation: its thread pools are not started) and serves only its own user (SO_PEERCRED; the
socket sits in an owner-only folder; cryptography's OpenSSL backend is loaded, and OpenSSL reseeds its generator
in each child). numba is not preloaded, so a task takes the same path, with the same bits, as
a cold one (tested). numpy's global generator, which a fork would copy, is reseeded from the OS in each child.
Remote mode never uses it: a real node runs each task in its own pod.

    python -m fedchem.algo.functions.warmstart SOCKET MODULE [MODULE ...]   (what serving() starts)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time

from fedchem.algo.functions.warm_client import (DISABLE_ENV, ENV, STREAMS, forward as _forward,
                                                recv_message as _recv, run_warm, send_message as _send)

__all__ = ["DISABLE_ENV", "ENV", "LOG_NAME", "WarmServer", "preload", "run_warm", "serve", "serving", "supported"]
LOG_NAME = "served.log"  # beside the socket: a line per task started and ended (its CPU seconds)


# ------------------------------------------------------------------------------------------------------ server


def serve(path: str, modules: list[str]) -> None:
    """Import `modules`, listen on `path` (owner-only folder), and fork a child per task until told to stop
    (SIGTERM) or the process that started it is gone."""
    import importlib
    import selectors

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole process group: end with the run
    parent = os.getppid()
    for name in modules:
        importlib.import_module(name)
    folder = os.path.dirname(path)
    if os.stat(folder).st_mode & 0o077:
        raise PermissionError(f"{folder} must be owner-only")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # a client that connects before listen() is refused, and runs its task cold
    listener.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, ("accept", None))
    running: dict[int, tuple[socket.socket, int]] = {}  # pid -> (its client's connection, its pidfd)
    stop = []
    wake_r, wake_w = socket.socketpair()  # a SIGTERM wakes select at once (signal.set_wakeup_fd)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    sel.register(wake_r, selectors.EVENT_READ, ("wake", None))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    with open(os.path.join(folder, LOG_NAME), "a", buffering=1) as log:
        while not stop and os.getppid() == parent:
            for key, _ in sel.select(timeout=1.0):
                kind, pid = key.data
                if kind == "accept":
                    _accept(listener, sel, running, (log, wake_r, wake_w))
                elif kind == "wake":
                    wake_r.recv(64)
                elif pid not in running:  # an event of a child reaped earlier in this same batch
                    continue
                elif kind == "client":  # the task script is gone (or broke the protocol): so is its task
                    _forward(running[pid][1], signal.SIGKILL)
                    sel.unregister(key.fileobj)
                elif kind == "exit":
                    _reap(pid, sel, running, log)
    for _conn, pidfd in running.values():
        _forward(pidfd, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.unlink(path)
    os._exit(0)  # no teardown: after torch's import it costs ~0.4 s at the end of every run (measured)


def _accept(listener, sel, running, own) -> None:
    """Take one request, fork its child, and watch both the client's connection and the child's exit."""
    import selectors

    conn, _ = listener.accept()
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    try:
        if uid != os.getuid():
            raise ConnectionError(f"uid {uid} is not this server's")
        conn.settimeout(10)
        request, fds = _recv(conn)
        conn.settimeout(None)
        if len(fds) != STREAMS:
            for fd in fds:
                os.close(fd)
            raise ConnectionError("a request must carry stdin, stdout and stderr")
    except (OSError, ValueError, EOFError, TypeError):  # also wait_ready's probe, which sends nothing
        conn.close()
        return
    pid = os.fork()
    if pid == 0:  # the task: keep none of the server's descriptors
        signal.set_wakeup_fd(-1)
        sel.close()
        listener.close()
        conn.close()
        for obj in own:  # the served log and the wake-up pair
            obj.close()
        for other, pidfd in running.values():
            other.close()
            os.close(pidfd)
        _run_child(request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    running[pid] = (conn, pidfd)
    sel.register(conn, selectors.EVENT_READ, ("client", pid))
    sel.register(pidfd, selectors.EVENT_READ, ("exit", pid))
    own[0].write(json.dumps({"pid": pid, "argv": request["argv"][:3], "at": time.time()}) + "\n")  # started
    try:
        _send(conn, {"pid": pid})
    except OSError:
        _forward(pidfd, signal.SIGKILL)


def _reap(pid: int, sel, running, log) -> None:
    """The child ended: tell its client how, log its CPU seconds (a grandchild's CPU reaches the run's own clock
    only when the server ends), and forget it."""
    conn, pidfd = running.pop(pid)
    _, wait_status, usage = os.wait4(pid, 0)
    log.write(json.dumps({"pid": pid, "cpu_seconds": usage.ru_utime + usage.ru_stime, "at": time.time()}) + "\n")
    status = -os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)
    for obj in (conn, pidfd):
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(obj)
    with contextlib.suppress(OSError):
        _send(conn, {"status": status})
    conn.close()
    os.close(pidfd)


def _run_child(request: dict, fds: list[int]) -> None:
    """Become the task: its streams, folder, environment, umask and arguments; run it; exit as the script would."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(int(request["umask"]))
        sys.argv = list(request["argv"])
        sys.path[:] = list(request["path"])
        if "numpy" in sys.modules:  # a fork copies the global generator's state: give each task its own
            sys.modules["numpy"].random.seed()
        import importlib

        from fedchem.algo.functions.entry import run_task

        importlib.import_module(request["module"])
        run_task(sys.argv)  # what the cold script runs; exits 0 once every output is written
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:  # what the interpreter prints for an uncaught exception, and its exit status
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# ----------------------------------------------------------------------------------------------- for the driver


# beside every function's entry module, what they import inside functions and the datasets' opener, and
# cryptography's OpenSSL backend, which its key classes load on first use (~8 ms of every task); no numba.
# OpenSSL reseeds its generator in a forked child, so each child's keys are its own (tested: even after the server
# drew from it, which the real server never does)
LAZY_IMPORTS = ("fedchem.algo.model", "fedchem.algo.training", "fedchem.algo.evaluation",
                "fedchem.opener.substra_opener", "cryptography.hazmat.backends.openssl")


def preload() -> list[str]:
    """What the server imports: every registered function's entry module (specs.FUNCTIONS) and LAZY_IMPORTS."""
    from fedchem.algo.functions.specs import FUNCTIONS

    return sorted({f.module for f in FUNCTIONS.values()}) + list(LAZY_IMPORTS)


class WarmServer:
    """A running server (see serving()): where its socket is, and which tasks it ran."""

    def __init__(self, where: str):
        self.where = where
        self.socket = os.path.join(where, "tasks.sock")
        self.process = None  # the server's process, once serving() started it

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the server accepts tasks (its imports done); False if it ended or the timeout passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            if os.path.exists(self.socket):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(self.socket)
                    return True  # the server takes the empty request as a client gone: nothing runs
                except OSError:
                    pass
                finally:
                    probe.close()
            time.sleep(0.02)
        return False

    def served(self) -> list[dict]:
        """The tasks it started so far, one dict each (child pid, first arguments)."""
        return [e for e in _read_log(self.where) if "argv" in e]

    def cpu_seconds(self) -> float:
        """CPU seconds of the tasks it ran that have ended (benchmarks add them to their own clock)."""
        return sum(e["cpu_seconds"] for e in _read_log(self.where) if "cpu_seconds" in e)


def _read_log(where: str) -> list[dict]:
    try:
        with open(os.path.join(where, LOG_NAME)) as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def supported() -> bool:
    """Whether this platform has what the server needs: fork, SO_PEERCRED, and pidfds (Linux 5.3 or later)."""
    if not (hasattr(os, "fork") and hasattr(os, "pidfd_open") and hasattr(socket, "SO_PEERCRED")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an older kernel
        return False
    return True


@contextlib.contextmanager
def serving(modules: list[str] | None = None):
    """Start a warm server for the tasks this process runs through Substra's local backend and point
    FEDCHEM_WARM_SOCKET at it; yield it (None when FEDCHEM_WARM=0 or the platform lacks what it needs: Linux's
    pidfd and SO_PEERCRED). Stopped and removed on every exit path. Tasks started before it is ready (wait_ready)
    run cold."""
    import shutil
    import subprocess
    import tempfile

    if os.environ.get(DISABLE_ENV) == "0" or not supported():
        yield None
        return
    where = tempfile.mkdtemp(prefix="fedchem-warm-")  # owner-only
    if len(os.path.join(where, "tasks.sock").encode()) > 100:  # AF_UNIX paths end at 107 bytes: a long TMPDIR
        os.rmdir(where)
        where = tempfile.mkdtemp(prefix="fedchem-warm-", dir="/tmp")
    server = WarmServer(where)
    server.process = subprocess.Popen([sys.executable, "-m", __name__, server.socket, *(modules or preload())],
                                      stdin=subprocess.DEVNULL)
    old = os.environ.get(ENV)
    os.environ[ENV] = server.socket
    try:
        yield server
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        shutil.rmtree(server.where, ignore_errors=True)


def main(argv: list[str]) -> int:
    """The server process: a clear line instead of a traceback when it cannot serve (the tasks then run cold)."""
    try:
        serve(argv[0], argv[1:])
    except Exception as exc:  # noqa: BLE001 - whatever stops it, the run goes on with cold tasks
        sys.stderr.write(f"fedchem: the warm task server stopped ({type(exc).__name__}: {exc}); tasks start their "
                         "own interpreter instead\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
