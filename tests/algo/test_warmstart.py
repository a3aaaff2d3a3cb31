"""The warm task server (fedchem.algo.functions.warmstart), on real processes: the real task script
(orchestrator.run.archive.task_script) run warm and cold must be indistinguishable to Substra's subprocess backend
(streams, exit status, folder, environment, umask, arguments), a task must not outlive its script, and a script
without a server runs the task itself. That a whole federated run gives the same bits warm and cold is
tests/e2e/test_federation_e2e.py::test_warm_task_processes_give_the_cold_ones_bits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedchem.algo.functions import warmstart
from fedchem.orchestrator.run.archive import task_script

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
pytestmark = pytest.mark.skipif(not warmstart.supported(), reason="the warm server needs Linux's pidfds and "
                                "SO_PEERCRED; without them local runs start every task cold")


@pytest.fixture
def script(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")]))
    path = tmp_path / "function" / "function.py"
    path.parent.mkdir()
    path.write_text(task_script("probe", "warmprobe", "the warm-server probe"))
    return path


@pytest.fixture
def server(script):
    with warmstart.serving(modules=["warmprobe"]) as srv:
        assert srv.wait_ready(timeout=60), "the warm server did not start"
        yield srv
    assert not os.path.exists(srv.where)  # stopped and removed


def launch(script: Path, tmp_path: Path, name: str, action: str = "ok", **env) -> tuple[subprocess.Popen, Path]:
    """Start the task script as Substra's spawner does (this process's environment, cwd = the function folder)."""
    out = tmp_path / f"{name}.json"
    cwd = tmp_path / name
    cwd.mkdir()
    full = {**os.environ, "PROBE_OUT": str(out), "PROBE_ACTION": action, "PROBE_VALUE": name, **env}
    proc = subprocess.Popen([sys.executable, str(script), "--function-name", "probe"], cwd=cwd, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.umask(0o027))
    return proc, out


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


def wait_for(path: Path) -> dict:
    deadline = time.monotonic() + 60
    while not (path.exists() and path.stat().st_size):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return json.loads(path.read_text())


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_warm_task_is_a_cold_task_to_its_caller(script, server, tmp_path, monkeypatch):
    warm, out_w = launch(script, tmp_path, "warm")
    rc_w, so_w, se_w = finish(warm)
    monkeypatch.setenv(warmstart.DISABLE_ENV, "0")
    cold, out_c = launch(script, tmp_path, "cold")
    rc_c, so_c, se_c = finish(cold)
    w, c = json.loads(out_w.read_text()), json.loads(out_c.read_text())
    assert rc_w == rc_c == 0
    assert w["pid"] != warm.pid and c["pid"] == cold.pid  # it really ran elsewhere, and the control did not
    assert len(server.served()) == 1
    assert w["cwd"] == str(tmp_path / "warm") and c["cwd"] == str(tmp_path / "cold")
    assert w["umask"] == c["umask"] == 0o027 and (w["value"], c["value"]) == ("warm", "cold")
    assert w["argv"][1:] == c["argv"][1:] == ["--function-name", "probe"]
    assert "probe says hello on stdout" in so_w and "probe says hello on stderr" in se_w  # its own streams
    assert so_w == so_c and se_w == se_c


def test_failures_keep_their_exit_status_and_message(script, server, tmp_path, monkeypatch):
    codes = {}
    for mode in ("warm", "cold"):
        if mode == "cold":
            monkeypatch.setenv(warmstart.DISABLE_ENV, "0")
        for action in ("fail", "exit3"):
            rc, _, err = finish(launch(script, tmp_path, f"{mode}-{action}", action)[0])
            codes[mode, action] = rc
            if action == "fail":
                assert "ValueError: probe failed on purpose" in err
    assert codes == {("warm", "fail"): 1, ("warm", "exit3"): 3, ("cold", "fail"): 1, ("cold", "exit3"): 3}
    assert len(server.served()) == 2


def test_each_child_draws_its_own_numpy_randomness(script, server, tmp_path):
    draws = []
    for name in ("one", "two"):
        proc, out = launch(script, tmp_path, name)
        assert finish(proc)[0] == 0
        draws.append(json.loads(out.read_text())["draw"])
    assert draws[0] != draws[1]  # a fork copies the global generator: without the reseed both would be equal


def test_each_child_makes_its_own_keys_from_a_server_that_loaded_openssl(script, tmp_path, monkeypatch):
    """The server preloads cryptography's OpenSSL backend (LAZY_IMPORTS); here it has even drawn from OpenSSL's
    generator before forking. Two children must still make different X25519 and Ed25519 keys and seeds."""
    assert "cryptography.hazmat.backends.openssl" in warmstart.LAZY_IMPORTS
    monkeypatch.setenv("PROBE_DRAW_AT_IMPORT", "1")
    with warmstart.serving(modules=["warmprobe", "cryptography.hazmat.backends.openssl"]) as srv:
        assert srv.wait_ready(timeout=60)
        reports = []
        for name in ("one", "two"):
            proc, out = launch(script, tmp_path, name)
            assert finish(proc)[0] == 0
            reports.append(json.loads(out.read_text()))
        assert len(srv.served()) == 2
    for key in ("x25519", "ed25519", "seed"):
        assert reports[0][key] != reports[1][key]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_task_does_not_outlive_its_script(script, server, tmp_path, sig):
    proc, out = launch(script, tmp_path, "sleeper", "sleep")
    child = wait_for(out)["pid"]
    assert child != proc.pid
    proc.send_signal(sig)
    assert finish(proc)[0] == -sig  # the script ends as a cold task would
    assert gone(child)


def test_without_a_server_the_script_runs_the_task_itself(script, tmp_path, monkeypatch):
    monkeypatch.setenv(warmstart.ENV, str(tmp_path / "no-such.sock"))
    proc, out = launch(script, tmp_path, "alone")
    assert finish(proc)[0] == 0
    assert json.loads(out.read_text())["pid"] == proc.pid


def test_the_socket_is_owner_only_and_the_server_stops_with_the_run(script, tmp_path):
    with warmstart.serving(modules=["warmprobe"]) as srv:
        assert os.stat(srv.where).st_mode & 0o077 == 0
        assert os.environ[warmstart.ENV] == srv.socket
    assert warmstart.ENV not in os.environ and not os.path.exists(srv.where)


def test_the_server_logs_each_task_and_its_cpu_time(script, server, tmp_path):
    proc, _ = launch(script, tmp_path, "counted")
    assert finish(proc)[0] == 0
    assert [e["argv"][1:] for e in server.served()] == [["--function-name", "probe"]]
    assert server.cpu_seconds() > 0  # the child imported substratools' CLI and ran: it used the CPU


def test_a_server_that_cannot_serve_says_so_in_a_line_and_tasks_run_cold(script, tmp_path, monkeypatch):
    """The server's folder must be owner-only: in a folder others may read it refuses, in one clear line (no
    traceback), and a task script pointed at it runs its task itself."""
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    proc = subprocess.run([sys.executable, "-m", "fedchem.algo.functions.warmstart", str(folder / "tasks.sock"),
                           "warmprobe"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the warm task server stopped" in proc.stderr and "must be owner-only" in proc.stderr
    server = warmstart.WarmServer(str(folder))
    assert not server.wait_ready(timeout=0.5)
    monkeypatch.setenv(warmstart.ENV, server.socket)
    task, out = launch(script, tmp_path, "alone")
    assert finish(task)[0] == 0 and json.loads(out.read_text())["pid"] == task.pid


def test_wait_ready_sees_the_server_accept(script, tmp_path):
    with warmstart.serving(modules=["warmprobe"]) as srv:
        assert srv.wait_ready(timeout=60)
        proc, out = launch(script, tmp_path, "first")
        assert finish(proc)[0] == 0 and json.loads(out.read_text())["pid"] != proc.pid  # the very first task: warm


def test_the_script_hands_its_task_over_with_builtins_only(script):
    """What the task script runs before the hand-off (the client it carries) loads no module but the builtin
    marshal and _signal and the _socket extension: no fedchem package, no socket, json or signal (~12 ms of every
    task's start, bench/round.py); a module added there fails this test."""
    probe = (
        "import ast, sys\n"
        "tree = ast.parse(open(sys.argv[1]).read())\n"
        "text = next(n.value.value for n in tree.body if isinstance(n, ast.Assign)"
        " and n.targets[0].id == 'WARM_CLIENT')\n"
        "before = set(sys.modules)\n"
        "exec(compile(text, 'warm_client.py', 'exec'), {})\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n")
    new = subprocess.run([sys.executable, "-c", probe, str(script)], capture_output=True, text=True, check=True)
    assert set(new.stdout.split()) <= {"_socket", "marshal", "_signal"}, new.stdout
    assert "_socket" in new.stdout.split()  # the probe saw the client's own import: the test can fail
