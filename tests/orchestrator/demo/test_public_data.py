"""`fedchem data ...`: partner folders built from the real public sets are consistent, split as documented, load
with the project's config models, are reproducible, and bad situations give clear errors with nothing half-written.

The MoleculeACE wheel is downloaded for real from PyPI once into <repo>/.cache (or $FEDCHEM_CACHE) and reused.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from fedchem.opener.public import moleculeace as ma
from fedchem.opener.errors import DataError, FedchemError
from fedchem.opener.fileio import sha256_file
from fedchem.opener.public.biogen import detect_limits
from fedchem.opener.public.common import QUALIFIERS, T0_COLUMNS, T1_COLUMNS, T2_COLUMNS
from fedchem.opener.public.herg import technology
from fedchem.opener.public.moleculenet import provider
from fedchem.orchestrator.cli import main as cli
from fedchem.orchestrator.demo import public_data as pdata
from fedchem.orchestrator.config import load_all, load_partner

MAX_PER_TARGET = 60


# ----------------------------------------------------------------------------------------------------- helpers

def _read(path: Path, header: list[str]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == header, path
        return list(reader)


def _partner(folder: Path) -> dict:
    """Read one partner folder and check T0/T1/T2 are consistent with each other and with the contract."""
    t0 = _read(folder / "T0.csv", T0_COLUMNS)
    t1 = _read(folder / "T1.csv", T1_COLUMNS)
    t2 = _read(folder / "T2.csv", T2_COLUMNS)
    cids = [r["input_compound_id"] for r in t2]
    aids = [r["input_assay_id"] for r in t0]
    assert len(cids) == len(set(cids)), "compound ids must be unique in T2"
    assert len(aids) == len(set(aids)), "assay ids must be unique in T0"
    assert all(r["smiles"] for r in t2)
    assays = {r["input_assay_id"]: r for r in t0}
    for r in t0:
        assert r["assay_type"]
        assert r["use_in_regression"] in ("true", "false") and r["is_binary"] in ("true", "false")
        assert r["auxiliary"] in ("true", "false") and r["direction"] in ("high", "low")
        thresholds = [r[f"expert_threshold_{i}"] for i in range(1, 6)]
        assert all(math.isfinite(float(t)) for t in thresholds if t)
        if r["is_binary"] == "true":
            assert r["use_in_regression"] == "false"
        else:
            assert any(thresholds), "a non-binary assay needs at least one threshold"
    used_c, used_a = set(), set()
    for r in t1:
        assert r["input_assay_id"] in assays
        assert r["standard_qualifier"] in QUALIFIERS
        value = float(r["standard_value"])
        assert math.isfinite(value)
        assert r["standard_units"] in ("", "nM")
        if assays[r["input_assay_id"]]["is_binary"] == "true":
            assert r["standard_value"] in ("0", "1") and r["standard_qualifier"] == "="
        used_c.add(r["input_compound_id"])
        used_a.add(r["input_assay_id"])
    assert used_c == set(cids), "every T2 compound has a measurement and every T1 compound is in T2"
    assert used_a == set(aids), "every T0 assay has a measurement"
    return {"t0": t0, "t1": t1, "t2": t2, "assays": set(aids), "compounds": set(cids)}


def _check_build(summary: pdata.BuildSummary, n_partners: int) -> list[dict]:
    """Every partner folder is consistent; the configs load with load_all; the secret is private."""
    out = summary.out_dir
    assert len(summary.partner_dirs) == n_partners
    parts = [_partner(d) for d in summary.partner_dirs]
    for s, p in zip(summary.partners, parts):
        assert (s.compounds, s.assays, s.measurements) == (len(p["t2"]), len(p["t0"]), len(p["t1"]))
    secret = out / "consortium.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) == 64
    if n_partners >= 2:
        consortium, partners = load_all(out / "consortium.yaml")
        assert sorted(partners) == sorted(d.name for d in summary.partner_dirs)
        consortium.secret.read("consortium secret")
        for name, cfg in partners.items():
            assert cfg.data.t1 == (out / name / "T1.csv").resolve()
            assert cfg.prepared_dir == (out / "prepared" / name).resolve()
    else:
        assert not (out / "consortium.yaml").exists()
        load_partner(summary.partner_dirs[0] / "partner.yaml")
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temp folders left over"
    return parts


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _source_rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _run_cli(argv: list[str]) -> int:
    """The real `fedchem` entry point with only this command registered (others may not exist yet)."""
    saved = list(cli.COMMAND_MODULES)
    cli.COMMAND_MODULES[:] = ["data"]
    try:
        return cli.main(argv)
    finally:
        cli.COMMAND_MODULES[:] = saved


# --------------------------------------------------------------------------------------------------- shipped sets

@pytest.fixture(scope="module")
def builds(tmp_path_factory, public_data_dir):
    base = tmp_path_factory.mktemp("builds")
    return {
        "tox21": pdata.build_tox21(base / "tox21", 3),
        "toxcast": pdata.build_toxcast(base / "toxcast", 3),
        "herg": pdata.build_herg(base / "herg", 3),
        "biogen": pdata.build_biogen(base / "biogen", 3),
    }


def test_tox21_compounds_split_every_partner_has_all_tasks(builds, public_data_dir):
    parts = _check_build(builds["tox21"], 3)
    source = _source_rows(public_data_dir / "tox21.csv.gz")
    tasks = {c for c in source[0] if c not in ("smiles", "mol_id")}
    for p in parts:
        assert p["assays"] == tasks
        assert all(r["is_binary"] == "true" for r in p["t0"])
    ids = [p["compounds"] for p in parts]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(i) for i in ids) == len(source)
    labels = sum(1 for r in source for t in tasks if r[t] != "")
    assert sum(len(p["t1"]) for p in parts) == labels


def test_toxcast_no_provider_at_two_partners(builds, public_data_dir):
    parts = _check_build(builds["toxcast"], 3)
    providers = [{provider(a) for a in p["assays"]} for p in parts]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not (providers[i] & providers[j])
    header = _source_rows(public_data_dir / "toxcast.csv.gz")[0].keys()
    assert set().union(*providers) == {provider(c) for c in header if c != "smiles"}
    assert parts[0]["compounds"] & parts[1]["compounds"], "compounds overlap between providers' partners"


def test_herg_technology_split_real_qualifiers_in_nm(builds, public_data_dir):
    parts = _check_build(builds["herg"], 3)
    assays = [p["assays"] for p in parts]
    assert sum(len(a) for a in assays) == len(set().union(*assays)), "a technology is at one partner only"
    rows = [r for p in parts for r in p["t1"]]
    assert all(r["standard_units"] == "nM" for r in rows)
    source = _source_rows(public_data_dir / "chembl_herg.csv.gz")
    for q in QUALIFIERS:  # every real relation reaches the partner files, none invented, none lost
        assert sum(r["standard_qualifier"] == q for r in rows) == sum(r["standard_relation"] == q for r in source)
    assert any(r["standard_qualifier"] == ">" for r in rows) and any(r["standard_qualifier"] == "<" for r in rows)
    assert sorted(float(r["standard_value"]) for r in rows) == sorted(float(r["standard_value"]) for r in source)
    for p in parts:
        for r in p["t0"]:
            assert (r["expert_threshold_1"], r["expert_threshold_2"], r["use_in_regression"]) == ("5", "6", "true")


def test_herg_technology_rules_on_real_descriptions():
    assert technology("Inhibition of human ERG by patch clamp assay") == "patch_clamp"
    assert technology("Binding affinity to human ERG expressed in CHOK1 cells by IonWorks HT assay") == "patch_clamp"
    assert technology("Displacement of [3H]dofetilide from human ERG") == "binding"
    assert technology("Inhibition of human ERG channel by fluorescence polarization assay") == "binding"
    assert technology("Inhibition of human ERG expressed in CHO cells by Rb efflux assay") == "flux"
    assert technology("Inhibition of human ERG by thallium flux assay") == "flux"
    assert technology("Inhibition of human ERG") == "other"


def test_biogen_censored_at_detected_limits(builds, public_data_dir):
    parts = _check_build(builds["biogen"], 3)
    by_assay: dict[str, list[tuple[str, float]]] = {}
    for p in parts:
        for r in p["t1"]:
            by_assay.setdefault(r["input_assay_id"], []).append((r["standard_qualifier"], float(r["standard_value"])))
    lower = upper = 0
    for assay, rows in by_assay.items():
        values = [v for _, v in rows]
        lo, hi = min(values), max(values)
        for q, v in rows:
            assert q in ("<", "=", ">")
            if q == "<":
                assert v == lo, f"{assay}: '<' only at the lower limit"
            if q == ">":
                assert v == hi, f"{assay}: '>' only at the upper limit"
        n_lt = sum(q == "<" for q, _ in rows)
        n_gt = sum(q == ">" for q, _ in rows)
        if n_lt:  # a detected limit censors every value sitting on it
            assert n_lt == sum(v == lo for v in values) and n_lt >= 5
        if n_gt:
            assert n_gt == sum(v == hi for v in values) and n_gt >= 5
        lower += n_lt
        upper += n_gt
    assert lower and upper
    # MDR1 efflux ratio has no pile-up at either end in the source: nothing censored there
    assert all(q == "=" for q, _ in by_assay["MDR1_MDCK_ER_LOG"])


def test_detect_limits_rule():
    piled = [0.5] * 10 + [0.6 + i / 100 for i in range(90)]
    assert detect_limits(piled).lower == 0.5 and detect_limits(piled).upper is None
    assert detect_limits([-x for x in piled]).upper == -0.5
    few = [0.5] * 3 + [0.6 + i / 100 for i in range(90)]
    assert detect_limits(few).lower is None
    big = [0.5] * 9 + [0.6 + i / 1000 for i in range(991)]  # 9 < 1% of 1000
    assert detect_limits(big).lower is None


def test_muv_one_partner_for_the_benchmark(tmp_path, public_data_dir):
    summary = pdata.build_muv(tmp_path / "muv")
    assert summary.consortium is None
    (part,) = _check_build(summary, 1)
    assert len(part["t2"]) == len(_source_rows(public_data_dir / "muv.csv.gz"))
    assert len(part["assays"]) == 17


def test_rerun_is_identical_and_force_keeps_the_secret(tmp_path, public_data_dir):
    a = pdata.build_biogen(tmp_path / "a", 2)
    b = pdata.build_biogen(tmp_path / "b", 2)
    fa, fb = _files(a.out_dir), _files(b.out_dir)
    assert fa["consortium.secret"] != fb["consortium.secret"], "each new build gets its own secret"
    fa.pop("consortium.secret"), fb.pop("consortium.secret")
    assert fa == fb
    before = _files(a.out_dir)
    (a.out_dir / "prepared").mkdir()
    pdata.build_biogen(a.out_dir, 2, force=True)
    assert _files(a.out_dir) == before
    assert not (a.out_dir / "prepared").exists()


def test_existing_output_refused_without_force(tmp_path, public_data_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FedchemError, match="already exists and is not an output"):
        pdata.build_tox21(out, 2)
    assert _files(out) == {"keep.txt": b"mine"}
    empty = tmp_path / "empty"
    empty.mkdir()
    pdata.build_biogen(empty, 2)  # an empty folder is fine
    assert (empty / "consortium.yaml").is_file()


def test_impossible_split_leaves_nothing(tmp_path, public_data_dir):
    with pytest.raises(DataError, match="at most"):
        pdata.build_herg(tmp_path / "h", 9)
    assert list(tmp_path.iterdir()) == []


def test_cli_builds_from_the_shipped_data(tmp_path, capsys):
    assert _run_cli(["data", "biogen", "--partners", "2", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "partner-2" in out and "measurements" in out and "fedchem prepare" in out
    assert _run_cli(["data", "biogen", "--out", str(tmp_path / "b")]) == 2
    assert "--force" in capsys.readouterr().err


def test_an_altered_or_missing_shipped_file_is_refused(tmp_path, public_data_dir):
    """The readers check both SHA256SUMS and their own pin: a changed byte, or a re-pinned SUMS, is refused."""
    from fedchem.opener.public import files as public_files, herg as public_herg

    copy = tmp_path / "data"
    shutil.copytree(public_data_dir, copy)
    public_herg.split_herg(2, copy)  # an exact copy reads fine
    raw = bytearray((copy / "chembl_herg.csv.gz").read_bytes())
    raw[-9] ^= 0xFF
    (copy / "chembl_herg.csv.gz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="does not match its pinned sha256"):
        public_herg.split_herg(2, copy)
    altered = sha256_file(copy / "chembl_herg.csv.gz")
    sums = (copy / "SHA256SUMS").read_text().replace(public_herg.SOURCE_SHA256, altered)
    (copy / "SHA256SUMS").write_text(sums)
    with pytest.raises(DataError, match="not pinned as this reader expects"):
        public_herg.split_herg(2, copy)
    (copy / "tox21.csv.gz").unlink()
    with pytest.raises(DataError, match="not found"):
        public_files.public_file("tox21.csv.gz", "0" * 64, copy)


# ---------------------------------------------------------------------------------------------------- MoleculeACE

@pytest.fixture(scope="module")
def wheel() -> Path:
    return ma.fetch_wheel()  # real download the first time, then the cached, sha256-checked file


def test_moleculeace_wheel_is_pinned(wheel):
    assert wheel.stat().st_size == ma.WHEEL_SIZE


def test_moleculeace_split_by_targets(tmp_path, wheel):
    summary = pdata.build_moleculeace(tmp_path / "m", 3, "targets", MAX_PER_TARGET, wheel.parent.parent)
    parts = _check_build(summary, 3)
    assays = [p["assays"] for p in parts]
    assert sum(len(a) for a in assays) == len(set().union(*assays)) == 30, "targets split disjointly"
    assert parts[0]["compounds"] & (parts[1]["compounds"] | parts[2]["compounds"]), "chemistry overlaps"
    for p in parts:
        counts = {}
        for r in p["t1"]:
            counts[r["input_assay_id"]] = counts.get(r["input_assay_id"], 0) + 1
            assert r["standard_units"] == "" and r["standard_qualifier"] == "="
        assert max(counts.values()) == MAX_PER_TARGET
        assert {(r["expert_threshold_1"], r["expert_threshold_2"], r["expert_threshold_3"]) for r in p["t0"]} == \
            {("6", "7", "8")}
    again = pdata.build_moleculeace(tmp_path / "m2", 3, "targets", MAX_PER_TARGET, wheel.parent.parent)
    fa, fb = _files(summary.out_dir), _files(again.out_dir)
    fa.pop("consortium.secret"), fb.pop("consortium.secret")
    assert fa == fb


def test_moleculeace_values_are_p_scale(tmp_path, wheel):
    """pKi = 9 - log10(nM), checked against the raw CSV inside the wheel."""
    summary = pdata.build_moleculeace(tmp_path / "m", 2, "targets", None, wheel.parent.parent)
    with zipfile.ZipFile(wheel) as z:
        raw = list(csv.DictReader(io.TextIOWrapper(
            z.open("MoleculeACE/Data/benchmark_data/CHEMBL204_Ki.csv"), encoding="utf-8")))
    expected = sorted(9 - math.log10(float(r["exp_mean [nM]"])) for r in raw)
    got = sorted(float(r["standard_value"]) for d in summary.partner_dirs
                 for r in _read(d / "T1.csv", T1_COLUMNS) if r["input_assay_id"] == "CHEMBL204_Ki")
    assert len(got) == len(expected) and max(abs(a - b) for a, b in zip(got, expected)) < 1e-5
    with zipfile.ZipFile(wheel) as z:
        total = sum(len(list(csv.DictReader(io.TextIOWrapper(z.open(n), encoding="utf-8"))))
                    for n in z.namelist() if ma.MEMBER.match(n))
    assert sum(p.measurements for p in summary.partners) == total, "without --max-per-target nothing is dropped"


def test_moleculeace_split_by_compounds(tmp_path, wheel):
    summary = pdata.build_moleculeace(tmp_path / "m", 3, "compounds", MAX_PER_TARGET, wheel.parent.parent)
    parts = _check_build(summary, 3)
    assert parts[0]["assays"] == parts[1]["assays"] == parts[2]["assays"] and len(parts[0]["assays"]) == 30
    ids = [p["compounds"] for p in parts]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    per_assay: dict[str, int] = {}
    for p in parts:
        for r in p["t1"]:
            per_assay[r["input_assay_id"]] = per_assay.get(r["input_assay_id"], 0) + 1
    assert set(per_assay.values()) == {MAX_PER_TARGET}


def test_moleculeace_bad_sha256_refused(tmp_path, wheel):
    cache = tmp_path / "cache"
    (cache / "moleculeace").mkdir(parents=True)
    bad = cache / "moleculeace" / ma.WHEEL_NAME
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="sha256") as info:
        pdata.build_moleculeace(tmp_path / "out", 3, cache_dir=cache)
    assert "delete" in info.value.fix
    assert not (tmp_path / "out").exists()


def test_moleculeace_offline_is_a_clear_error(tmp_path, monkeypatch):
    """No reachable index (a closed local port stands in for a machine without network): a clear DataError."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(DataError, match="could not download") as info:
        ma.fetch_wheel(tmp_path / "cache")
    assert "PyPI" in info.value.fix
    assert not (tmp_path / "cache" / "moleculeace" / ma.WHEEL_NAME).exists()
    assert list((tmp_path / "cache" / "moleculeace").iterdir()) == []


def test_moleculeace_too_many_partners_for_targets(tmp_path, wheel):
    with pytest.raises(DataError, match="at most 30"):
        pdata.build_moleculeace(tmp_path / "m", 31, "targets", 5, wheel.parent.parent)
    assert not (tmp_path / "m").exists()


def test_data_force_never_replaces_the_current_folder(tmp_path, monkeypatch, capsys):
    """`fedchem data ... --out . --force` used to replace the current folder and everything in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    code = cli.main(["data", "tox21", "--out", ".", "--partners", "2", "--force"])
    assert code == 2 and "current folder" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"
