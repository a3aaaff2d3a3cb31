"""ECFP features and scaffolds from canonical SMILES, on all cores: the trunk's input matrix X (CSR float32).

Fingerprints come from RDKit's Morgan generator (`rdFingerprintGenerator.GetMorganGenerator`, radius and chirality
from the consortium config) applied to the molecule parsed back from its canonical SMILES, so a structure gets the
same features at every partner whatever SMILES it was exported with. Both kinds hash each environment to a 64-bit
id and take column = id mod size: "folded" stores 1.0 for every set column (RDKit's folded bit vector), "counts"
stores the summed counts of the environments that land in the column (RDKit's folded count vector).
The scaffold (for folds) is computed in the same pass, from the same molecule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fedchem.opener.config import FingerprintConfig
from fedchem.opener.folds import scaffold_of
from fedchem.opener.parallel import map_chunks

CHUNK = 512
PARSE_BACK_FAILED = "the canonical SMILES does not parse back in RDKit"
_GENERATORS: dict = {}


@dataclass
class Featurized:
    """X rows in input order; a structure RDKit cannot parse back gets an empty row and an error reason."""

    X: sp.csr_matrix
    scaffolds: list[str]
    errors: list[str]


def morgan_generator(fp: FingerprintConfig):
    """The RDKit Morgan generator for these settings (one per process)."""
    key = (fp.radius, fp.size, fp.use_chirality)
    if key not in _GENERATORS:
        from rdkit.Chem import rdFingerprintGenerator
        _GENERATORS[key] = rdFingerprintGenerator.GetMorganGenerator(radius=fp.radius, fpSize=fp.size,
                                                                     includeChirality=fp.use_chirality)
    return _GENERATORS[key]


def featurize_chunk(args: tuple[list[str], FingerprintConfig]):
    """Worker: (canonical SMILES chunk, settings) -> (row lengths, column indices, values, scaffolds, errors)."""
    from rdkit import Chem, rdBase
    smiles, fp = args
    gen = morgan_generator(fp)
    lengths = np.zeros(len(smiles), dtype=np.int64)
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    scaffolds, errors = [], []
    with rdBase.BlockLogs():
        mols = [Chem.MolFromSmiles(s) for s in smiles]
        ok = [m for m in mols if m is not None]
        fps = iter(gen.GetCountFingerprints(ok))
        for i, (s, m) in enumerate(zip(smiles, mols)):
            if m is None:
                scaffolds.append("")
                errors.append(PARSE_BACK_FAILED)
                continue
            nz = next(fps).GetNonzeroElements()
            lengths[i] = len(nz)
            cols.append(np.fromiter(nz.keys(), dtype=np.int32, count=len(nz)))
            vals.append(np.fromiter(nz.values(), dtype=np.float32, count=len(nz)))
            scaffolds.append(scaffold_of(m))
            errors.append("")
    indices = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    data = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    if fp.kind == "folded":
        data = np.ones_like(data)
    return lengths, indices, data, scaffolds, errors


def features_of(gen, mol) -> tuple[np.ndarray, np.ndarray]:
    """(columns int32, counts float32) of one molecule's folded count fingerprint, in RDKit's order."""
    nz = gen.GetCountFingerprint(mol).GetNonzeroElements()
    return (np.fromiter(nz.keys(), dtype=np.int32, count=len(nz)),
            np.fromiter(nz.values(), dtype=np.float32, count=len(nz)))


def csr_of(lengths: np.ndarray, indices: np.ndarray, data: np.ndarray, fp: FingerprintConfig) -> sp.csr_matrix:
    """X from per-row lengths and the rows' concatenated columns and values (sorted within each row)."""
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    X = sp.csr_matrix((data, indices, indptr), shape=(len(lengths), fp.size))
    X.sort_indices()
    return X


def featurize_all(smiles: list[str], fp: FingerprintConfig, workers: int,
                  advance: Callable[[int], None] | None = None) -> Featurized:
    """Fingerprint and scaffold every canonical SMILES on `workers` processes; row order is kept."""
    parts = map_chunks(featurize_chunk, smiles, (fp,), CHUNK, workers, advance)
    lengths = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    indices = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32)
    data = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
    return Featurized(csr_of(lengths, indices, data, fp), [s for p in parts for s in p[3]],
                      [e for p in parts for e in p[4]])
