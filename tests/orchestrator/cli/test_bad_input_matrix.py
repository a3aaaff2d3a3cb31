"""The second bad-input matrix (issue 13): every mistake a new user made through the CLI, one case per row.

Each case runs the real command line (in process, `fedchem.orchestrator.cli.main`; in a subprocess only where a
process-wide limit is needed) in a working folder holding real inputs (MoleculeACE partners from tests/fedsetup.py,
a run folder from tests/reportsetup.py), and checks: the exit code, no traceback, a message naming the path or key,
and that every file under the working folder is byte-identical afterwards (no file changed, removed, moved aside or
half-written). A `run` case fails before anything is submitted to Substra.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fedchem.opener.errors import EXIT_STOPPED, FedchemError, RunStopped, from_os_error, os_errors
from fedchem.orchestrator.cli.main import build_parser, main

from reportsetup import shared_report_inputs

ME = "partner-1"


# ------------------------------------------------------------------------------------------------------- helpers

def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under root (hidden ones too), by relative path; folders as 'dir'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = ("link:" + os.readlink(p) if os.path.islink(p) else
                                             hashlib.sha256(Path(p).read_bytes()).hexdigest())
    return out


def cli(argv: list, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def expect(code: int, err: str, want: int, *fragments: str) -> None:
    assert code == want, (code, err)
    assert "Traceback" not in err, err
    if want == 2:
        assert err.lstrip().startswith("error:"), err  # (a progress bar may leave an empty line)
    for f in fragments:
        assert f in err, (f, err)


def unchanged(before: dict, root: Path, allow_new: tuple[str, ...] = ()) -> None:
    after = snapshot(root)
    changed = [k for k in before if after.get(k) != before[k]]
    new = [k for k in after if k not in before and not any(k.startswith(a) for a in allow_new)]
    assert not changed, f"pre-existing files changed or removed: {changed}"
    assert not new, f"files left behind: {new}"


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def unwritable(work: Path) -> Path:
    """A folder in which nothing can be created: a read-only folder, or (as root, who ignores permissions) sysfs."""
    if os.geteuid() != 0:
        d = work / "read-only"
        d.mkdir()
        d.chmod(0o500)
        return d
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root without /sys: no folder refuses writes")
    return Path("/sys/fedchem-cannot-write-here")


CANNOT_WRITE = ("permission denied", "operation not permitted", "read-only")


def subprocess_cli(argv: list, cwd: Path, fsize: int) -> subprocess.CompletedProcess:
    """The CLI in a child process whose files may not grow beyond `fsize` bytes (RLIMIT_FSIZE: writes fail with
    EFBIG; Python ignores SIGXFSZ), the portable stand-in for a full disk."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    code = "import sys; from fedchem.orchestrator.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "FEDCHEM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], cwd=cwd, env=env, capture_output=True,
                          text=True, preexec_fn=limit, timeout=600)


# ------------------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def run_inputs() -> dict:
    """One real build per test process, shared with test_report.py and test_predict.py (read-only here)."""
    return shared_report_inputs()


@pytest.fixture(scope="module")
def small(run_inputs) -> Path:
    """A real 3-partner consortium (raw folders, configs, secret, prepared folders); copied per case."""
    return Path(run_inputs["consortium"]).parent


@pytest.fixture
def work(small, tmp_path, monkeypatch) -> Path:
    """The working folder of one case: a copy of the consortium build under tmp_path/w, the current folder."""
    w = tmp_path / "w"
    shutil.copytree(small, w / "raw", symlinks=True)
    monkeypatch.chdir(w)
    return w


@pytest.fixture
def runwork(run_inputs, tmp_path, monkeypatch) -> dict:
    """A copy of a finished run with its consortium, prepared data and alone baselines (tests/reportsetup.py)."""
    w = tmp_path / "w"
    shutil.copytree(run_inputs["root"], w, symlinks=True)
    monkeypatch.chdir(w)
    smiles = w / "new.csv"
    smiles.write_text("input_compound_id,smiles\nn1,CCOc1ccccc1\nn2,c1ccncc1C(=O)N\nn3,CC(C)Cc1ccc(cc1)C(C)C(=O)O\n",
                      encoding="utf-8")
    return {"w": w, "raw": w / "raw", "run": w / "run", "smiles": smiles, "alone": w / "alone" / ME,
            "prepared": w / "raw" / "prepared" / ME}


def prepare_argv(w: Path, partner: str = ME) -> list:
    return ["prepare", "--consortium", w / "raw" / "consortium.yaml", "--partner", w / "raw" / partner /
            "partner.yaml", "--workers", "1"]


def predict_argv(r: dict, out) -> list:
    return ["predict", "--consortium", r["raw"] / "consortium.yaml", "--partner", r["raw"] / ME / "partner.yaml",
            "--run", r["run"], "--smiles", r["smiles"], "--out", out, "--mc-samples", "0", "--workers", "1"]


def report_argv(r: dict, *extra) -> list:
    return ["report", r["run"], "--partner", ME, "--alone", r["alone"], "--prepared", r["prepared"],
            "--bootstrap", "100", *extra]


# ------------------------------------------- row: prepare --out an existing folder (configs, raw data, `.`, parents)

@pytest.mark.parametrize("target, force", [
    pytest.param("raw", False, id="folder-holding-consortium.yaml"),
    pytest.param("raw", True, id="folder-holding-consortium.yaml--force"),
    pytest.param("raw/partner-1", False, id="partner-raw-folder"),
    pytest.param("raw/partner-1", True, id="partner-raw-folder--force"),
    pytest.param(".", False, id="dot"),
    pytest.param(".", True, id="dot--force"),
    pytest.param("..", True, id="parent-of-the-inputs--force"),
    pytest.param("raw/partner-2", True, id="another-partners-raw-folder--force"),
    pytest.param("raw/prepared", True, id="every-partners-prepared-folders--force"),
    pytest.param("raw/prepared/partner-2", False, id="another-partners-prepared-folder"),
])
def test_prepare_never_replaces_a_folder_of_inputs_or_configs(work, capsys, target, force):
    out = (work / target).resolve()
    before = snapshot(work)
    code, err = cli(prepare_argv(work) + ["--out", target] + (["--force"] if force else []), capsys)
    expect(code, err, 2, str(out) if target != "." else str(work), "names a folder that holds")
    unchanged(before, work)


def test_prepare_with_prepared_dir_dot_in_the_partner_config(work, capsys):
    edit(work / "raw" / ME / "partner.yaml", lambda d: d.update(prepared_dir="."))
    before = snapshot(work)
    code, err = cli(prepare_argv(work), capsys)
    expect(code, err, 2, str(work / "raw" / ME), "prepared_dir", "names a folder that holds")
    code, err = cli(prepare_argv(work) + ["--force"], capsys)
    expect(code, err, 2, str(work / "raw" / ME), "prepared_dir", "names a folder that holds")
    unchanged(before, work)


def test_prepare_refuses_a_user_folder_unless_forced_and_replaces_its_own_output(work, capsys):
    mine = work / "my-notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    before = snapshot(work)
    code, err = cli(prepare_argv(work) + ["--out", mine], capsys)
    expect(code, err, 2, str(mine), "already exists", "--force")
    unchanged(before, work)
    # its own previous output (recognised by manifest.json) is replaced, byte-identically for the same inputs
    code, err = cli(prepare_argv(work), capsys)
    expect(code, err, 0)
    unchanged(before, work)
    # --force replaces a user folder that holds no input
    code, err = cli(prepare_argv(work) + ["--out", mine, "--force"], capsys)
    expect(code, err, 0)
    assert (mine / "manifest.json").is_file() and not (mine / "notes.txt").exists()


# ----------------------------------------------------------------------- row: --out naming an existing file

@pytest.mark.parametrize("force", [False, True], ids=["plain", "--force"])
def test_prepare_out_naming_a_file_is_refused_and_the_file_is_not_moved(work, capsys, force):
    f = work / "notes.txt"
    f.write_text("the user's file\n")
    before = snapshot(work)
    code, err = cli(prepare_argv(work) + ["--out", f] + (["--force"] if force else []), capsys)
    expect(code, err, 2, str(f), "existing file")
    unchanged(before, work)  # in particular no hidden .notes.txt.old-PID


# ----------------------------------------------- row: output location not writable; disk full / file too large

def test_prepare_out_below_a_file(work, capsys):
    f = work / "notes.txt"
    f.write_text("the user's file\n")
    before = snapshot(work)
    code, err = cli(prepare_argv(work) + ["--out", f / "prepared"], capsys)
    expect(code, err, 2, str(f), "a part of the path is a file, not a folder")
    unchanged(before, work)


def test_prepare_into_an_unwritable_place(work, capsys):
    out = unwritable(work) / "prepared"
    before = snapshot(work)
    code, err = cli(prepare_argv(work) + ["--out", out], capsys)
    expect(code, err, 2, str(out))
    assert any(w in err for w in CANNOT_WRITE), err
    unchanged(before, work)


def test_prepare_when_files_may_not_grow_gives_a_clean_error(work):
    out = work / "prepared-big"
    before = snapshot(work)
    res = subprocess_cli(prepare_argv(work) + ["--out", out], work, fsize=1024)
    expect(res.returncode, res.stderr, 2, str(out), "larger than")
    unchanged(before, work)


def test_disk_full_becomes_a_user_error_naming_the_path(tmp_path):
    """ENOSPC for real (/dev/full), through the one translation place every command uses."""
    target = tmp_path / "out.csv"
    with pytest.raises(FedchemError) as info:
        with os_errors(target), open("/dev/full", "w") as fh:
            fh.write("x" * 100_000)
    msg = info.value.message()
    assert "no space left" in msg and str(target) in msg and info.value.exit_code == 2
    assert from_os_error(RuntimeError("a bug")) is None  # not an OS error: stays a bug with its traceback


def test_a_bug_keeps_its_traceback(tmp_path):
    with pytest.raises(OSError):
        with os_errors(tmp_path):
            raise ConnectionResetError(104, "reset")  # a network error is not a user's file problem


@pytest.mark.parametrize("target", ["raw", "raw/prepared/partner-1", "."])
def test_train_local_overwrite_never_replaces_its_inputs_or_configs(work, capsys, target):
    before = snapshot(work)
    code, err = cli(["train-local", work / "raw" / "prepared" / ME, "--out", target, "--overwrite",
                     "--consortium", work / "raw" / "consortium.yaml", "--quiet"], capsys)
    expect(code, err, 2, "names a folder that holds")
    unchanged(before, work)


# --------------------------------------------------------------- row: a finite T1 value beyond float32

@pytest.mark.parametrize("value", ["1e39", "1e308", "-3.5e38"])
def test_t1_value_beyond_float32_is_refused_with_file_and_line(work, capsys, value):
    t1 = work / "raw" / ME / "T1.csv"
    lines = t1.read_text().splitlines()
    head = lines[0].split(",")
    cells = lines[5].split(",")
    cells[head.index("standard_value")] = value
    cells[head.index("standard_units")] = ""  # on the log scale already: stored as it is
    lines[5] = ",".join(cells)
    t1.write_text("\n".join(lines) + "\n")
    before = snapshot(work)
    code, err = cli(prepare_argv(work) + ["--out", work / "p"], capsys)
    expect(code, err, 2, f"{t1}, line 6", "float32")
    assert value not in err  # the value itself is not echoed
    unchanged(before, work)


def test_t0_threshold_beyond_float32_is_refused_with_file_and_line(work, capsys):
    t0 = work / "raw" / ME / "T0.csv"
    lines = t0.read_text().splitlines()
    head = lines[0].split(",")
    cells = lines[2].split(",")
    cells[head.index("expert_threshold_1")] = "1e39"
    lines[2] = ",".join(cells)
    t0.write_text("\n".join(lines) + "\n")
    before = snapshot(work)
    code, err = cli(prepare_argv(work) + ["--out", work / "p"], capsys)
    expect(code, err, 2, f"{t0}, line 3", "expert_threshold_1", "float32")
    unchanged(before, work)


# ------------------------------------------------------------------------------------------- rows: predict

def test_predict_out_naming_a_folder(runwork, capsys):
    folder = runwork["w"] / "results"
    folder.mkdir()
    before = snapshot(runwork["w"])
    code, err = cli(predict_argv(runwork, folder), capsys)
    expect(code, err, 2, str(folder), "names a folder")
    unchanged(before, runwork["w"])


@pytest.mark.parametrize("which", ["smiles", "consortium"])
def test_predict_out_naming_an_input(runwork, capsys, which):
    target = runwork["smiles"] if which == "smiles" else runwork["raw"] / "consortium.yaml"
    before = snapshot(runwork["w"])
    code, err = cli(predict_argv(runwork, target), capsys)
    expect(code, err, 2, str(target), "one of the inputs")
    unchanged(before, runwork["w"])


@pytest.mark.parametrize("suffix", [".csv", ".smi"])
def test_predict_on_a_smiles_file_that_is_not_utf8(runwork, capsys, suffix):
    bad = runwork["w"] / f"latin1{suffix}"
    text = "input_compound_id,smiles\nn\u00e9-1,CCO\n" if suffix == ".csv" else "CCO n\u00e9-1\n"
    bad.write_bytes(text.encode("latin-1"))
    r = dict(runwork, smiles=bad)
    before = snapshot(runwork["w"])
    code, err = cli(predict_argv(r, runwork["w"] / "p.csv"), capsys)
    expect(code, err, 2, str(bad), "not UTF-8")
    unchanged(before, runwork["w"])


def test_predict_accepts_a_utf8_bom_as_prepare_does(runwork, capsys):
    bom = runwork["w"] / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + runwork["smiles"].read_bytes())
    before = snapshot(runwork["w"])
    out = runwork["w"] / "p.csv"
    code, err = cli(predict_argv(dict(runwork, smiles=bom), out), capsys)
    expect(code, err, 0)
    rows = out.read_text().splitlines()
    assert rows[0].startswith("row,input_compound_id,status") and [r.split(",")[1] for r in rows[1:]] == \
        ["n1", "n2", "n3"]
    unchanged(before, runwork["w"], allow_new=("p.csv",))


def test_predict_out_below_a_file(runwork, capsys):
    out = runwork["smiles"] / "p.csv"
    before = snapshot(runwork["w"])
    code, err = cli(predict_argv(runwork, out), capsys)
    expect(code, err, 2, str(runwork["smiles"]), "a part of the path is a file, not a folder")
    unchanged(before, runwork["w"])


def test_predict_into_an_unwritable_place(runwork, capsys):
    out = unwritable(runwork["w"]) / "p.csv"
    before = snapshot(runwork["w"])
    code, err = cli(predict_argv(runwork, out), capsys)
    expect(code, err, 2, str(out))
    assert any(w in err for w in CANNOT_WRITE), err
    unchanged(before, runwork["w"])


def test_predict_when_files_may_not_grow_gives_a_clean_error(runwork):
    out = runwork["w"] / "p.csv"
    before = snapshot(runwork["w"])
    res = subprocess_cli(predict_argv(runwork, out), runwork["w"], fsize=1024)
    expect(res.returncode, res.stderr, 2, str(out), "larger than")
    unchanged(before, runwork["w"])


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_predict_with_a_damaged_model_file(runwork, capsys, damage):
    head = runwork["run"] / "partners" / ME / "head.npz"
    head.write_bytes(head.read_bytes()[:200] if damage == "truncated" else b"not an npz at all")
    before = snapshot(runwork["w"])
    code, err = cli(predict_argv(runwork, runwork["w"] / "p.csv"), capsys)
    expect(code, err, 2, str(head), "cannot be read")
    unchanged(before, runwork["w"])


# -------------------------------------------------------------------------------------------- rows: report

@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign"])
def test_report_on_damaged_test_predictions(runwork, capsys, damage):
    pred = runwork["run"] / "partners" / ME / "test_predictions.npz"
    data = pred.read_bytes()
    pred.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "foreign": b"PK\x03\x04junk"}[damage])
    before = snapshot(runwork["w"])
    code, err = cli(report_argv(runwork, "--out", runwork["w"] / "rep"), capsys)
    expect(code, err, 2, str(pred), "cannot be read")
    unchanged(before, runwork["w"])


@pytest.mark.parametrize("target, force, expected", [
    pytest.param("mine", False, "already exists", id="user-folder"),
    pytest.param("alone/partner-1", True, "holds", id="the-baseline--force"),
    pytest.param("raw", True, "holds", id="configs-and-prepared-data--force"),
    pytest.param(".", False, "holds", id="dot"),
])
def test_report_out_never_a_folder_of_the_user_or_of_its_inputs(runwork, capsys, target, force, expected):
    (runwork["w"] / "mine").mkdir()
    (runwork["w"] / "mine" / "tasks.csv").write_text("the user's own tasks.csv\n")
    before = snapshot(runwork["w"])
    code, err = cli(report_argv(runwork, "--out", target, *(["--force"] if force else [])), capsys)
    expect(code, err, 2, str((runwork["w"] / target).resolve()) if target != "." else str(runwork["w"]), expected)
    unchanged(before, runwork["w"])


def test_report_out_naming_a_file(runwork, capsys):
    f = runwork["w"] / "report.html"
    f.write_text("<p>mine</p>\n")
    before = snapshot(runwork["w"])
    code, err = cli(report_argv(runwork, "--out", f), capsys)
    expect(code, err, 2, str(f), "existing file")
    unchanged(before, runwork["w"])


def test_report_into_an_unwritable_place(runwork, capsys):
    out = unwritable(runwork["w"]) / "rep"
    before = snapshot(runwork["w"])
    code, err = cli(report_argv(runwork, "--out", out), capsys)
    expect(code, err, 2, str(out))
    assert any(w in err for w in CANNOT_WRITE), err
    unchanged(before, runwork["w"])


# ----------------------------------------------------------------------------------------------- rows: run

def _run(work: Path, capsys, *extra) -> tuple[int, str]:
    return cli(["run", work / "raw" / "consortium.yaml", "--run-dir", work / "runs" / "r", *extra], capsys)


def _no_run(work: Path, before: dict) -> None:
    unchanged(before, work)
    assert not (work / "runs").exists(), "nothing may be written (or submitted) before the parameters are checked"


@pytest.mark.parametrize("rounds", ["0", "-2"])
def test_run_with_rounds_below_one(work, capsys, rounds):
    before = snapshot(work)
    code, err = _run(work, capsys, "--rounds", rounds)
    expect(code, err, 2, "--rounds", f"at least 1, got {rounds}")
    assert "leak" not in err
    _no_run(work, before)


def test_run_with_a_threshold_above_the_number_of_partners(work, capsys):
    edit(work / "raw" / "consortium.yaml",
         lambda d: d["federation"].setdefault("secure_aggregation", {}).update(threshold=4))
    before = snapshot(work)
    code, err = _run(work, capsys)
    expect(code, err, 2, "threshold 4", "(3)", "federation.secure_aggregation.threshold",
           str(work / "raw" / "consortium.yaml"))
    _no_run(work, before)


def test_two_partners_pointing_at_one_prepared_folder(work, capsys):
    edit(work / "raw" / "partner-2" / "partner.yaml", lambda d: d.update(prepared_dir="../prepared/partner-1"))
    before = snapshot(work)
    code, err = _run(work, capsys)
    expect(code, err, 2, "'partner-1' and 'partner-2'", "same prepared folder", "prepared_dir")
    assert "secret keys" not in err
    _no_run(work, before)


@pytest.mark.parametrize("key, value", [
    pytest.param("aggregator", "../../x", id="aggregator-dotdot"),
    pytest.param("aggregator", "a/b", id="aggregator-slash"),
    pytest.param("name", "../evil", id="consortium-name-dotdot"),
    pytest.param("name", "..", id="consortium-name-is-dotdot"),
    pytest.param("partner", "../p", id="partner-ref-dotdot"),
])
def test_names_that_become_paths_are_validated(work, capsys, key, value):
    def change(d):
        if key == "aggregator":
            d["federation"]["aggregator"] = value
        elif key == "name":
            d["name"] = value
        else:
            d["partners"][0]["name"] = value
    edit(work / "raw" / "consortium.yaml", change)
    before = snapshot(work)
    code, err = cli(["run", work / "raw" / "consortium.yaml"], capsys)  # default run folder from the name
    expected_key = {"aggregator": "federation.aggregator", "name": "'name'", "partner": "partners.0.name"}[key]
    expect(code, err, 2, str(work / "raw" / "consortium.yaml"), expected_key, "no '/', no '..'")
    _no_run(work, before)
    assert not any(p.name == "x" or p.name.startswith("evil") for p in work.parent.rglob("*"))


@pytest.mark.parametrize("content", [
    pytest.param('{"run_name": "r", "settings_hash": "ab', id="truncated-json"),
    pytest.param('{"some": "other tool"}\n', id="foreign-json"),
    pytest.param('[1, 2, 3]\n', id="json-list"),
    pytest.param('{"run_name": "r", "settings_hash": "x", "partners": "partner-1", "aggregator": "aggregator", '
                 '"rounds_planned": 2, "secure": true}\n', id="wrong-types"),
    pytest.param("\xff\xfe not text", id="not-utf8"),
])
def test_resume_on_a_corrupt_or_foreign_ledger(work, capsys, content):
    run_dir = work / "runs" / "old"
    run_dir.mkdir(parents=True)
    (run_dir / "ledger.json").write_bytes(content.encode("latin-1"))
    before = snapshot(work)
    code, err = cli(["run", work / "raw" / "consortium.yaml", "--resume", run_dir], capsys)
    expect(code, err, 2, str(run_dir / "ledger.json"), "ledger")
    unchanged(before, work)


def test_run_into_a_non_empty_folder_or_a_file(work, capsys):
    mine = work / "runs" / "r"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine\n")
    before = snapshot(work)
    code, err = _run(work, capsys)
    expect(code, err, 2, str(mine), "not empty")
    (work / "runs" / "f").write_text("a file\n")
    before = snapshot(work)
    code, err = cli(["run", work / "raw" / "consortium.yaml", "--run-dir", work / "runs" / "f"], capsys)
    expect(code, err, 2, str(work / "runs" / "f"), "existing file")
    unchanged(before, work)


def test_run_into_an_unwritable_place(work, capsys):
    out = unwritable(work) / "run"
    before = snapshot(work)
    code, err = cli(["run", work / "raw" / "consortium.yaml", "--run-dir", out], capsys)
    expect(code, err, 2, str(out))
    assert any(w in err for w in CANNOT_WRITE), err
    unchanged(before, work)


def test_resume_cannot_change_the_number_of_rounds(work, capsys):
    from fedchem.orchestrator.ledger import Ledger

    run_dir = work / "runs" / "old"
    run_dir.mkdir(parents=True)
    Ledger(run_name="old", settings_hash="x", partners=["partner-1", "partner-2", "partner-3"],
           aggregator="aggregator", rounds_planned=2, secure=True, status="stopped").save(run_dir)
    before = snapshot(work)
    code, err = cli(["run", work / "raw" / "consortium.yaml", "--resume", run_dir, "--rounds", "5"], capsys)
    expect(code, err, 2, "keeps its 2 rounds", str(run_dir / "ledger.json"))
    unchanged(before, work)


# --------------------------------------------------------------------- row: a stopped, resumable run exits 3

def test_a_clean_stop_is_exit_3_and_resumable(tmp_path):
    """The driver's stop (run.context.stopped) records the stop and yields the exit-3 error; the real Substra
    stop-and-resume path through `main` is tests/e2e/test_federation_e2e.py::test_below_threshold_stops_cleanly..."""
    from fedchem.orchestrator.run.context import stopped as _stopped
    from fedchem.orchestrator.ledger import Ledger

    ledger = Ledger(run_name="r", settings_hash="x", partners=["a", "b", "c"], aggregator="agg", rounds_planned=3,
                    secure=True, completed_rounds=1, status="running")
    lines: list[str] = []
    exc = _stopped(ledger, tmp_path, lines.append, "round 2: only 1 of 3 partners submitted")
    assert isinstance(exc, RunStopped) and exc.exit_code == EXIT_STOPPED == 3
    assert Ledger.load(tmp_path).status == "stopped" and "--resume" in exc.message()
    assert any("resumable from round 2" in s for s in lines)


# ------------------------------------------------------------------- row: exit codes in every --help epilog

def _all_parsers(parser: argparse.ArgumentParser, path=("fedchem",)):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, (*path, name))


def test_every_help_documents_the_exit_codes():
    parsers = dict(_all_parsers(build_parser()))
    assert {"fedchem prepare", "fedchem run", "fedchem report", "fedchem predict", "fedchem data moleculeace",
            "fedchem train-local", "fedchem status"} <= set(parsers)
    for name, p in parsers.items():
        text = p.format_help()
        for line in ("exit codes:", "0  done", "2  a mistake", "3  a federated run stopped cleanly"):
            assert line in text, (name, line)


def test_force_flags_are_documented():
    parsers = dict(_all_parsers(build_parser()))
    assert "--force" in parsers["fedchem prepare"].format_help()
    assert "--force" in parsers["fedchem report"].format_help()


# ---------------------------------------------------- row: `fedchem data` per-partner facts stay with the partner

def test_build_json_keeps_each_partners_facts_in_its_own_folder(small):
    root = json.loads((small / "build.json").read_text())
    assert root["partners"] == ["partner-1", "partner-2", "partner-3"]  # names only (they are in consortium.yaml)
    shared_text = (small / "build.json").read_text()
    for name in root["partners"]:
        mine = json.loads((small / name / "build.json").read_text())
        assert mine["partner"]["name"] == name and mine["partner"]["groups"]
        assert mine["partner"]["compounds"] > 0
        for target in mine["partner"]["groups"]:
            assert target not in shared_text, f"{name}'s target {target} is in the shared build.json"
        others = [json.loads((small / o / "build.json").read_text())["partner"]["groups"]
                  for o in root["partners"] if o != name]
        assert not set(mine["partner"]["groups"]) & {g for gs in others for g in gs}  # split by target
        assert not any(o in (small / name / "build.json").read_text() for o in root["partners"] if o != name)
