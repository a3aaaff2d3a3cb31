"""ChEMBL hERG IC50 (via PatWalters' tutorials, MIT; data from ChEMBL): partners split by assay technology.

The technology is read from the ChEMBL assay `description` by keyword rules, checked in this order (first match
wins; case-insensitive):
  patch_clamp  patch clamp / patch-clamp, fast patch, patch express, Q-patch, PatchXpress, IonWorks,
               electrophysiology, voltage clamp, whole cell, "current(s)", IKr, holding potential
  flux         flux (FluxOR) / efflux, Rb / Rb+ / rubidium, thallium / Tl+, FLIPR, membrane potential,
               atomic absorption
  binding      displacement, binding, radioligand, [3H] / [35S] / [125I], dofetilide, astemizole, MK-499,
               scintillation, fluorescence polarisation, tracer (fluorescent-tracer displacement)
  other        everything else (mostly "Inhibition of human ERG": technology not stated)
Method words come before ligand words: "Binding affinity ... by IonWorks" is an automated patch clamp.
Technologies are dealt to partners (largest first, to the partner with the fewest measurements); each partner has
one assay per technology it holds. Values stay in nM with ChEMBL's real `standard_relation`; preparation converts
to pIC50 = 9 - log10(nM) and flips the qualifier ("< 10 nM" becomes "> 8").
"""

from __future__ import annotations

import re
from pathlib import Path

from fedchem.opener.errors import DataError
from fedchem.opener.public.common import (QUALIFIERS, Assay, PartnerTables, check_partners, deal_groups,
                                          fmt_value, new_partners, parse_float, read_csv_gz, require_nonempty)
from fedchem.opener.public.files import public_file

SOURCE = "chembl_herg.csv.gz"
SOURCE_SHA256 = "bd6346f19c14e2e1494a58e73d055fd5cdda08c1f7813a4cdcac4f3ff1d78d1f"
THRESHOLDS = (5.0, 6.0)  # pIC50: 10 uM and 1 uM, the usual hERG liability cut-offs
TECHNOLOGY_RULES = [
    ("patch_clamp", r"patch[- ]?clamp|fast patch|patch ?express|q-?patch|patchxpress|ion ?works?|"
                    r"electrophysiolog|voltage[- ]?clamp|whole[- ]cell|\bcurrents?\b|\bikr\b|holding potential"),
    ("flux", r"\bflux|efflux|\brb\+?(?![a-z])|rubidium|thallium|\btl\+|flipr|membrane potential|"
             r"atomic absorption"),
    ("binding", r"displacement|binding|radioligand|\[3h\]|\[35s\]|\[125i\]|dofetilide|astemizole|mk-?499|"
                r"scintillation|fluorescen\w* polari[sz]ation|tracer"),
]
_COMPILED = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in TECHNOLOGY_RULES]


def technology(description: str) -> str:
    """The assay technology named by a ChEMBL assay description (rules in the module docstring)."""
    for name, pattern in _COMPILED:
        if pattern.search(description):
            return name
    return "other"


def assay_for(tech: str) -> Assay:
    return Assay(assay_id=f"HERG_IC50_{tech.upper()}", assay_type="PANEL", use_in_regression=True,
                 thresholds=THRESHOLDS, direction="high")


def split_herg(n_partners: int, data_dir: Path | None = None) -> list[PartnerTables]:
    """Technologies grouped into partners; one assay per technology; values in nM with their real qualifiers."""
    path = public_file(SOURCE, SOURCE_SHA256, data_dir)
    rows = read_csv_gz(path, ["canonical_smiles", "mol_chembl_id", "standard_relation", "standard_value",
                              "standard_units", "description"])
    parsed = []
    sizes: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):
        where = f"{path}, row {i}"
        if row["standard_units"] != "nM":
            raise DataError("a value is not in nM", where=where)
        if row["standard_relation"] not in QUALIFIERS:
            raise DataError("unknown standard_relation", where=where)
        value = parse_float(row["standard_value"], where)
        if value <= 0:
            raise DataError("an IC50 is not positive", where=where)
        tech = technology(row["description"])
        sizes[tech] = sizes.get(tech, 0) + 1
        parsed.append((row["mol_chembl_id"], row["canonical_smiles"], tech, row["standard_relation"], value))
    check_partners(n_partners, len(sizes), f"{len(sizes)} assay technologies")
    owner = {g: i for i, groups in enumerate(deal_groups(sizes, n_partners)) for g in groups}
    partners = new_partners(n_partners)
    for cid, smiles, tech, qualifier, value in parsed:
        partners[owner[tech]].add(cid, smiles, assay_for(tech), qualifier, fmt_value(value), "nM")
    for i, groups in enumerate(deal_groups(sizes, n_partners)):
        partners[i].groups = groups
    return require_nonempty(partners, "hERG")
