"""`training.keep_freed_memory` (glibc's mallopt, called by `fedchem train-local`): a freed block is reused for the
next one instead of being returned to the system and faulted in again. Real glibc, counted by the kernel's page
faults, in fresh processes; the control is the same loop without the call."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

LOOP = """
import json, resource, sys
import numpy as np
from fedchem.algo import training
took = training.keep_freed_memory() if sys.argv[1] == "keep" else None
np.ones(6 << 20)  # 48 MB: above glibc's largest adaptive threshold (32 MB), so by default always a fresh mapping
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    np.ones(6 << 20)
print(json.dumps({"took": took, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's")


def _faults(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    kept, default = _faults("keep"), _faults("default")
    assert kept["took"] is True
    huge_pages = 4 * (48 << 20) // (2 << 20)  # numpy asks for transparent huge pages: 2 MB a fault at the least
    assert default["faults"] >= huge_pages  # the control: each 48 MB block is fresh memory again
    assert kept["faults"] * 10 < default["faults"]  # the same blocks, reused
