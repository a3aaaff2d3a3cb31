"""End to end on the real Substra SDK (subprocess backend): 3 partners + an aggregator, real data, secure aggregation.

Each test runs real compute plans: real function archives, datasets, tasks in subprocesses, real X25519/ChaCha20.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from fedchem.algo.params import load_params
from fedchem.opener.errors import EXIT_STOPPED
from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.run.context import trunk_path
from fedchem.orchestrator.run.driver import run_federation
from fedchem.orchestrator.ledger import Ledger

from fedsetup import build_small_consortium

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def consortium_path(tmp_path_factory) -> Path:
    return build_small_consortium(tmp_path_factory.mktemp("consortium"))


@pytest.fixture(scope="module")
def secure_run(consortium_path, tmp_path_factory):
    consortium, partners = load_all(consortium_path)
    out = []
    res = run_federation(consortium, partners, tmp_path_factory.mktemp("runs") / "secure", console=out.append,
                         keep_network=True, keep_outputs=True, consortium_path=consortium_path)  # scanned below
    return res, out


def assert_owner_only_and_no_secret_left(*roots: Path) -> None:
    """No file or folder under the roots is readable by group or others, no Substra work folder is left, and no
    file holds a secret-key bundle (the bundle's own format marker is what is searched for)."""
    from fedchem.algo.secagg.bundles import SecretBundle
    from fedchem.opener.fileio import readable_by_others

    marker = SecretBundle.FORMAT.encode()
    for root in roots:
        assert readable_by_others(root) == [], readable_by_others(root)[:5]
        assert not (root / "substra-work").exists()
        files = [p for p in root.rglob("*") if p.is_file()]
        assert files  # the scan looked at something
        assert not [p for p in files if marker in p.read_bytes()]


@contextlib.contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def _trunk(run_dir: Path) -> dict[str, np.ndarray]:
    return load_params(run_dir / "aggregator" / "trunk.npz")[0]


def test_secure_run_completes_with_private_results(secure_run):
    res, lines = secure_run
    ledger = Ledger.load(res.run_dir)
    assert ledger.status == "completed" and ledger.completed_rounds == 2 and ledger.secure
    assert len(ledger.wheel_sha256) == 64 and res.network.wheel.sha256 == ledger.wheel_sha256  # the archives' fedchem
    assert [r.survivors for r in ledger.rounds] == [["partner-1", "partner-2", "partner-3"]] * 2
    for name in ledger.partners:
        pdir = res.run_dir / "partners" / name
        metrics = json.loads((pdir / "metrics.json").read_text())
        assert metrics["after_round"] == 2 and metrics["head_from"] == "previous round"
        assert (pdir / "test_predictions.npz").is_file() and (pdir / "head.npz").is_file()
        assert sorted(p.name for p in (pdir / "checkpoints").iterdir()) == ["round_001", "round_002"]
        logs = sorted((pdir / "logs").glob("round_*.json"))
        assert len(logs) == 2
        second = json.loads(logs[1].read_text())
        assert second["head_from"] == "previous round" and "validation_of_incoming" in second
        assert second["optimizer_from"] == "previous round" and metrics["selected"]
        assert sorted(p.name for p in (pdir / "checkpoints" / "round_002").iterdir()) == [
            "checkpoint.json", "head.npz", "optimizer.npz", "selection.npz"]
    # the trunk moved away from its initial value, and every partner holds the same final trunk
    arrays = _trunk(res.run_dir)
    for name in ledger.partners:
        theirs = load_params(res.run_dir / "partners" / name / "trunk.npz")[0]
        assert all(np.array_equal(arrays[k], theirs[k]) for k in arrays)
    assert any("round 2/2" in line for line in lines)
    # the partners' folders are owner-only; `fedchem pull` (local mode) finds everything the ledger lists
    from fedchem.opener.fileio import readable_by_others
    from fedchem.orchestrator.cli.main import main

    assert readable_by_others(res.run_dir / "partners") == []
    for name in ledger.partners:
        assert {i["dest"] for i in ledger.outputs[name]} >= {"metrics.json", "test_predictions.npz", "head.npz",
                                                            "trunk.npz", "checkpoints/round_002", "logs/round_002.json"}
        assert main(["pull", str(res.run_dir), "--partner", name]) == 0


def test_masks_change_nothing_but_privacy(secure_run, consortium_path, tmp_path):
    """Same seed, secure aggregation off (test-only switch, each partner opting in on its own node): the same trunk
    within the quantisation error."""
    from fedchem.algo.guard.rules import PLAIN_OPT_IN
    from fedchem.orchestrator.agreement import node_dir_of

    res, _ = secure_run
    consortium, partners = load_all(consortium_path)
    opt_ins = [node_dir_of(p) / PLAIN_OPT_IN for p in partners.values()]
    try:
        for f in opt_ins:
            f.write_text("test only\n")
        plain = run_federation(consortium, partners, tmp_path / "plain", secure=False, console=lambda s: None)
    finally:
        for f in opt_ins:
            f.unlink(missing_ok=True)
    a, b = _trunk(res.run_dir), _trunk(plain.run_dir)
    diff = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a)
    scale = max(float(np.max(np.abs(a[k]))) for k in a)
    # one float32 rounding step of the trunk, at most: the masks cancel exactly in the ring
    assert diff <= scale * 2.0 ** -20, diff


def test_warm_task_processes_give_the_cold_ones_bits(secure_run, consortium_path, tmp_path, monkeypatch):
    """Local runs hand their tasks to a warm server (algo.functions.warmstart). The default run did, for every
    task; with FEDCHEM_WARM=0 every task starts its own interpreter, and the trunk and each partner's head are the
    same bit for bit (secure aggregation: the masks differ, their sum does not)."""
    from fedchem.algo.functions import warmstart

    res, _ = secure_run
    if not warmstart.supported():
        pytest.skip("this platform has no pidfds or SO_PEERCRED: local runs start every task cold")
    assert res.warm_tasks == len(res.tasks) > 0, (res.warm_tasks, len(res.tasks))
    monkeypatch.setenv("FEDCHEM_WARM", "0")
    consortium, partners = load_all(consortium_path)
    cold = run_federation(consortium, partners, tmp_path / "cold", console=lambda s: None)
    assert cold.warm_tasks == 0
    a, b = _trunk(res.run_dir), _trunk(cold.run_dir)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    for name in partners:
        ha = load_params(res.run_dir / "partners" / name / "head.npz")[0]
        hb = load_params(cold.run_dir / "partners" / name / "head.npz")[0]
        assert all(np.array_equal(ha[k], hb[k]) for k in ha)


def test_partner_dropping_out_mid_round_is_recovered(consortium_path, tmp_path, monkeypatch):
    consortium, partners = load_all(consortium_path)
    monkeypatch.setenv("FEDCHEM_TEST_FAIL", "partner-2:1:train")
    lines = []
    res = run_federation(consortium, partners, tmp_path / "drop", console=lines.append)
    ledger = Ledger.load(res.run_dir)
    assert ledger.status == "completed"
    assert ledger.rounds[0].dropped == ["partner-2"] and ledger.rounds[0].survivors == ["partner-1", "partner-3"]
    assert ledger.rounds[1].survivors == ["partner-1", "partner-3"] and ledger.dropped == {"partner-2": 1}
    assert any("partner-2" in s and "dropped" in s for s in lines)
    assert not (res.run_dir / "partners" / "partner-2" / "metrics.json").exists()


def test_a_failed_release_is_made_up_by_a_partner_not_asked_yet(consortium_path, tmp_path, monkeypatch):
    """Local mode asks only t partners to release (2 of 3, the roster rotated by the round): when one of them fails,
    the partner not asked yet releases instead and the round unmasks; nobody trained in vain, nobody is dropped."""
    consortium, partners = load_all(consortium_path)
    monkeypatch.setenv("FEDCHEM_TEST_FAIL", "partner-2:1:release")
    lines = []
    res = run_federation(consortium, partners, tmp_path / "release", console=lines.append, keep_network=True)
    ledger = Ledger.load(res.run_dir)
    assert ledger.status == "completed" and ledger.dropped == {}
    assert [r.survivors for r in ledger.rounds] == [["partner-1", "partner-2", "partner-3"]] * 2
    assert any("partner-2: failed to release its shares" in s for s in lines)
    releases = {t.round: [] for t in res.tasks.values()}
    for t in sorted(res.tasks.values(), key=lambda t: t.name):  # the tasks that ran to the end
        if t.function == "release_shares":
            releases[t.round].append(t.name.split("/")[1])
    assert releases[1] == ["partner-1", "partner-3"]  # asked: partner-1, partner-2 (failed), then partner-3
    assert releases[2] == ["partner-2", "partner-3"]  # round 2: the roster rotated by one, only t asked
    name_of = {t.task_id: t.name for t in res.tasks.values()}
    aggregate = next(t for t in res.tasks.values() if t.name == "aggregate/1")
    assert sorted(name_of[r.parent_task] for r in aggregate.inputs if r.identifier == "released_shares") == \
        ["release/partner-1/1", "release/partner-3/1"]  # the two that released
    # local mode removes from Substra's store what no later task reads once a round is recorded (run.transient);
    # keep_network leaves the store here to look at
    task_id = {t.name: t.task_id for t in res.tasks.values()}

    def stored(name: str, identifier: str) -> Path:
        asset = res.network.operator.get_task_output_asset(task_id[name], identifier).asset
        return Path(asset.address.storage_address)

    for name, identifier in [("train/partner-1/1", "masked_update"), ("train/partner-1/1", "optimizer"),
                             ("train/partner-3/1", "head"), ("release/partner-3/1", "released_shares"),
                             ("aggregate/1", "trunk"), ("train/partner-2/2", "masked_update"),
                             ("train/partner-2/2", "receipt"), ("release/partner-2/2", "released_shares")]:
        assert not stored(name, identifier).exists(), (name, identifier)
    for name, identifier in [("train/partner-1/2", "head"), ("train/partner-1/2", "optimizer"),  # final evaluation
                             ("train/partner-1/2", "selection"), ("aggregate/2", "trunk"),
                             ("keygen/partner-1", "public_keys"), ("keygen/partner-1", "secret_keys"),
                             ("deal_shares/partner-2", "sealed_shares")]:  # key set-up: read by every round
        assert stored(name, identifier).is_file(), (name, identifier)
    # the partners' pulls are hard links to what Substra stores (one machine), and outlive its removal
    ck = res.run_dir / "partners" / "partner-1" / "checkpoints"
    assert (ck / "round_002" / "optimizer.npz").stat().st_ino == stored("train/partner-1/2", "optimizer").stat().st_ino
    with np.load(ck / "round_001" / "optimizer.npz") as z:  # its stored file was removed after round 2
        assert z["format"] and len(z.files) > 1
    # where no link can be made (another file system: RAM-backed /dev/shm here), Substra's own copy
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != res.run_dir.stat().st_dev:
        import tempfile
        from fedchem.orchestrator.run.backend import fetch_output
        with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
            got = fetch_output(res.network.clients["partner-1"], task_id["train/partner-1/2"], "optimizer",
                               Path(elsewhere))
            original = stored("train/partner-1/2", "optimizer")
            assert got.stat().st_ino != original.stat().st_ino and got.read_bytes() == original.read_bytes()


def test_below_threshold_stops_cleanly_then_resumes(consortium_path, tmp_path, monkeypatch, capsys):
    """Also the file-mode scan: under umask 000, after the stopped run and after the resumed one, every file of the
    run folder and of the prepared folders is owner-only and no secret-key bundle is left."""
    consortium, partners = load_all(consortium_path)
    prepared = [p.prepared_dir for p in partners.values()]
    monkeypatch.setenv("FEDCHEM_TEST_FAIL", "partner-1:2:train,partner-3:2:train")
    run_dir = tmp_path / "stop"
    # through the command line: a clean, resumable stop exits 3 (not 2 like a typo), with a message, no traceback
    with umask(0):
        assert cli_main(["run", str(consortium_path), "--run-dir", str(run_dir)]) == EXIT_STOPPED == 3
    err = capsys.readouterr().err
    assert "threshold" in err and "--resume" in err and "Traceback" not in err
    ledger = Ledger.load(run_dir)
    assert ledger.status == "stopped" and ledger.completed_rounds == 1
    assert not (run_dir / "aggregator" / "trunk.npz").exists()  # no final trunk for a stopped run
    assert (run_dir / "partners" / "partner-1" / "checkpoints" / "round_001" / "head.npz").is_file()
    assert_owner_only_and_no_secret_left(run_dir, *prepared)
    trunk_after_round_1 = load_params(trunk_path(run_dir, 1))[0]
    monkeypatch.delenv("FEDCHEM_TEST_FAIL")
    with umask(0):
        run_federation(consortium, partners, run_dir, resume=True, console=lambda s: None)
    ledger = Ledger.load(run_dir)
    assert ledger.status == "completed" and ledger.completed_rounds == 2 and len(ledger.plans) == 2
    assert any(not np.array_equal(trunk_after_round_1[k], v) for k, v in _trunk(run_dir).items())
    assert (run_dir / "partners" / "partner-2" / "metrics.json").is_file()
    assert_owner_only_and_no_secret_left(run_dir, *prepared)


def test_failed_key_setup_leaves_a_ledger_that_says_so_and_no_secret(consortium_path, tmp_path, monkeypatch, capsys):
    """The key setup fails after every partner made its secret keys: the ledger says so, `status` shows it, and the
    secret-key bundles are gone with Substra's work folder."""
    from fedchem.orchestrator.cli.main import main
    from fedchem.orchestrator.run.backend import TaskFailed

    consortium, partners = load_all(consortium_path)
    monkeypatch.setenv("FEDCHEM_TEST_FAIL", "partner-2:1:deal")
    run_dir = tmp_path / "keys"
    with umask(0), pytest.raises(TaskFailed):
        run_federation(consortium, partners, run_dir, console=lambda s: None)
    ledger = Ledger.load(run_dir)
    assert ledger.status == "failed" and ledger.message.startswith("key setup failed") and ledger.completed_rounds == 0
    assert_owner_only_and_no_secret_left(run_dir)
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "key setup failed" in out and "--resume" in out


def _any_file_holds(folder, marker: bytes) -> bool:
    """Whether any file under `folder` contains `marker`; Substra's worker creates and deletes its task folders while
    we look, so a file or folder that vanishes mid-scan is skipped, not an error."""
    for root, _dirs, files in os.walk(folder, followlinks=True):  # os.walk ignores folders that vanish
        for name in files:
            path = Path(root) / name
            try:  # a secret-key bundle is a few kB: skip the datasets and models, so one scan stays quick
                if path.stat().st_size <= 1 << 20 and marker in path.read_bytes():
                    return True
            except OSError:
                continue
    return False


def test_ctrl_c_removes_the_secret_bundles_and_leaves_a_resumable_ledger(consortium_path, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once the key setup is done: the run's
    `finally` removes Substra's work folder with the secret-key bundles, and the ledger says it was interrupted."""
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "ctrl-c"
    cmd = [sys.executable, "-m", "fedchem.orchestrator.cli.main", "run", str(consortium_path), "--run-dir", str(run_dir)]
    # started as from a terminal: a suite launched in the background of a non-interactive shell inherits SIGINT
    # ignored, and the CLI would then (rightly) ignore the Ctrl-C; only a task that happened to run would end
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    work = run_dir / "substra-work"
    from fedchem.algo.secagg.bundles import SecretBundle

    marker = SecretBundle.FORMAT.encode()
    deadline = time.time() + 600
    found = False
    try:
        while time.time() < deadline:  # until a secret-key bundle exists
            assert proc.poll() is None, proc.stdout.read()
            os.killpg(proc.pid, signal.SIGSTOP)  # the run waits while we look: it cannot finish during a slow scan
            found = _any_file_holds(work, marker)
            if found:
                os.killpg(proc.pid, signal.SIGINT)  # delivered when the group continues
            os.killpg(proc.pid, signal.SIGCONT)
            if found:
                break
            time.sleep(0.2)
        assert found, "no secret-key bundle appeared in Substra's work folder within 10 minutes"
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    # the task process Ctrl-C hit ends quietly: its script's first line restores SIGINT's default, so no traceback
    # goes through the script or fedchem (a Ctrl-C in the interpreter's own first milliseconds, before any line of
    # the script runs, is the one window no code of ours can close); the CLI's last word is the clean message
    frames = [line for line in out.splitlines() if line.strip().startswith('File "')]
    ours = [str(ROOT / d) + os.sep for d in ("algo", "opener", "metrics", "orchestrator")] + ["function.py"]
    assert not [f for f in frames if any(o in f for o in ours)], out
    assert out.strip().splitlines()[-1].startswith("interrupted:") and not work.exists()
    ledger = Ledger.load(run_dir)
    assert ledger.status == "stopped" and "interrupted" in ledger.message


def test_nothing_another_organisation_may_read_leaks(secure_run, consortium_path):
    """Every output readable by an organisation other than its owner, and every shared run file, is scanned for
    each partner's SMILES, compound ids, task names, features, labels and head weights; masked updates must look
    uniformly random (a plain update would not)."""
    from scipy import stats

    from fedchem.orchestrator.run.backend import download

    from leakscan import blob_of, partner_needles

    res, console = secure_run
    consortium, partners = load_all(consortium_path)
    needles = {name: partner_needles(p.data.t2, p.prepared_dir,
                                     res.run_dir / "partners" / name / "head.npz")
               for name, p in partners.items()}
    # positive controls: the scanner finds each kind of needle where it is
    own = res.run_dir / "partners" / "partner-1"
    assert any(h.startswith("head weights") for h in needles["partner-1"].find(blob_of(own / "head.npz")))
    found = needles["partner-1"].find(blob_of(partners["partner-1"].prepared_dir / "X.npz"))
    assert any(h.startswith("feature indices") for h in found)
    assert needles["partner-1"].find(partners["partner-1"].data.t2.read_bytes())

    net = res.network
    org_name = {org: name for name, org in net.orgs.items()}
    scanned = 0
    masked_seen = summaries = 0
    with_tmp = res.run_dir / "leak-scan"
    for task in res.tasks.values():
        for ident, readers in task.outputs:
            others = ([n for n, o in net.orgs.items() if o != task.worker] if tuple(readers) == ("public",) else
                      [org_name[o] for o in readers if o != task.worker])
            if not others:
                continue
            if ident == "summary":  # the opt-in public figure (a Substra performance): one number and nothing else
                value = net.clients[others[0]].get_task_output_asset(task.task_id, ident).asset
                assert isinstance(value, float), value
                summaries += 1
                continue
            path = download(net, others[0], task, ident, with_tmp / task.task_id / ident)
            blob = blob_of(path)
            for name, nd in needles.items():
                hits = nd.find(blob)
                assert not hits, f"{task.name}/{ident} readable by {others} holds {name}'s {hits[:3]}"
            if ident == "masked_update":
                with np.load(path) as z:
                    vec = z["vector"]
                counts = np.bincount(np.frombuffer(vec.tobytes(), dtype=np.uint8), minlength=256)
                assert stats.chisquare(counts).pvalue > 1e-4, f"{task.name}: masked update is not uniform"
                masked_seen += 1
            scanned += 1
    assert masked_seen == 6 and summaries == 3 and scanned > 20
    shared_files = [p for p in res.run_dir.rglob("*") if p.is_file()
                    and "partners" not in p.relative_to(res.run_dir).parts
                    and "substra-work" not in p.relative_to(res.run_dir).parts
                    and "leak-scan" not in p.relative_to(res.run_dir).parts]
    assert any(p.name == "ledger.json" for p in shared_files)
    for f in shared_files:
        for name, nd in needles.items():
            assert not nd.find(blob_of(f)), f"{f} holds {name}'s private data"
    text = "\n".join(console).encode()
    for name, nd in needles.items():
        assert not nd.find(text), f"the run's console output holds {name}'s private data"


def test_killed_run_resumes_to_the_same_trunk(secure_run, consortium_path, tmp_path):
    """SIGKILL the CLI (and its task processes) in the middle of round 2, resume: the same trunk, bit for bit, as
    the uninterrupted run with the same seed (masks cancel exactly; heads come back from private checkpoints)."""
    import signal
    import subprocess
    import sys
    import time

    from fedchem.algo.secagg.bundles import SecretBundle

    res, _ = secure_run
    run_dir = tmp_path / "killed"
    work = run_dir / "substra-work"

    def secret_in_work() -> bool:
        """A secret-key bundle is in Substra's work folder (files that vanish while we look are skipped)."""
        return _any_file_holds(work, SecretBundle.FORMAT.encode())

    cmd = [sys.executable, "-m", "fedchem.orchestrator.cli.main", "run", str(consortium_path), "--run-dir", str(run_dir)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            ledger_file = run_dir / "ledger.json"
            if ledger_file.exists() and json.loads(ledger_file.read_text())["completed_rounds"] >= 1:
                # into round 2: held still at once (warm task processes make a round of this consortium last about
                # a second, less than a scan of the work folder may take), then looked at, then killed
                os.killpg(proc.pid, signal.SIGSTOP)
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        while not secret_in_work() and time.time() < deadline:  # a loaded machine may not have reached its keys
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
            assert proc.poll() is None, proc.stdout.read()
            os.killpg(proc.pid, signal.SIGSTOP)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    ledger = Ledger.load(run_dir)
    assert ledger.status == "running" and ledger.completed_rounds == 1
    # kill -9 runs no cleanup: the secret-key bundles are still in Substra's work folder; `status` removes it
    assert secret_in_work()
    status = subprocess.run([sys.executable, "-m", "fedchem.orchestrator.cli.main", "status", str(run_dir)],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "killed" in status.stdout and "removed the Substra work folder" in status.stdout
    assert not work.exists()
    done = subprocess.run([sys.executable, "-m", "fedchem.orchestrator.cli.main", "run", "--resume", str(run_dir)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    ledger = Ledger.load(run_dir)
    assert ledger.status == "completed" and ledger.completed_rounds == 2 and len(ledger.plans) == 2
    a, b = _trunk(res.run_dir), _trunk(run_dir)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # round 2 took each partner's Adam state and selection back from its private checkpoint (a fresh Adam would
    # have given another trunk), and chose the same rounds as the uninterrupted run
    for name in ledger.partners:
        log = json.loads((run_dir / "partners" / name / "logs" / "round_002.json").read_text())
        assert log["optimizer_from"] == "checkpoint" and log["head_from"] == "checkpoint"
        chosen = [json.loads((r / "partners" / name / "metrics.json").read_text())["selected"]
                  for r in (res.run_dir, run_dir)]
        assert chosen[0] == chosen[1]
