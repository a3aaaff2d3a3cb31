"""Shared test fixtures: the real public data sets, shipped with the package (fedchem/opener/public/data).

Tests mirror the packages (tests/opener, tests/algo, ...); their shared builders live in tests/helpers, which is put
on sys.path here so a test imports them by name (`from fedsetup import ...`) wherever it sits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fedchem.opener.public.files import data_dir

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))


@pytest.fixture(scope="session")
def public_data_dir() -> Path:
    """The folder of real public data sets that ships with fedchem (sha256-pinned by its SHA256SUMS)."""
    return data_dir()
