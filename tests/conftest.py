"""Shared test fixtures: where the real public data lives (../shared/data beside the project root)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public data sets; CI checks the project out with ../shared beside it."""
    if not (SHARED_DATA / "tox21.csv.gz").is_file():
        pytest.fail(f"real test data not found at {SHARED_DATA}: check the project out with ../shared beside it")
    return SHARED_DATA
