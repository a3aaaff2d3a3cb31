"""Shared test fixtures: where the real public data lives (../shared/data beside the project root).

Tests mirror the packages (tests/opener, tests/algo, ...); their shared builders live in tests/helpers, which is put
on sys.path here so a test imports them by name (`from fedsetup import ...`) wherever it sits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public data sets; CI checks the project out with ../shared beside it."""
    if not (SHARED_DATA / "tox21.csv.gz").is_file():
        pytest.fail(f"real test data not found at {SHARED_DATA}: check the project out with ../shared beside it")
    return SHARED_DATA
