"""MoleculeACE 3.0.0 (PyPI, MIT): 30 ChEMBL Ki/EC50 targets, read out of the sha256-pinned wheel, as partners.

The wheel is fetched with `pip download --no-deps` into a cache folder (never pip-installed: it pulls in unrelated
packages) and read with zipfile. Each `CHEMBL<id>_<Ki|EC50>.csv` has `smiles, exp_mean [nM], y, cliff_mol, split`
with y = -log10(nM); we write p-values (pKi / pEC50 = 9 - log10(nM) = 9 + y) with empty units, so preparation uses
them as they are. MoleculeACE's own train/test column is ignored (preparation assigns scaffold folds).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from fedchem.opener.errors import DataError
from fedchem.opener.fileio import move_into_place
from fedchem.opener.public.common import (Assay, PartnerTables, check_partners, fmt_value, new_partners,
                                          parse_float, require_nonempty, sha256_file, structure_bucket,
                                          structure_rank)

PACKAGE = "MoleculeACE==3.0.0"
WHEEL_NAME = "MoleculeACE-3.0.0-py3-none-any.whl"
WHEEL_SHA256 = "c2028c9a75281eab53d3b3e7dc11cbc8ac970d008bac4a0d3927f11ac2024bdc"
WHEEL_SIZE = 1_128_881
MEMBER = re.compile(r"^MoleculeACE/Data/benchmark_data/(CHEMBL\d+_(Ki|EC50))\.csv$")
THRESHOLDS = (6.0, 7.0, 8.0)  # pKi / pEC50: 1 uM, 100 nM, 10 nM
SPLITS = ("targets", "compounds")


def default_cache_dir() -> Path:
    """$FEDCHEM_CACHE, else `<repo>/.cache` when running from a checkout, else `./.cache`."""
    env = os.environ.get("FEDCHEM_CACHE")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache"
    return Path.cwd() / ".cache"


def fetch_wheel(cache_dir: Path | None = None) -> Path:
    """The MoleculeACE wheel in the cache, downloaded with pip if absent; refused unless its sha256 is the pinned one."""
    folder = Path(cache_dir or default_cache_dir()) / "moleculeace"
    path = folder / WHEEL_NAME
    if path.is_file():
        _check_wheel(path, "the cached MoleculeACE wheel", fix="delete that file and re-run to download it again")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(tmp), PACKAGE]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            proc = None
        got = tmp / WHEEL_NAME
        if proc is None or proc.returncode != 0 or not got.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200] if proc else "timed out"
            raise DataError(f"could not download {PACKAGE} from PyPI (pip: {last})", where=str(path),
                            fix=f"check network access to PyPI, or place the wheel there by hand "
                                f"(sha256 {WHEEL_SHA256})")
        _check_wheel(got, "the downloaded MoleculeACE wheel", fix="retry; if it persists, PyPI served another file")
        move_into_place(got, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _check_wheel(path: Path, what: str, fix: str) -> None:
    if sha256_file(path) != WHEEL_SHA256:
        raise DataError(f"{what} does not match the pinned sha256 {WHEEL_SHA256[:12]}... (corrupt or altered)",
                        where=str(path), fix=fix)


def read_targets(wheel: Path) -> dict[str, list[tuple[str, float]]]:
    """target name (e.g. 'CHEMBL204_Ki') -> [(smiles, p-value)], in file order, p = 9 - log10(exp_mean nM)."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError):
        raise DataError("the MoleculeACE wheel is not a readable zip file", where=str(wheel),
                        fix="delete it and re-run to download it again") from None
    targets: dict[str, list[tuple[str, float]]] = {}
    with archive:
        for member in sorted(archive.namelist()):
            m = MEMBER.match(member)
            if not m:
                continue
            rows = list(csv.DictReader(io.TextIOWrapper(archive.open(member), encoding="utf-8")))
            out = []
            for i, row in enumerate(rows, start=2):
                where = f"{wheel.name}:{member}, row {i}"
                nm = parse_float(row.get("exp_mean [nM]", ""), where)
                y = parse_float(row.get("y", ""), where)
                if nm <= 0 or abs((9.0 - math.log10(nm)) - (9.0 + y)) > 1e-6:
                    raise DataError("value and y = -log10(nM) disagree; the file layout is not the expected one",
                                    where=where)
                out.append((row["smiles"], 9.0 - math.log10(nm)))
            targets[m.group(1)] = out
    if len(targets) != 30:
        raise DataError(f"expected 30 MoleculeACE targets, found {len(targets)}", where=str(wheel))
    return targets


def split_moleculeace(targets: dict[str, list[tuple[str, float]]], n_partners: int, split: str = "targets",
                      max_per_target: int | None = None) -> list[PartnerTables]:
    """Deal targets round-robin (sorted) to partners, or split every target's compounds by a hash of the SMILES."""
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'", where="--split", fix=f"use one of {', '.join(SPLITS)}")
    check_partners(n_partners, len(targets) if split == "targets" else None, f"{len(targets)} targets")
    if max_per_target is not None and max_per_target < 1:
        raise DataError("--max-per-target must be at least 1", where="--max-per-target")
    ids: dict[str, str] = {}
    for name in sorted(targets):
        for smiles, _ in targets[name]:
            ids.setdefault(smiles, f"MA{len(ids):05d}")
    partners = new_partners(n_partners)
    for t, name in enumerate(sorted(targets)):
        rows = targets[name]
        if max_per_target is not None:
            rows = sorted(rows, key=lambda r: structure_rank(r[0]))[:max_per_target]
        assay = Assay(assay_id=name, thresholds=THRESHOLDS)
        for smiles, p in rows:
            k = t % n_partners if split == "targets" else structure_bucket(smiles, n_partners)
            partners[k].add(ids[smiles], smiles, assay, "=", fmt_value(round(p, 6)))
    for p in partners:
        p.groups = sorted(p.assays)
    return require_nonempty(partners, "MoleculeACE")
