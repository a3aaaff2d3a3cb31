"""Bad partner input: each case gives a clear DataError naming file/line/column (no SMILES, ids or values) and
leaves no output folder; malformed SMILES are the exception (dropped, listed in the report, the run goes on)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from prepare_data import T0_HEADER, T1_HEADER, herg_partner, t0_row, write_csv, write_partner

from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import DataError
from fedchem.opener.prepare import prepare_partner

FP = FingerprintConfig(size=1024)
PREP = PreparationConfig(min_actives_total=5, min_inactives_total=5, min_regression_values=20)
SECRET = b"test-consortium-secret-0123456789"


def run(paths, out: Path, prep: PreparationConfig = PREP):
    return prepare_partner(*paths, out, FP, prep, SECRET, "pharma-t", workers=1)


def read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def rewrite(path: Path, rows: list[list[str]]) -> None:
    write_csv(path, rows[0], rows[1:])


@pytest.fixture
def partner(tmp_path, public_data_dir):
    return herg_partner(tmp_path / "raw", public_data_dir, n=400)


def expect_error(paths, out: Path, *fragments: str, forbidden: tuple[str, ...] = ()) -> DataError:
    with pytest.raises(DataError) as info:
        run(paths, out)
    msg = info.value.message()
    for f in fragments:
        assert f in msg, (f, msg)
    for f in forbidden:
        assert f not in msg, (f, msg)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")], "temp folder left behind"
    return info.value


def test_malformed_smiles_are_dropped_listed_and_the_run_goes_on(partner, tmp_path):
    t0, t1, t2 = partner
    rows = read(t2)
    bad = {rows[3][0]: "C1CC(", rows[7][0]: "CN(C)(C)(C)C", rows[9][0]: ""}  # syntax, valence, empty
    for r in rows[1:]:
        if r[0] in bad:
            r[1] = bad[r[0]]
    rewrite(t2, rows)
    out = tmp_path / "out"
    summary = run(partner, out)
    assert summary.n_dropped_structures == 3
    ds = load_prepared(out)
    kept_ids = {i for c in ds.compound_ids for i in c.split(";")}
    assert not kept_ids & set(bad)
    report = (out / "prep_report.md").read_text()
    section = report.split("## Structures dropped (3)")[1]
    for cid in bad:
        assert f"| {cid} |" in section
    assert "SMILES syntax error" in section and "AtomValenceException" in section and "empty SMILES" in section
    assert ds.X.shape[0] == ds.Y_class.shape[0] == len(ds.folds) == len(ds.compound_ids) > 150


@pytest.mark.parametrize("value", ["abc", "1,5", "7e"])
def test_non_numeric_value_is_an_error_naming_file_and_line(partner, tmp_path, value):
    t0, t1, t2 = partner
    rows = read(t1)
    rows[5][3] = value
    cid = rows[5][0]
    rewrite(t1, rows)
    expect_error(partner, tmp_path / "out", "T1.csv, line 6", "standard_value", forbidden=(cid,))


@pytest.mark.parametrize("value", ["nan", "NaN", "", "inf", "-inf"])
def test_a_row_without_a_value_is_dropped_and_counted_as_tuner_does(partner, tmp_path, value):
    t0, t1, t2 = partner
    rows = read(t1)
    rows[5][3] = value
    rewrite(t1, rows)
    summary = run(partner, tmp_path / "out")
    report = summary.report_path.read_text()
    assert "| T1 rows without a value (empty, NaN or infinite; dropped, as MELLODDY-TUNER does) | 1 |" in report


def test_unknown_qualifier_is_an_error(partner, tmp_path):
    rows = read(partner[1])
    rows[4][2] = "<>"
    rewrite(partner[1], rows)
    expect_error(partner, tmp_path / "out", "T1.csv, line 5", "qualifier", "'<>'", forbidden=(rows[4][0],))


def test_unknown_unit_is_an_error(partner, tmp_path):
    rows = read(partner[1])
    rows[8][4] = "mg/L"
    rewrite(partner[1], rows)
    expect_error(partner, tmp_path / "out", "T1.csv, line 9", "unit", "'mg/L'", "nM")


def test_concentration_must_be_positive(partner, tmp_path):
    rows = read(partner[1])
    rows[2][3] = "0"
    rewrite(partner[1], rows)
    expect_error(partner, tmp_path / "out", "T1.csv, line 3", "> 0")


@pytest.mark.parametrize("table,column", [(0, "direction"), (0, "expert_threshold_1"), (1, "standard_value"),
                                          (1, "standard_qualifier"), (2, "smiles"), (2, "input_compound_id")])
def test_missing_column_is_an_error_naming_file_and_column(partner, tmp_path, table, column):
    path = partner[table]
    rows = read(path)
    j = rows[0].index(column)
    rewrite(path, [r[:j] + r[j + 1:] for r in rows])
    expect_error(partner, tmp_path / "out", path.name, column)


@pytest.mark.parametrize("table", [0, 1, 2])
def test_missing_file_is_an_error_naming_it(partner, tmp_path, table):
    partner[table].unlink()
    expect_error(partner, tmp_path / "out", str(partner[table]), "does not exist")


def test_optional_units_column_may_be_absent(tmp_path):
    smiles = ["c1ccccc1" + "C" * k for k in range(1, 41)] + ["C1CCCCC1" + "O" * k for k in range(1, 41)]
    t2 = [[f"c{i}", s] for i, s in enumerate(smiles)]
    t1 = [[f"c{i}", "A", "=", str(4 + (i % 8) * 0.5)] for i in range(len(smiles))]
    paths = write_partner(tmp_path / "raw", [t0_row("A", (6,))], [], t2)
    write_csv(paths[1], T1_HEADER[:4], t1)
    summary = run(paths, tmp_path / "out", PreparationConfig(min_actives_total=1, min_inactives_total=1,
                                                             min_actives_per_fold=0, min_inactives_per_fold=0,
                                                             min_regression_values=2,
                                                             min_regression_values_per_fold=0))
    ds = load_prepared(summary.out_dir)
    assert ds.Y_regr.shape == (80, 1) and ds.Y_regr.nnz == 80
    assert sorted(set(ds.Y_regr.data.tolist())) == [4.0 + 0.5 * k for k in range(8)]  # no conversion


def test_duplicate_compound_id_with_different_smiles_is_an_error(partner, tmp_path):
    rows = read(partner[2])
    rows.append([rows[3][0], "CCCCCCO"])
    rewrite(partner[2], rows)
    expect_error(partner, tmp_path / "out", "T2.csv", f"line {len(rows)}", "listed twice", "line 4",
                 forbidden=(rows[3][0],))


def test_identical_repeated_t2_row_is_accepted(partner, tmp_path):
    rows = read(partner[2])
    rows.append(list(rows[3]))
    rewrite(partner[2], rows)
    run(partner, tmp_path / "out")
    assert "| T2 rows repeating an earlier row exactly (ignored) | 1 |" in (tmp_path / "out/prep_report.md").read_text()


def test_duplicate_assay_is_an_error(partner, tmp_path):
    rows = read(partner[0])
    rows.append(list(rows[1]))
    rewrite(partner[0], rows)
    expect_error(partner, tmp_path / "out", "T0.csv, line 3", "assay listed twice")


def test_unknown_assay_or_compound_in_t1_is_an_error(partner, tmp_path):
    rows = read(partner[1])
    rows[6][1] = "NOT_IN_T0"
    rewrite(partner[1], rows)
    expect_error(partner, tmp_path / "out", "T1.csv, line 7", "not in the T0", forbidden=("NOT_IN_T0",))
    rows[6][1] = "HERG"
    rows[10][0] = "NOT_IN_T2"
    rewrite(partner[1], rows)
    expect_error(partner, tmp_path / "out", "T1.csv, line 11", "not in the T2", forbidden=("NOT_IN_T2",))


def test_bad_flags_and_directions_in_t0_are_errors(partner, tmp_path):
    rows = read(partner[0])
    rows[1][T0_HEADER.index("direction")] = "up"
    rewrite(partner[0], rows)
    expect_error(partner, tmp_path / "out", "T0.csv, line 2", "direction")
    rows[1][T0_HEADER.index("direction")] = "high"
    rows[1][T0_HEADER.index("is_binary")] = "maybe"
    rewrite(partner[0], rows)
    expect_error(partner, tmp_path / "out", "T0.csv, line 2", "is_binary")


def test_binary_assay_values_must_be_0_or_1(tmp_path):
    paths = write_partner(tmp_path / "raw", [t0_row("B", binary=True, regression=False)],
                          [["a", "B", "=", "1", ""], ["b", "B", "=", "2", ""]], [["a", "CCO"], ["b", "CCN"]])
    expect_error(paths, tmp_path / "out", "T1.csv, line 3", "binary")


def test_task_emptied_by_the_filters_is_dropped_with_a_reason(partner, tmp_path):
    t0, t1, t2 = partner
    rows = read(t1)
    # a second assay with a handful of measurements: too few for the quorum
    rows += [[r[0], "TINY", r[2], r[3], r[4]] for r in rows[1:4]]
    rewrite(t1, rows)
    write_csv(t0, T0_HEADER, read(t0)[1:] + [t0_row("TINY", (5,))])
    out = tmp_path / "out"
    summary = run(partner, out)
    assert summary.n_dropped_tasks == 2
    ds = load_prepared(out)
    assert not [t for t in ds.tasks if t["assay_id"] == "TINY"]
    report = (out / "prep_report.md").read_text()
    dropped = report.split("## Tasks dropped (2)")[1]
    assert "| TINY_class_5 | classification |" in dropped and "fewer than min_" in dropped
    assert "| TINY_regr | regression |" in dropped and "min_regression_values=20" in dropped


def test_all_tasks_emptied_is_an_error_and_writes_nothing(partner, tmp_path):
    strict = PreparationConfig(min_actives_total=10_000, min_inactives_total=10_000, min_regression_values=10_000)
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        run(partner, out, strict)
    assert "no task passes the quorum" in info.value.message()
    assert "min_actives_total=10000" in info.value.message()
    assert not out.exists()


def test_a_failing_run_keeps_the_previous_output_intact(partner, tmp_path):
    out = tmp_path / "out"
    run(partner, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rows = read(partner[1])
    rows[5][3] = "not a number"
    rewrite(partner[1], rows)
    with pytest.raises(DataError):
        run(partner, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]


def test_a_value_in_the_qualifier_column_is_not_echoed(partner, tmp_path):
    rows = read(partner[1])
    rows[4][2] = "7.25"
    rewrite(partner[1], rows)
    err = expect_error(partner, tmp_path / "out", "T1.csv, line 5", "qualifier", "not shown", forbidden=("7.25",))
    assert isinstance(err, DataError)
