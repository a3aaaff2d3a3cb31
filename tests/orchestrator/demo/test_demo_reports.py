"""The demo's last step survives a failing partner report (issue 19): the other partners' reports are written, the
error names the partner in the project's format (what / where / what to do), the exit code is non-zero and no
traceback is printed. `fedchem demo` runs for real on a synthetic output folder whose first four steps are done
(prepared partners, baselines, a completed run), so only step 5 does work.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.demo.pipeline import DEMO_SETTINGS

from synthreport import Case, write_run

NAMES = ["partner-1", "partner-2", "partner-3"]


@pytest.fixture
def demo_out(tmp_path) -> Path:
    out = tmp_path / "demo-output"
    written = write_run(out, {n: Case(seed=i, n_compounds=70, n_class=2, n_regr=1) for i, n in enumerate(NAMES)})
    # the demo resumes only a folder it recognises as its own (issue 13): its consortium carries the demo's name
    doc = yaml.safe_load(written["consortium"].read_text())
    written["consortium"].write_text(yaml.safe_dump({**doc, "name": DEMO_SETTINGS["name"]}))
    return out


def _run_demo(out: Path, capsys) -> tuple[int, str, str]:
    code = cli_main(["demo", "--out", str(out)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _assert_others_written(out: Path, stdout: str, failed: str) -> None:
    for name in NAMES:
        html = out / "reports" / name / "report.html"
        if name == failed:
            assert not html.exists()
        else:
            assert html.is_file() and str(html) in stdout
    assert f"{failed}: report FAILED" in stdout


def test_demo_reports_the_others_when_one_partners_files_are_broken(demo_out, capsys):
    (demo_out / "run" / "partners" / "partner-2" / "test_predictions.npz").write_bytes(b"not a predictions file")
    code, stdout, err = _run_demo(demo_out, capsys)
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in stdout
    _assert_others_written(demo_out, stdout, "partner-2")
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: the report of partner 'partner-2' could not be written (2 of 3 written)")
    assert "test predictions cannot be read" in lines[0]
    where = str(demo_out / "run" / "partners" / "partner-2" / "test_predictions.npz")
    assert f"  where: {where}" in lines
    assert any(ln.startswith("  what to do: the file was damaged") and "same demo command" in ln for ln in lines)


def test_demo_reports_the_others_when_one_report_hits_an_internal_error(demo_out, capsys, monkeypatch):
    """A bug in the report code (here injected into partner-2's page rendering, as the negative error bar of issue
    19 was) is caught too: its traceback goes to a file in that partner's report folder, not to the terminal."""
    from fedchem.orchestrator.report import write as report_write

    real_render = report_write.render

    def render(doc, plots):
        if doc["partner"] == "partner-2":
            raise ValueError("'yerr' must not contain negative values")
        return real_render(doc, plots)

    monkeypatch.setattr(report_write, "render", render)
    code, stdout, err = _run_demo(demo_out, capsys)
    assert code != 0
    assert "Traceback" not in err and "Traceback" not in stdout
    _assert_others_written(demo_out, stdout, "partner-2")
    assert "partner 'partner-2'" in err and "internal error (ValueError: 'yerr' must not contain negative values)" in err
    log = demo_out / "reports" / "partner-2" / "report-error.txt"
    assert str(log) in err
    text = log.read_text()
    assert text.startswith("Traceback") and "in render" in text and "ValueError" in text

    # `fedchem report` for that one partner says the same, in the same format, without a traceback
    code = cli_main(["report", str(demo_out / "run"), "--partner", "partner-2", "--alone",
                     str(demo_out / "alone" / "partner-2"), "--out", str(demo_out / "single"), "--bootstrap", "100"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: the report of partner 'partner-2' failed on an internal error")
    assert "Traceback" not in err and (demo_out / "single" / "report-error.txt").is_file()


def test_several_failures_are_named_each_with_its_own_error():
    from fedchem.opener.errors import DataError
    from fedchem.orchestrator.report.write import reports_failed

    err = reports_failed({"partner-1": DataError("a", where="w1", fix="f1"), "partner-3": DataError("b", fix="f3")},
                         3, again="X")
    assert err.what == "the reports of partners 'partner-1', 'partner-3' could not be written (1 of 3 written): " \
                       "partner-1: a; partner-3: b"
    assert err.where == "partner-1: w1" and err.fix == "partner-1: f1; partner-3: f3; then write it again with X"


def test_demo_refuses_to_mix_splits_in_one_folder(demo_out, capsys):
    """A folder holding the earlier MoleculeACE demo (its old name) is not silently reused for the Tox21 split: the
    error says which split it holds and the flag that finishes it; nothing in it is touched."""
    cpath = demo_out / "raw" / "consortium.yaml"
    doc = yaml.safe_load(cpath.read_text())
    cpath.write_text(yaml.safe_dump({**doc, "name": "demo-moleculeace"}))
    before = sorted(p.relative_to(demo_out) for p in demo_out.rglob("*"))
    code, stdout, err = _run_demo(demo_out, capsys)
    assert code != 0 and "Traceback" not in err
    assert "holds the 'moleculeace-targets' demo" in err and "--split moleculeace-targets" in err
    assert sorted(p.relative_to(demo_out) for p in demo_out.rglob("*")) == before


def test_demo_prints_each_partners_answer(demo_out, capsys):
    code, stdout, err = _run_demo(demo_out, capsys)
    assert code == 0, err
    answer = stdout[stdout.index("Did joining pay?"):]
    for name in NAMES:
        doc = __import__("json").loads((demo_out / "reports" / name / "report.json").read_text())
        assert f"  {name}: {doc['summary'][0]}" in answer
        assert any(line.startswith(f"  {name}: Median change") for line in answer.splitlines())
