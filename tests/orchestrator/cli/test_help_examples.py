"""Every example in every `--help` runs as printed, help text fits in 80 columns, and -v/-q work everywhere.

The examples are read from the formatted help itself (indented `fedchem ...` lines, shell continuations joined,
comments dropped) and executed through the real entry point in a folder laid out as they assume: raw/ (a tiny real
MoleculeACE consortium, prepared into raw/prepared/ as `fedchem data` lays it out), alone/, runs/first (a finished
run in `fedchem run`'s layout, from tests/reportsetup.py), demo-output/ and new_compounds.csv. Placeholders in
capitals (RUN_DIR, NAME, ...) and the bare `consortium.yaml` / `DIR/` of some examples are mapped onto that layout.
`fedchem data` examples run in an empty folder; `fedchem prepare` examples in a folder holding only raw/; `fedchem
run` examples (real Substra compute plans, minutes) in the slow test.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fedchem.orchestrator.cli import main as cli

ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDERS = {"RUN_DIR": "runs/first", "PREPARED_DIR": "raw/prepared/partner-1", "NAME": "partner-1",
                "consortium.yaml": "raw/consortium.yaml", "C.yaml": "raw/consortium.yaml",
                "P.yaml": "raw/partner-1/partner.yaml"}


def help_examples() -> list[tuple[str, list[str]]]:
    """(prog, argv without 'fedchem') of every example command in every parser's formatted help."""
    found: dict[tuple[str, ...], list[str]] = {}
    for parser in cli._parsers(cli.build_parser()):
        lines = parser.format_help().splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith(" ") and line.strip().startswith("fedchem "):
                text = line.strip()
                while text.endswith("\\"):
                    i += 1
                    text = text[:-1].rstrip() + " " + lines[i].strip()
                argv = shlex.split(text, comments=True)[1:]
                argv = [PLACEHOLDERS.get(a, a) for a in argv]
                argv = [a.replace("DIR/", "raw/") if a.startswith("DIR/") else a for a in argv]
                found.setdefault(tuple(argv), []).append(parser.prog)
            i += 1
    return [(prog, list(argv)) for argv, progs in found.items() for prog in progs]


def test_examples_are_found_in_every_command_that_has_them():
    progs = {prog.split()[1] if " " in prog else prog for prog, _ in help_examples()}
    assert {"fedchem", "data", "prepare", "train-local", "run", "report", "predict", "export"} <= progs


def test_help_fits_in_80_columns_and_every_parser_has_v_and_q():
    for parser in cli._parsers(cli.build_parser()):
        text = parser.format_help()
        wide = [line for line in text.splitlines() if len(line) > 80]
        assert not wide, (parser.prog, wide)
        assert "-v, --verbose" in text and "-q, --quiet" in text, parser.prog


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"fedchem {version('fedchem')}"


def test_make_help_prints_target_names():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert {"help", "venv", "test", "demo", "bench", "clean", "deploy-partner"} <= set(names), names
    assert not any(n.endswith((".mk", "Makefile")) for n in names)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    """The folder the examples assume, with a finished run at runs/first."""
    from fedsetup import SMALL
    from reportsetup import build_report_inputs

    root = tmp_path_factory.mktemp("examples")
    # its agreement allows the 3 rounds `fedchem run --help`'s example asks for (a run may not exceed the agreement)
    build_report_inputs(root, rounds=2, max_per_target=30,
                        consortium_overrides={"federation": {**SMALL["federation"], "rounds": 3}})
    (root / "runs").mkdir()
    (root / "run").rename(root / "runs" / "first")
    (root / "demo-output").mkdir()
    (root / "demo-output" / "run").symlink_to(root / "runs" / "first", target_is_directory=True)
    (root / "demo-output" / "alone").symlink_to(root / "alone", target_is_directory=True)
    (root / "new_compounds.csv").write_text("input_compound_id,smiles\nn1,CCOc1ccccc1\nn2,c1ccncc1C(=O)N\n")
    return root


def _run(argv: list[str], cwd: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(cwd)
    rc = cli.main(argv)
    captured = capsys.readouterr()
    assert rc == 0, (argv, captured.err[-2000:])


def test_every_help_example_runs_as_printed(layout, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEDCHEM_THREADS", "1")
    examples = list({tuple(argv): argv for _, argv in help_examples() if argv[0] != "run"}.values())
    data_dir, prepare_dir = tmp_path / "data-examples", tmp_path / "prepare-examples"
    data_dir.mkdir()
    shutil.copytree(layout / "raw", prepare_dir / "raw", ignore=shutil.ignore_patterns("prepared"))
    ran = []
    for argv in sorted(examples, key=lambda a: {"data": 0, "prepare": 1}.get(a[0], 2)):
        cwd = data_dir if argv[0] == "data" else prepare_dir if argv[0] == "prepare" else layout
        _run(argv, cwd, monkeypatch, capsys)
        ran.append(argv[0])
    assert {"data", "prepare", "train-local", "report", "predict", "export"} <= set(ran)
    assert (data_dir / "raw" / "consortium.yaml").is_file()
    assert (prepare_dir / "raw" / "prepared" / "partner-1" / "manifest.json").is_file()
    assert (layout / "raw" / "prepared" / "partner-1-alone" / "metrics.json").is_file()
    assert (layout / "model.pt").is_file() and (layout / "sparsechem-input" / "weights_class.csv").is_file()
    assert (layout / "predictions.csv").is_file()


@pytest.mark.slow
def test_every_run_example_runs_as_printed(layout, tmp_path, monkeypatch, capsys):
    """`fedchem run` examples: real Substra compute plans on the tiny consortium (minutes, hence slow)."""
    cwd = tmp_path / "run-examples"
    shutil.copytree(layout / "raw", cwd / "raw", ignore=shutil.ignore_patterns("*-alone"))
    runs = list({tuple(argv): argv for _, argv in help_examples() if argv[0] == "run"}.values())
    assert any("--resume" in a for a in runs)
    for argv in sorted(runs, key=lambda a: "--resume" in a):  # a resume needs its run first
        _run(argv, cwd, monkeypatch, capsys)


def test_verbose_and_quiet_set_the_log_level(tmp_path, capsys):
    import logging

    cli.main(["export", "-q"])
    assert logging.getLogger("fedchem").level == logging.WARNING
    cli.main(["export", "-v"])
    assert logging.getLogger("fedchem").level == logging.DEBUG
    cli.main(["export"])
    assert logging.getLogger("fedchem").level == logging.INFO
    with pytest.raises(SystemExit):
        cli.main(["export", "-v", "-q"])
    assert "not allowed with" in capsys.readouterr().err
