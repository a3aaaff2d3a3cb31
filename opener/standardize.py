"""Standardise structures with RDKit's rdMolStandardize, to one canonical SMILES each.

The steps (STEPS, also written to the manifest and the prep report) follow rdMolStandardize's ChargeParent of a
cleaned-up molecule, with the standardiser objects built once per process (building them per molecule, as the
one-call helpers do, costs more than the work itself). Tautomer canonicalisation is left out: it costs ~10 ms a
molecule, 20x the rest. A structure that cannot be parsed or standardised gets a reason instead of a SMILES; the
caller drops it and lists it in the partner's own report. RDKit's log is silenced here: it would print SMILES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fedchem.opener.parallel import map_chunks

STEPS = [
    "parse the SMILES with RDKit (with sanitisation; this also removes explicit hydrogens)",
    "disconnect metals (MetalDisconnector)",
    "normalise functional groups (Normalizer, RDKit's default transforms)",
    "reionise so the strongest acid is the one ionised (Reionizer; molecules carrying charges only)",
    "keep the largest fragment, organic preferred (LargestFragmentChooser)",
    "neutralise charges where possible (Uncharger; molecules carrying charges only)",
    "write canonical isomeric SMILES",
]
STEPS_OFF = [STEPS[0], STEPS[-1]]
NOT_DONE = "no tautomer canonicalisation (about 20x the cost of all the steps above)"
CHUNK = 256


@dataclass
class Standardized:
    """Per input SMILES: canonical SMILES, or an error reason (then the SMILES is '')."""

    smiles: list[str]
    errors: list[str]


_TOOLS: dict = {}


def _tools():
    if not _TOOLS:
        from rdkit.Chem.MolStandardize import rdMolStandardize as S
        from rdkit import Chem
        _TOOLS.update(metal=S.MetalDisconnector(), normalizer=S.Normalizer(), reionizer=S.Reionizer(),
                      chooser=S.LargestFragmentChooser(preferOrganic=True), uncharger=S.Uncharger(),
                      charged=Chem.MolFromSmarts("[+,-]"))
    return _TOOLS


def parse_problem(smiles: str) -> str:
    """Why RDKit could not parse a SMILES (a problem type, never the text)."""
    from rdkit import Chem
    if not smiles:
        return "empty SMILES"
    raw = Chem.MolFromSmiles(smiles, sanitize=False)
    if raw is None:
        return "SMILES syntax error"
    problems = sorted({p.GetType() for p in Chem.DetectChemistryProblems(raw)})
    return "invalid chemistry: " + ", ".join(problems) if problems else "RDKit could not sanitise it"


def _one(smiles: str, standardize: bool) -> tuple[str, str]:
    from rdkit import Chem
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        return "", parse_problem(smiles)
    return standardize_mol(mol, standardize)


def standardize_mol(mol, standardize: bool) -> tuple[str, str]:
    """(canonical SMILES, "") of a parsed molecule after the STEPS (it is changed in place), or ("", reason)."""
    from rdkit import Chem
    try:
        if standardize:
            t = _tools()
            t["metal"].DisconnectInPlace(mol)
            t["normalizer"].normalizeInPlace(mol)
            if mol.HasSubstructMatch(t["charged"]):
                t["reionizer"].reionizeInPlace(mol)
            t["chooser"].chooseInPlace(mol)
            if mol.HasSubstructMatch(t["charged"]):
                t["uncharger"].unchargeInPlace(mol)
        canonical = Chem.MolToSmiles(mol)
    except Exception as exc:  # RDKit raises many types; the reason goes to the partner's own report
        return "", f"standardisation failed ({type(exc).__name__})"
    if not canonical:
        return "", "no atoms left after standardisation"
    return canonical, ""


def standardize_chunk(args: tuple[list[str], bool]) -> list[tuple[str, str]]:
    """Worker: (smiles chunk, standardize?) -> [(canonical SMILES, error)]."""
    from rdkit import rdBase
    smiles, standardize = args
    with rdBase.BlockLogs():
        return [_one(s, standardize) for s in smiles]


def standardize_all(smiles: list[str], standardize: bool, workers: int,
                    advance: Callable[[int], None] | None = None) -> Standardized:
    """Standardise every SMILES on `workers` processes; order is kept."""
    out = Standardized([], [])
    for chunk in map_chunks(standardize_chunk, smiles, (standardize,), CHUNK, workers, advance):
        for can, err in chunk:
            out.smiles.append(can)
            out.errors.append(err)
    return out
