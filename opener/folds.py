"""Scaffold folds: a compound's fold is a keyed hash of its Murcko scaffold, the same at every partner.

fold = HMAC-SHA256(consortium secret, "fedchem-fold/v1" NUL scaffold SMILES), first 8 bytes big-endian, mod n_folds.
The scaffold is the Bemis-Murcko scaffold (RDKit MurckoDecompose, atom and bond types kept) of the molecule parsed
from its canonical SMILES, written as canonical SMILES without stereo (so stereoisomers, near-duplicates for a
model, share a fold); an acyclic molecule (empty scaffold) stands for itself, its own canonical SMILES without stereo
(acyclic SMILES never equal a ring scaffold, so the two cannot collide). Keying the hash with
the secret stops anyone without it from predicting which fold holds a given chemotype.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np

SCAFFOLD_RULE = ("Bemis-Murcko scaffold (RDKit MurckoDecompose) of the molecule parsed from its canonical SMILES, "
                 "as canonical SMILES without stereo; an acyclic molecule stands for itself (its own canonical "
                 "SMILES without stereo)")
_DOMAIN = b"fedchem-fold/v1\x00"


def scaffold_of(mol) -> str:
    """The scaffold key of an RDKit molecule parsed from a canonical SMILES."""
    from rdkit import Chem
    return Chem.MolToSmiles(Chem.MurckoDecompose(mol), isomericSmiles=False) or Chem.MolToSmiles(
        mol, isomericSmiles=False)


def fold_of(scaffold: str, secret: bytes, n_folds: int) -> int:
    """Fold of one scaffold: keyed hash mod n_folds (bias < 2^-60)."""
    digest = hmac.new(secret, _DOMAIN + scaffold.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % n_folds


def assign_folds(scaffolds: list[str], secret: bytes, n_folds: int) -> np.ndarray:
    """Fold per compound (int64), hashing each distinct scaffold once."""
    cache: dict[str, int] = {}
    out = np.empty(len(scaffolds), dtype=np.int64)
    for i, s in enumerate(scaffolds):
        f = cache.get(s)
        if f is None:
            f = cache[s] = fold_of(s, secret, n_folds)
        out[i] = f
    return out
