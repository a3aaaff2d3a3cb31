"""Build ready-to-prepare consortium folders (T0/T1/T2 per partner + configs + secret) from real public sets.

Layout of a build folder:
    consortium.yaml      ConsortiumConfig (written when there are >= 2 partners; `fedchem run` needs two)
    consortium.secret    secrets.token_hex(32), mode 0600 (kept when an existing build is replaced with force)
    build.json           source, sha256, split, options, the partners' names (nothing about any partner's data)
    partner-<i>/         T0.csv, T1.csv, T2.csv, partner.yaml (prepared_dir: ../prepared/partner-<i>) and build.json:
                         that partner's own counts and task groups (e.g. its targets), in its own folder only
Everything is written to a temporary sibling folder, validated with load_all, then renamed into place.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.errors import ConfigError, DataError
from fedchem.opener.fileio import atomic_folder
from fedchem.opener.output_guard import check_output_folder
from fedchem.opener.public.common import PartnerTables
from fedchem.orchestrator.config import load_all, load_partner

SECRET_FILE = "consortium.secret"


@dataclass
class PartnerSummary:
    """Counts of one partner folder (safe to print: no structures, ids or values)."""

    name: str
    folder: Path
    groups: list[str]
    compounds: int
    assays: int
    measurements: int
    qualifiers: dict[str, int]


@dataclass
class BuildSummary:
    """What a build wrote: the partner folders, the consortium config (None with one partner) and notes."""

    set_name: str
    out_dir: Path
    partners: list[PartnerSummary]
    consortium: Path | None
    notes: list[str] = field(default_factory=list)

    @property
    def partner_dirs(self) -> list[Path]:
        return [p.folder for p in self.partners]


def check_output(out_dir: Path, force: bool) -> None:
    """Refuse an existing non-empty output folder (or a file in the way) unless force is given, and even with force
    the current folder or one holding it (replacing it would delete what the user keeps there)."""
    check_output_folder(Path(out_dir), command="fedchem data", is_previous=lambda folder: False, force=force,
                        flag="--out")


def write_build(set_name: str, partners: list[PartnerTables], out_dir: Path, info: dict,
                preparation: PreparationConfig | None = None, force: bool = False,
                notes: list[str] | None = None) -> BuildSummary:
    """Write partner folders, configs, secret and build.json atomically; validate them before the rename."""
    out_dir = Path(out_dir).absolute()
    check_output(out_dir, force)
    with atomic_folder(out_dir) as tmp:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it 0700; the build folder itself is not secret
        summaries = []
        for p in partners:
            folder = tmp / p.name
            p.write(folder)
            _write_yaml(folder / "partner.yaml", {
                "name": p.name,
                "data": {"t0": "T0.csv", "t1": "T1.csv", "t2": "T2.csv"},
                "prepared_dir": f"../prepared/{p.name}",
            })
            summaries.append(PartnerSummary(p.name, out_dir / p.name, list(p.groups), p.n_compounds, p.n_assays,
                                            p.n_measurements, p.qualifier_counts()))
        _write_secret(tmp / SECRET_FILE, out_dir / SECRET_FILE if force else None)
        preparation = preparation or PreparationConfig()
        consortium = None
        if len(partners) >= 2:
            consortium = out_dir / "consortium.yaml"
            _write_yaml(tmp / "consortium.yaml", {
                "name": f"public-{set_name}",
                "secret": {"file": SECRET_FILE},
                "fingerprint": FingerprintConfig().model_dump(mode="json"),
                "preparation": preparation.model_dump(mode="json"),
                "partners": [{"name": p.name, "config": f"{p.name}/partner.yaml"} for p in partners],
                "federation": {"aggregator": "aggregator"},
            })
        notes = list(notes or [])
        if consortium is None:
            notes.append("one partner only: no consortium.yaml (`fedchem run` needs two); to prepare and train-local "
                         "alone, write a consortium file that lists this partner, or build with --partners 2 or more")
        _write_build_json(tmp / "build.json", set_name, info, summaries, notes)
        _validate(tmp, partners, consortium is not None)
    return BuildSummary(set_name, out_dir, summaries, consortium, notes)


def _write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), encoding="utf-8")


def _write_secret(path: Path, previous: Path | None) -> None:
    """A fresh 32-byte hex secret (file mode 0600); an existing build's secret is kept when it is replaced."""
    value = None
    if previous is not None and previous.is_file():
        old = previous.read_text(encoding="utf-8").strip()
        if len(old) >= 32:
            value = old
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write((value or secrets.token_hex(32)) + "\n")
    os.chmod(path, 0o600)


def _write_build_json(path: Path, set_name: str, info: dict, summaries: list[PartnerSummary],
                      notes: list[str]) -> None:
    """The shared build.json holds the provenance and the partners' names; each partner's own facts (its task
    groups, e.g. its targets, and counts) go to build.json in that partner's folder, which only it receives."""
    for s in summaries:
        d = asdict(s)
        d.pop("folder")
        mine = {"set": set_name, **info, "partner": d}
        (path.parent / s.name / "build.json").write_text(json.dumps(mine, indent=2) + "\n", encoding="utf-8")
    doc = {"set": set_name, **info, "partners": [s.name for s in summaries], "notes": notes}
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _validate(tmp: Path, partners: list[PartnerTables], with_consortium: bool) -> None:
    """The written configs load with the project's own models (any problem here is a bug in this module)."""
    try:
        if with_consortium:
            consortium, loaded = load_all(tmp / "consortium.yaml")
            consortium.secret.read("consortium secret")
            assert sorted(loaded) == sorted(p.name for p in partners)
        else:
            for p in partners:
                load_partner(tmp / p.name / "partner.yaml")
    except ConfigError as exc:
        raise ConfigError(f"the generated configs do not validate ({exc.what})", where=exc.where,
                          fix="report this as a bug in fedchem data") from None



# --------------------------------------------------------------------------------------------- one per public set

def build_moleculeace(out_dir: Path, n_partners: int = 3, split: str = "targets", max_per_target: int | None = None,
                      cache_dir: Path | None = None, force: bool = False) -> BuildSummary:
    """MoleculeACE 3.0.0 (30 ChEMBL targets, pKi/pEC50) split by target (default) or by compound."""
    from fedchem.opener.public import moleculeace as ma

    check_output(out_dir, force)
    wheel = ma.fetch_wheel(cache_dir)
    partners = ma.split_moleculeace(ma.read_targets(wheel), n_partners, split, max_per_target)
    info = {"source": f"PyPI {ma.PACKAGE} ({ma.WHEEL_NAME}), MoleculeACE/Data/benchmark_data/*.csv",
            "sha256": ma.WHEEL_SHA256, "licence": "MIT (MoleculeACE); data from ChEMBL (CC BY-SA 3.0)",
            "split": split, "max_per_target": max_per_target,
            "values": "pKi / pEC50 = 9 - log10(exp_mean nM), units empty",
            "thresholds": list(ma.THRESHOLDS)}
    return write_build("moleculeace", partners, out_dir, info, force=force)


def build_tox21(out_dir: Path, n_partners: int = 3, force: bool = False) -> BuildSummary:
    """Tox21: 12 binary tasks, compounds split by a hash of the SMILES, every partner has every task."""
    from fedchem.opener.public import moleculenet as mn

    check_output(out_dir, force)
    partners = mn.split_by_compound("tox21.csv.gz", n_partners)
    info = {"source": "tox21.csv.gz (MoleculeNet, chemprop data/tox21.csv @ 3f2b7337)",
            "sha256": mn.SOURCES["tox21.csv.gz"], "licence": "MIT (chemprop repository)",
            "split": "compounds by sha256(SMILES) mod N", "values": "binary 0/1"}
    return write_build("tox21", partners, out_dir, info, force=force)


def build_toxcast(out_dir: Path, n_partners: int = 3, force: bool = False) -> BuildSummary:
    """ToxCast: binary tasks, assay providers dealt to partners (no provider at two partners)."""
    from fedchem.opener.public import moleculenet as mn

    check_output(out_dir, force)
    partners = mn.split_toxcast(n_partners)
    info = {"source": "toxcast.csv.gz (MoleculeNet, chemprop data/toxcast.csv.gz @ 3f2b7337)",
            "sha256": mn.SOURCES["toxcast.csv.gz"], "licence": "MIT (chemprop repository)",
            "split": "assay providers (task-name prefix), largest first to the least-loaded partner",
            "values": "binary 0/1"}
    return write_build("toxcast", partners, out_dir, info, force=force)


def build_muv(out_dir: Path, n_partners: int = 1, force: bool = False) -> BuildSummary:
    """MUV: 93k compounds, 17 sparse binary tasks, compounds split by a hash of the SMILES (default: one partner)."""
    from fedchem.opener.public import moleculenet as mn

    check_output(out_dir, force)
    partners = mn.split_by_compound("muv.csv.gz", n_partners)
    info = {"source": "muv.csv.gz (chemprop data/muv.csv.gz @ 3f2b7337)", "sha256": mn.SOURCES["muv.csv.gz"],
            "licence": "MIT (chemprop repository)", "split": "compounds by sha256(SMILES) mod N",
            "values": "binary 0/1"}
    return write_build("muv", partners, out_dir, info, force=force)


def build_herg(out_dir: Path, n_partners: int = 3, force: bool = False) -> BuildSummary:
    """ChEMBL hERG IC50: partners by assay technology, real qualifiers, values in nM (pIC50 thresholds 5 and 6)."""
    from fedchem.opener.public import herg as hg

    check_output(out_dir, force)
    partners = hg.split_herg(n_partners)
    info = {"source": "chembl_herg.csv.gz (PatWalters/practical_cheminformatics_tutorials "
                      "data/ChEMBL_hERG.csv @ 370dc664)", "sha256": hg.SOURCE_SHA256,
            "licence": "MIT (repository); data from ChEMBL (CC BY-SA 3.0)",
            "split": "assay technology from the description (patch_clamp / binding / flux / other)",
            "values": "IC50 in nM with ChEMBL standard_relation; preparation converts to pIC50",
            "thresholds": list(hg.THRESHOLDS)}
    return write_build("herg", partners, out_dir, info, force=force)


def build_biogen(out_dir: Path, n_partners: int = 3, force: bool = False) -> BuildSummary:
    """Biogen ADME: 6 log-scale endpoints, values at detected assay limits censored, compounds split by hash."""
    from fedchem.opener.public import biogen as bg

    check_output(out_dir, force)
    partners, limits = bg.split_biogen(n_partners)
    censored = {bg.ENDPOINTS[c].assay_id: {"lower": lim.lower, "n_lower": lim.n_lower,
                                            "upper": lim.upper, "n_upper": lim.n_upper}
                for c, lim in limits.items() if lim.lower is not None or lim.upper is not None}
    info = {"source": "biogen_adme.csv.gz (molecularinformatics/Computational-ADME "
                      "ADME_public_set_3521.csv @ b00df003)", "sha256": bg.SOURCE_SHA256, "licence": "MIT",
            "split": "compounds by sha256(SMILES) mod N",
            "values": "log10 units as in the source, units empty",
            "censoring_rule": f"an endpoint's min (max) is an assay limit when >= max({bg.MIN_PILE}, "
                              f"{bg.MIN_PILE_FRACTION:.0%} of its values) sit on it: '<' (lower) / '>' (upper)",
            "assay_limits": censored}
    return write_build("biogen", partners, out_dir, info, force=force)
