"""Ctrl-C gives the CLI's clean message and exit code 130, also when it lands inside a library's cleanup and
surfaces as another error (CPython's shutil.rmtree, interrupted between closing a descriptor and noting it, closes
it again and raises EBADF: seen in the e2e Ctrl-C test)."""

from __future__ import annotations

import errno
import os

import pytest

from fedchem.opener.errors import ConfigError, interrupted_by
from fedchem.orchestrator.cli import run as status_cmd
from fedchem.orchestrator.cli.main import main


def _interrupt_broken_into_ebadf():
    """The shape the real one had: a KeyboardInterrupt, then an OSError raised while handling it."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))


def test_interrupted_by_follows_the_chain():
    with pytest.raises(OSError) as caught:
        _interrupt_broken_into_ebadf()
    assert isinstance(interrupted_by(caught.value), KeyboardInterrupt)
    assert interrupted_by(ConfigError("bad", "x", "y")) is None
    assert interrupted_by(ValueError("no interrupt here")) is None


@pytest.mark.parametrize("raised, code, said", [
    (_interrupt_broken_into_ebadf, 130, "interrupted:"),
    (lambda: (_ for _ in ()).throw(KeyboardInterrupt()), 130, "interrupted:"),
    (lambda: (_ for _ in ()).throw(ConfigError("a bad thing", "here", "do this")), 2, "a bad thing"),
])
def test_the_cli_reports_an_interrupt_however_it_surfaces(raised, code, said, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(status_cmd, "_status", lambda args: raised())
    assert main(["status", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_a_bug_is_still_raised(monkeypatch, tmp_path):
    monkeypatch.setattr(status_cmd, "_status", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["status", str(tmp_path)])
