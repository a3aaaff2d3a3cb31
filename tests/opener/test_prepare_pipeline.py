"""Correctness of partner preparation: units and qualifiers, thresholds, censoring, replicates, folds, scrambling,
fingerprints against RDKit, determinism and atomic output. Real RDKit, real files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prepare_data import herg_partner, herg_rows, t0_row, write_partner
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from fedchem.opener import activities, dataset, folds, scramble
from fedchem.opener.activities import EQ, GE, GT, LE, LT
from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import FedchemError
from fedchem.opener.prepare import prepare_partner
from fedchem.opener.standardize import standardize_all
from fedchem.opener.tasks import classify

SECRET = b"test-consortium-secret-0123456789"
OTHER_SECRET = b"another-consortium-secret-987654"
LOOSE = PreparationConfig(min_actives_total=1, min_inactives_total=1, min_actives_per_fold=0,
                          min_inactives_per_fold=0, min_regression_values=2, min_regression_values_per_fold=0)


def prep(paths, out, fp=FingerprintConfig(size=1024), cfg=LOOSE, secret=SECRET, workers=1):
    prepare_partner(*paths, out, fp, cfg, secret, "pharma-t", workers=workers)
    return load_prepared(out)


def row_of(ds, cid: str) -> int:
    return next(i for i, c in enumerate(ds.compound_ids) if cid in c.split(";"))


def cell(m, i: int, j: int):
    """A stored cell of a CSR matrix, or None if not stored (distinguishes an explicit 0 from a missing one)."""
    lo, hi = m.indptr[i], m.indptr[i + 1]
    hit = np.flatnonzero(m.indices[lo:hi] == j)
    return float(m.data[lo + hit[0]]) if len(hit) else None


# ---- units and qualifiers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,unit,qual,expected,expected_qual", [
    ("10", "nM", "<", 8.0, GT), ("10", "nM", ">", 8.0, LT), ("1", "uM", "<=", 6.0, GE), ("1", "µM", ">=", 6.0, LE),
    ("1", "μM", "=", 6.0, EQ), ("0.001", "M", "=", 3.0, EQ), ("2", "mM", "~", 3 - math.log10(2), EQ),
    ("100", "pM", "", 10.0, EQ), ("6.5", "", "<", 6.5, LT), ("6.5", "log", ">", 6.5, GT), ("6.5", "p", "=", 6.5, EQ),
])
def test_unit_conversion_flips_the_qualifier(value, unit, qual, expected, expected_qual):
    where = "T1.csv, line 2"
    v, q = activities.to_log_scale(activities.parse_value(value, where), activities.parse_qualifier(qual, where),
                                   activities.unit_exponent(unit, where), where)
    assert v == pytest.approx(expected, abs=1e-12) and q == expected_qual


def test_ic50_below_10_nm_becomes_a_pic50_above_8_end_to_end(tmp_path):
    t2 = [["lt", "c1ccccc1CCN"], ["gt", "c1ccccc1CCO"], ["eq", "c1ccncc1CCO"], ["um", "C1CCCCC1N"],
          ["eq2", "c1ccncc1CCN"]]
    t1 = [["lt", "A", "<", "10", "nM"], ["gt", "A", ">", "10000", "nM"], ["eq", "A", "=", "316.2277660168", "nM"],
          ["um", "A", "<=", "2", "uM"], ["eq2", "A", "=", "0.001", "mM"]]
    ds = prep(write_partner(tmp_path / "raw", [t0_row("A", (7,))], t1, t2), tmp_path / "out")
    j = next(int(t["column"]) for t in ds.tasks if t["kind"] == "regression")
    expect = {"lt": (8.0, 1), "gt": (5.0, -1), "eq": (6.5, 0), "um": (6 - math.log10(2), 1), "eq2": (6.0, 0)}
    for cid, (value, censor) in expect.items():
        i = row_of(ds, cid)
        assert cell(ds.Y_regr, i, j) == pytest.approx(value, abs=1e-5)
        assert cell(ds.Y_censor, i, j) == censor  # 0 is stored explicitly for exact values
    # classification at pIC50 7 (high): "> 8" active; "< 5" inactive; "= 6.5" inactive; "> 5.7" unknown
    jc = next(int(t["column"]) for t in ds.tasks if t["kind"] == "classification")
    assert [cell(ds.Y_class, row_of(ds, c), jc) for c in ("lt", "gt", "eq", "um")] == [1.0, -1.0, -1.0, None]


# ---- qualifier-aware thresholds and censoring ------------------------------------------------------------------

@pytest.mark.parametrize("direction,code,value,expected", [
    # direction high (value >= 6 active)
    ("high", EQ, 6.0, 1), ("high", EQ, 5.9, -1), ("high", GT, 6.0, 1), ("high", GT, 5.0, 0), ("high", GE, 6.0, 1),
    ("high", LT, 7.0, 0), ("high", LT, 6.0, -1), ("high", LT, 5.0, -1), ("high", LE, 6.0, 0), ("high", LE, 5.9, -1),
    # direction low (value <= 6 active)
    ("low", EQ, 6.0, 1), ("low", EQ, 6.1, -1), ("low", LT, 6.0, 1), ("low", LT, 7.0, 0), ("low", LE, 6.0, 1),
    ("low", GT, 5.0, 0), ("low", GT, 6.0, -1), ("low", GT, 7.0, -1), ("low", GE, 6.0, 0), ("low", GE, 6.1, -1),
])
def test_classification_is_qualifier_aware(direction, code, value, expected):
    assert classify(np.array([code]), np.array([value]), 6.0, direction).tolist() == [expected]


def test_replicates_are_aggregated_by_the_documented_rules():
    m = activities.Measurements(
        rows=np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]), assays=np.zeros(12, np.int64),
        codes=np.array([EQ, EQ, LT, LT, LE, GT, GE, LT, GT, GE, GE, EQ]),
        values=np.array([5.0, 6.0, 9.0, 7.0, 6.0, 4.0, 5.0, 5.0, 6.0, 5.0, 4.0, 3.0]))
    agg = activities.aggregate(m)
    got = {int(r): (int(c), float(v)) for r, c, v in zip(agg.rows, agg.codes, agg.values)}
    assert got == {0: (EQ, 5.5), 1: (LE, 6.0), 2: (GE, 5.0), 4: (GE, 5.0), 5: (EQ, 3.0)}
    assert (agg.n_replicated_pairs, agg.n_censored_ignored, agg.n_conflicting_dropped) == (5, 1, 1)


def test_censor_matrix_has_the_regression_cells_and_the_right_signs(tmp_path, public_data_dir):
    ds = prep(herg_partner(tmp_path / "raw", public_data_dir, n=500), tmp_path / "out")
    assert ds.Y_regr.shape == ds.Y_censor.shape
    assert np.array_equal(ds.Y_regr.indptr, ds.Y_censor.indptr)
    assert np.array_equal(ds.Y_regr.indices, ds.Y_censor.indices)
    assert set(np.unique(ds.Y_censor.data).tolist()) == {-1.0, 0.0, 1.0}
    # hERG ">" in nM (weak binders) become pIC50 "<": -1 ; "<" in nM become "+1"
    from prepare_data import herg_rows
    rows = herg_rows(public_data_dir, 500)
    singles = {}
    for r in rows:
        singles.setdefault(r["mol_chembl_id"], []).append(r["standard_relation"])
    for cid, rel in singles.items():
        if len(rel) == 1 and rel[0] in ("<", ">", "="):
            i = row_of(ds, cid)
            assert cell(ds.Y_censor, i, 0) == {"<": 1.0, ">": -1.0, "=": 0.0}[rel[0]]


# ---- structures, folds, scrambling ------------------------------------------------------------------------------

def test_same_structure_under_two_ids_is_one_row(tmp_path):
    t2 = [["a", "OCC"], ["b", "CCO"], ["c", "[Na+].[O-]C(=O)c1ccccc1"], ["d", "OC(=O)c1ccccc1"]]
    t1 = [[c, "A", "=", str(5 + k), ""] for k, c in enumerate("abcd")]
    ds = prep(write_partner(tmp_path / "raw", [t0_row("A", (6,))], t1, t2), tmp_path / "out")
    assert sorted(ds.compound_ids) == ["a;b", "c;d"]
    assert sorted(cell(ds.Y_regr, i, 0) for i in range(2)) == [5.5, 7.5]  # replicate means


def _scaffold_partner(folder, smiles_ids):
    t1 = [[cid, "A", "=", str(4 + (k % 5)), ""] for k, (cid, _) in enumerate(smiles_ids)]
    return write_partner(folder, [t0_row("A", (6,))], t1, [list(x) for x in smiles_ids])


def test_scaffold_folds_agree_across_partners_with_the_same_secret(tmp_path, public_data_dir):
    from prepare_data import herg_rows
    rows = herg_rows(public_data_dir, 1200)
    smiles = list(dict.fromkeys(r["canonical_smiles"] for r in rows))
    # partner 1 holds the first half, partner 2 the second half plus a re-written copy (salt added) of 50 of
    # partner 1's molecules: they must land in the same fold, and so must every shared scaffold
    half = len(smiles) // 2
    p1 = [(f"p1-{i}", s) for i, s in enumerate(smiles[:half])]
    p2 = [(f"p2-{i}", s) for i, s in enumerate(smiles[half:])] + [(f"p2-copy-{i}", s + ".Cl") for i, s in
                                                                   enumerate(smiles[:50])]
    d1 = prep(_scaffold_partner(tmp_path / "r1", p1), tmp_path / "o1")
    d2 = prep(_scaffold_partner(tmp_path / "r2", p2), tmp_path / "o2")
    for i in range(50):
        assert d1.folds[row_of(d1, f"p1-{i}")] == d2.folds[row_of(d2, f"p2-copy-{i}")]

    def scaffold_folds(ds, pairs):
        out = {}
        canonical = standardize_all([smi for _, smi in pairs], True, 1).smiles
        for (cid, _), can in zip(pairs, canonical):
            scaf = folds.scaffold_of(Chem.MolFromSmiles(can))
            if any(cid in c.split(";") for c in ds.compound_ids):
                out.setdefault(scaf, set()).add(int(ds.folds[row_of(ds, cid)]))
        return out

    f1, f2 = scaffold_folds(d1, p1), scaffold_folds(d2, p2)
    shared = set(f1) & set(f2)
    assert len(shared) > 20
    for scaf in shared:
        assert f1[scaf] == f2[scaf] and len(f1[scaf]) == 1
    assert sorted(set(d1.folds.tolist())) == [0, 1, 2, 3, 4]
    # another consortium secret gives another assignment of the same scaffolds
    d3 = prep(_scaffold_partner(tmp_path / "r1", p1), tmp_path / "o3", secret=OTHER_SECRET)
    assert (d3.folds != d1.folds).mean() > 0.5


def test_scrambling_is_a_keyed_permutation_shared_by_partners(tmp_path, public_data_dir):
    raw = herg_partner(tmp_path / "raw", public_data_dir, n=200)
    plain = prep(raw, tmp_path / "plain", fp=FingerprintConfig(size=2048, scramble=False))
    fp = FingerprintConfig(size=2048, scramble=True)
    a = prep(raw, tmp_path / "a", fp=fp)
    other = prep(raw, tmp_path / "other", fp=fp, secret=OTHER_SECRET)
    perm = scramble.permutation(SECRET, 2048)
    assert sorted(perm.tolist()) == list(range(2048)) and (perm != np.arange(2048)).mean() > 0.99
    assert np.array_equal(perm, scramble.permutation(SECRET, 2048))
    # column j of the unscrambled matrix is column perm[j] of the scrambled one, every row
    assert (a.X[:, perm] != plain.X).nnz == 0
    assert (other.X != a.X).nnz > 0 and not np.array_equal(scramble.permutation(OTHER_SECRET, 2048), perm)
    # a second partner holding one of these compounds gets the very same scrambled row
    i = 7
    cid = a.compound_ids[i].split(";")[0]
    smi = next(r[1] for r in _read(raw[2]) if r[0] == cid)
    b = prep(write_partner(tmp_path / "rawb", [t0_row("Z", (6,))], [[cid, "Z", "=", "6", ""], ["x", "Z", "=", "5", ""]],
                           [[cid, smi], ["x", "CCCCCCCC"]]), tmp_path / "b", fp=fp)
    assert (b.X[row_of(b, cid)] != a.X[i]).nnz == 0
    assert a.manifest["scramble_permutation_sha256"] == scramble.permutation_digest(perm)
    text = (tmp_path / "a" / "manifest.json").read_text()
    assert SECRET.decode() not in text and SECRET.hex() not in text


def _read(path):
    import csv
    with open(path, newline="") as fh:
        return list(csv.reader(fh))[1:]


@pytest.mark.parametrize("kind", ["folded", "counts"])
def test_fingerprints_match_rdkit(tmp_path, public_data_dir, kind):
    raw = herg_partner(tmp_path / "raw", public_data_dir, n=150)
    fp = FingerprintConfig(kind=kind, size=1024, radius=2, scramble=False)
    ds = prep(raw, tmp_path / "out", fp=fp)
    smiles = dict(_read(raw[2]))
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    checked = 0
    for i, ids in enumerate(ds.compound_ids):
        mol = Chem.MolFromSmiles(smiles[ids.split(";")[0]])
        if mol is None or len(Chem.GetMolFrags(mol)) > 1 or any(a.GetFormalCharge() for a in mol.GetAtoms()):
            continue  # standardisation may change these; compare plain neutral single-fragment molecules
        row = ds.X[i]
        if kind == "folded":
            assert row.indices.tolist() == sorted(gen.GetFingerprint(mol).GetOnBits())
            assert set(row.data.tolist()) == {1.0}
        else:
            expect: dict[int, int] = {}
            for h, c in gen.GetSparseCountFingerprint(mol).GetNonzeroElements().items():  # unfolded 64-bit ids
                expect[h % 1024] = expect.get(h % 1024, 0) + c
            assert dict(zip(row.indices.tolist(), row.data.tolist())) == expect
        checked += 1
    assert checked > 50
    assert ds.X.dtype == np.float32 and ds.X.shape[1] == 1024


# ---- tasks, determinism, atomicity ------------------------------------------------------------------------------

def test_task_table_weights_and_matrix_shapes(tmp_path, public_data_dir):
    cfg = PreparationConfig(min_actives_total=5, min_inactives_total=5, min_regression_values=20,
                            auxiliary_weight=0.25)
    ds = prep(herg_partner(tmp_path / "raw", public_data_dir, n=600, aux_every=2), tmp_path / "out", cfg=cfg)
    names = [t["task"] for t in ds.tasks]
    assert names == ["HERG_class_5", "HERG_class_6", "HERG_regr", "HERG_AUX_class_5"]
    assert len(set(names)) == len(names)
    weights = {t["task"]: float(t["weight"]) for t in ds.tasks}
    assert weights == {"HERG_class_5": 1.0, "HERG_class_6": 1.0, "HERG_regr": 1.0, "HERG_AUX_class_5": 0.25}
    assert ds.Y_class.shape[1] == 3 and ds.Y_regr.shape[1] == 1
    assert set(np.unique(ds.Y_class.data).tolist()) == {-1.0, 1.0}
    for t in ds.class_tasks():
        col = ds.Y_class[:, int(t["column"])]
        assert col.nnz == int(t["n_labels"]) and (col.data > 0).sum() == int(t["n_actives"])
    r = ds.regr_tasks()[0]
    assert ds.Y_regr.nnz == int(r["n_labels"]) and (ds.Y_censor.data != 0).sum() == int(r["n_censored"])
    assert ds.Y_class.getnnz(axis=1).min() + ds.Y_regr.getnnz(axis=1).min() > 0  # no unlabelled rows
    assert ds.manifest["partner"] == "pharma-t" and ds.manifest["fingerprint"]["size"] == 1024


def test_reruns_are_byte_identical_serial_or_parallel(tmp_path, public_data_dir):
    raw = herg_partner(tmp_path / "raw", public_data_dir, n=1000)
    fp = FingerprintConfig(size=4096, kind="counts")
    prep(raw, tmp_path / "a", fp=fp, workers=1)
    prep(raw, tmp_path / "b", fp=fp, workers=1)
    prep(raw, tmp_path / "c", fp=fp, workers=2)  # > 3 chunks: the process pool is used
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "manifest.json" in files and "prep_report.md" in files
    for name in files:
        data = (tmp_path / "a" / name).read_bytes()
        assert data == (tmp_path / "b" / name).read_bytes(), name
        assert data == (tmp_path / "c" / name).read_bytes(), name


def test_a_failure_while_writing_leaves_no_output(tmp_path, public_data_dir, monkeypatch):
    raw = herg_partner(tmp_path / "raw", public_data_dir, n=200)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dataset, "_write_csv", disk_full)  # fault injection half-way through save_prepared
    with pytest.raises(FedchemError) as info:  # the OS error becomes the user-facing one, naming the folder
        prep(raw, tmp_path / "out")
    assert "no space left" in info.value.message() and str(tmp_path / "out") in info.value.message()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


@pytest.mark.slow
def test_the_whole_of_chembl_herg_prepares_on_two_processes(tmp_path, public_data_dir):
    raw = herg_partner(tmp_path / "raw", public_data_dir, n=100_000, thresholds=(5, 6, 7))
    ds = prep(raw, tmp_path / "out", fp=FingerprintConfig(), cfg=PreparationConfig(), workers=2)
    assert 7000 < ds.n_compounds <= 7438 and ds.n_features == 32768
    assert [t["task"] for t in ds.tasks] == ["HERG_class_5", "HERG_class_6", "HERG_class_7", "HERG_regr"]
    regr = ds.regr_tasks()[0]
    # ChEMBL's 2,094 ">" and 230 "<" IC50s: after the flip most censored pIC50s are "<" (-1)
    assert (ds.Y_censor.data == -1).sum() > 1000 > (ds.Y_censor.data == 1).sum() > 50
    assert int(regr["n_censored"]) == (ds.Y_censor.data != 0).sum()
    assert sorted(set(ds.folds.tolist())) == [0, 1, 2, 3, 4]


def test_stereoisomers_and_acyclic_molecules_get_documented_scaffolds():
    def key(smi):
        m = Chem.MolFromSmiles(smi)
        return folds.scaffold_of(Chem.MolFromSmiles(Chem.MolToSmiles(m)))
    assert key("C[C@H](N)c1ccccc1") == key("C[C@@H](N)c1ccccc1") == key("CC(N)c1ccccc1") == "c1ccccc1"
    assert key("C/C=C/CCO") == key("C/C=C\\CCO") == "CC=CCCO"  # acyclic: the molecule itself, without stereo
    assert key("O=C(O)C1CCCC1") == "C1CCCC1"
    assert folds.fold_of("c1ccccc1", SECRET, 5) == folds.fold_of("c1ccccc1", SECRET, 5)


# ---- the one-pass chemistry gives the two-pass result, byte for byte ---------------------------------------------

TRICKY = ["[Na+].[O-]C(=O)c1ccccc1", "C[N+](C)(C)C.[Cl-]", "OC(=O)CC[NH3+]", "[O-][n+]1ccccc1", "CC(=O)[O-].[K+]",
          "C1=CC=CC=C1O", "OC1=CC=CC=C1", "c1ccccc1O", "N[C@@H](C)C(=O)O", "N[C@H](C)C(=O)O", "C/C=C/CCO",
          "CCCCCC", "c1ccc2ccccc2c1", "[Cu+2].[O-]S(=O)(=O)[O-]", "CC(C)(C)[Si](C)(C)OC", "not a smiles", "",
          "c1cccc1", "C1CC1C(F)(F)F", "O=[N+]([O-])c1ccccc1", "Oc1ccccc1.Oc1ccccc1", "CC(=O)Nc1ccc(O)cc1"]


def _two_pass_reference(monkeypatch):
    """Prepare as before `opener/chemistry.py`: standardise every distinct text, then fingerprint and scaffold the
    distinct canonical SMILES in a second pass (standardize_all, then featurize_all)."""
    from fedchem.opener import chemistry, fingerprints, standardize

    def chemistry_all(texts, standardise, fp, workers, advance=None):
        std = standardize.standardize_all(texts, standardise, workers, advance)
        empty = np.zeros(len(texts), np.int64)
        return chemistry.Chemistry(std.smiles, std.errors, empty, np.zeros(0, np.int32), np.zeros(0, np.float32),
                                   [""] * len(texts), [""] * len(texts))

    def rows_of(chem, picks, fp):
        return fingerprints.featurize_all([chem.smiles[k] for k in picks], fp, 1)

    monkeypatch.setattr(chemistry, "chemistry_all", chemistry_all)
    monkeypatch.setattr(chemistry, "rows_of", rows_of)


@pytest.mark.parametrize("kind,standardise", [("folded", True), ("counts", True), ("folded", False)])
def test_one_pass_chemistry_writes_the_two_pass_files_byte_for_byte(tmp_path, public_data_dir, monkeypatch, kind,
                                                                    standardise):
    import csv
    import gzip
    with gzip.open(public_data_dir / "muv.csv.gz", "rt", encoding="utf-8") as fh:
        muv = [r["smiles"] for r in csv.DictReader(fh)][:250]  # RDKit-canonical already: the copied-parse path
    herg = [r["canonical_smiles"] for r in herg_rows(public_data_dir, 250)]  # mostly not: the parse-back path
    smiles = muv + herg + TRICKY + [herg[3], muv[5]]  # the same structure under a second id
    assert sum(s == Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in muv) > 200  # both paths are exercised
    assert sum(s != Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in herg) > 100
    t2 = [[f"c{i}", s] for i, s in enumerate(smiles)]
    t1 = [[f"c{i}", "A", "=", str(4.0 + (i * 7 % 10) / 3), ""] for i in range(len(smiles))]
    raw = write_partner(tmp_path / "raw", [t0_row("A", (6,))], t1, t2)
    fp = FingerprintConfig(size=2048, kind=kind)
    cfg = LOOSE.model_copy(update={"standardize": standardise})
    prep(raw, tmp_path / "one", fp=fp, cfg=cfg, workers=2)  # > 3 chunks: the process pool is used
    with monkeypatch.context() as m:
        _two_pass_reference(m)
        prep(raw, tmp_path / "two", fp=fp, cfg=cfg, workers=2)
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir()) and "X.npz" in files
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    ds = load_prepared(tmp_path / "one")
    ids = {c for row in ds.compound_ids for c in row.split(";")}
    assert ds.n_compounds > 400 and f"c{smiles.index('not a smiles')}" not in ids and f"c{len(smiles) - 1}" in ids
