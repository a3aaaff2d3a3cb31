"""Tox21, ToxCast and MUV (MoleculeNet via chemprop, MIT): wide 0/1 tables turned into binary partner assays.

Tox21 and MUV: compounds split across partners by a hash of the SMILES, every partner has every task.
ToxCast: assays grouped by provider (task-name prefix: ATG, NVS, BSK, TOX21, APR, ...), providers dealt to partners
(largest first, to the partner with the fewest labels), so no provider is at two partners; compounds overlap.
"""

from __future__ import annotations

from pathlib import Path

from fedchem.opener.errors import DataError
from fedchem.opener.public.common import (Assay, PartnerTables, check_partners, deal_groups, new_partners,
                                          read_csv_gz, require_nonempty, structure_bucket)
from fedchem.opener.public.files import public_file

SOURCES = {  # file name -> pinned sha256 (as in data/SHA256SUMS, shipped with the package)
    "tox21.csv.gz": "4a78fd8e3a08ef9858d8c1e43dcefa0f659f6e4df5ae59ea7fd18e77544d8b99",
    "toxcast.csv.gz": "4b9b4366b02ce7ec7a0831d60f8c46f153c53c5e122376df887476240496abd4",
    "muv.csv.gz": "ee68d1fad0b10440dc494ac3a74cf99168a0b0da9683556b2b48220b88172135",
}
_LABELS = {"0": "0", "0.0": "0", "1": "1", "1.0": "1"}


def read_binary_table(name: str, data_dir: Path | None = None
                      ) -> tuple[list[str], list[tuple[str, str, dict[str, str]]]]:
    """(task names, [(compound id 'C<row>', smiles, {task: '0'|'1'})]) of a wide MoleculeNet CSV."""
    path = public_file(name, SOURCES[name], data_dir)
    rows = read_csv_gz(path, ["smiles"])
    tasks = [c for c in rows[0].keys() if c not in ("smiles", "mol_id")] if rows else []
    out = []
    for i, row in enumerate(rows):
        labels = {}
        for task in tasks:
            text = row[task].strip()
            if text == "":
                continue
            if text not in _LABELS:
                raise DataError("a label is neither 0 nor 1", where=f"{path}, row {i + 2}, column '{task}'")
            labels[task] = _LABELS[text]
        out.append((f"C{i}", row["smiles"], labels))
    return tasks, out


def _binary_assay(task: str) -> Assay:
    return Assay(assay_id=task, assay_type="OTHER", use_in_regression=False, is_binary=True, direction="high")


def split_by_compound(name: str, n_partners: int, data_dir: Path | None = None) -> list[PartnerTables]:
    """Every compound to one partner (hash of its SMILES); every partner gets all the set's tasks."""
    check_partners(n_partners)
    tasks, rows = read_binary_table(name, data_dir)
    assays = {t: _binary_assay(t) for t in tasks}
    partners = new_partners(n_partners)
    for cid, smiles, labels in rows:
        p = partners[structure_bucket(smiles, n_partners)]
        for task, value in labels.items():
            p.add(cid, smiles, assays[task], "=", value)
    for p in partners:
        p.groups = sorted(p.assays)
    return require_nonempty(partners, name)


def provider(task: str) -> str:
    """ToxCast assay provider: the task name's prefix before the first underscore."""
    return task.split("_", 1)[0]


def split_toxcast(n_partners: int, data_dir: Path | None = None) -> list[PartnerTables]:
    """Providers grouped into partners (no provider at two partners); each partner keeps its providers' labels."""
    tasks, rows = read_binary_table("toxcast.csv.gz", data_dir)
    sizes: dict[str, int] = {}
    for _, _, labels in rows:
        for task in labels:
            sizes[provider(task)] = sizes.get(provider(task), 0) + 1
    check_partners(n_partners, len(sizes), f"{len(sizes)} assay providers")
    owner = {g: i for i, groups in enumerate(deal_groups(sizes, n_partners)) for g in groups}
    assays = {t: _binary_assay(t) for t in tasks}
    partners = new_partners(n_partners)
    for cid, smiles, labels in rows:
        for task, value in labels.items():
            partners[owner[provider(task)]].add(cid, smiles, assays[task], "=", value)
    for p in partners:
        p.groups = sorted({provider(a) for a in p.assays})
    return require_nonempty(partners, "ToxCast")
