"""A partner's chemistry in one pass per structure: standardise, then fingerprint and scaffold, on all cores.

The same result as `standardize.standardize_all` followed by `fingerprints.featurize_all` on the distinct canonical
SMILES (tests/opener/test_prepare_pipeline.py checks the prepared files byte for byte), at less cost:
- one process pool and one hand-over instead of two;
- the features come from the molecule parsed back from the canonical SMILES, as before, but when the canonical
  SMILES is the input text itself (99% of MUV, whose SMILES are already RDKit-canonical) that molecule is a copy of
  the input's own parse taken before standardisation: parsing is deterministic, so it is the same molecule, and a
  copy costs a fifth of a parse.
Several input texts may standardise to one structure; each is fingerprinted, and the caller keeps the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fedchem.opener.config import FingerprintConfig
from fedchem.opener.fingerprints import PARSE_BACK_FAILED, features_of, morgan_generator
from fedchem.opener.folds import scaffold_of
from fedchem.opener.parallel import map_chunks
from fedchem.opener.standardize import parse_problem, standardize_mol

CHUNK = 256


@dataclass
class Chemistry:
    """Per input text, in order: canonical SMILES or '' with `errors` saying why; for a canonical SMILES, its
    feature row (`lengths`, and the rows' columns and values concatenated in `indices`/`data`), its scaffold, and
    `feature_errors` (non-empty when the canonical SMILES does not parse back)."""

    smiles: list[str]
    errors: list[str]
    lengths: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    scaffolds: list[str]
    feature_errors: list[str]


def _structure(text: str, standardize: bool, gen):
    """(canonical, error, columns, values, scaffold, feature error) of one input SMILES."""
    from rdkit import Chem
    mol = Chem.MolFromSmiles(text) if text else None
    if mol is None:
        return "", parse_problem(text), None, None, "", ""
    parsed = Chem.Mol(mol)  # before standardisation changes `mol` in place
    canonical, error = standardize_mol(mol, standardize)
    if not canonical:
        return "", error, None, None, "", ""
    back = parsed if canonical == text else Chem.MolFromSmiles(canonical)
    if back is None:
        return canonical, "", None, None, "", PARSE_BACK_FAILED
    cols, vals = features_of(gen, back)
    return canonical, "", cols, vals, scaffold_of(back), ""


def chemistry_chunk(args: tuple[list[str], bool, FingerprintConfig]):
    """Worker: (input SMILES chunk, standardize?, settings) -> per-chunk arrays and lists (see `Chemistry`)."""
    from rdkit import rdBase
    texts, standardize, fp = args
    gen = morgan_generator(fp)
    lengths = np.zeros(len(texts), dtype=np.int64)
    cols, vals, smiles, errors, scaffolds, feature_errors = [], [], [], [], [], []
    with rdBase.BlockLogs():
        for i, text in enumerate(texts):
            can, err, c, v, scaffold, ferr = _structure(text, standardize, gen)
            smiles.append(can)
            errors.append(err)
            scaffolds.append(scaffold)
            feature_errors.append(ferr)
            if c is not None:
                lengths[i] = len(c)
                cols.append(c)
                vals.append(v)
    indices = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    data = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    if fp.kind == "folded":
        data = np.ones_like(data)
    return lengths, indices, data, smiles, errors, scaffolds, feature_errors


def chemistry_all(texts: list[str], standardize: bool, fp: FingerprintConfig, workers: int,
                  advance: Callable[[int], None] | None = None) -> Chemistry:
    """Standardise, fingerprint and scaffold every input SMILES on `workers` processes; order is kept."""
    parts = map_chunks(chemistry_chunk, texts, (standardize, fp), CHUNK, workers, advance)
    return Chemistry(
        smiles=[s for p in parts for s in p[3]], errors=[e for p in parts for e in p[4]],
        lengths=np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64),
        indices=np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32),
        data=np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32),
        scaffolds=[s for p in parts for s in p[5]], feature_errors=[e for p in parts for e in p[6]])


def rows_of(chem: Chemistry, picks: np.ndarray, fp: FingerprintConfig):
    """X, scaffolds and feature errors of the input texts `picks` (one per distinct structure, in row order)."""
    from fedchem.opener.fingerprints import Featurized, csr_of
    picks = np.asarray(picks, dtype=np.int64)
    starts = np.r_[0, np.cumsum(chem.lengths)][:-1] if len(chem.lengths) else np.zeros(0, np.int64)
    lengths = chem.lengths[picks]
    offsets = np.r_[0, np.cumsum(lengths)][:-1]
    take = np.repeat(starts[picks] - offsets, lengths) + np.arange(int(lengths.sum()))
    X = csr_of(lengths, chem.indices[take], chem.data[take], fp)
    return Featurized(X, [chem.scaffolds[i] for i in picks], [chem.feature_errors[i] for i in picks])
