"""A bare clone is the whole product: no code path reads `../shared` (this team's workbench, not part of fedchem).

Proof in two parts: no file of the package, tests, benches, Makefile or deploy tooling names a `shared` data
path; and a copy of the tracked tree in a temporary folder with no `shared/` beside it collects the same tests
as this checkout and builds a public set from its own shipped data, with the working directory elsewhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("algo", "opener", "metrics", "orchestrator")
# `../shared`, `shared/data`, `"shared" / "data"`, `parents[2] / "shared"`: any way of spelling the workbench path.
_SHARED = re.compile(r"\.\./shared|shared[/\\]data|[\"']shared[\"']\s*[/,)]|/\s*[\"']shared[\"']")
# The one allowed use: the cluster tests' control-plane binaries (an optional tool, like a browser) may come from
# ../shared/k8s; without them those tests skip and say why (tests/helpers/kubecluster.py). Never data.
_OPTIONAL_TOOL = re.compile(r"shared/k8s|[\"']shared[\"']\s*/\s*[\"']k8s[\"']")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_no_source_file_names_a_shared_data_path():
    scanned = 0
    hits = []
    for path in _tracked():
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in (*PACKAGES, "tests", "bench", "deploy", ".ci") and rel.name not in ("Makefile",
                                                                                                  "pyproject.toml"):
            continue
        if path == Path(__file__).resolve() or path.suffix in (".gz", ".whl") or not path.is_file():
            continue
        scanned += 1
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if _SHARED.search(line) and not _OPTIONAL_TOOL.search(line):
                hits.append(f"{rel}:{n}: {line.strip()}")
    assert scanned > 100, scanned
    assert not hits, "\n".join(hits)
    assert _SHARED.search('base / ".." / "shared" / "data"') and _SHARED.search("see ../shared/data")


def _collected(cwd: Path, env: dict | None = None) -> int:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = re.search(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", proc.stdout)
    assert m, proc.stdout[-2000:]
    return int(m.group(1))


def test_a_copy_without_shared_collects_every_test_and_reads_its_own_data(tmp_path):
    """The copy imports its own fedchem (a fedchem/ namespace of symlinks to its folders first on PYTHONPATH)."""
    copy = tmp_path / "clone" / "fedchem-project"
    for path in _tracked():
        rel = path.relative_to(ROOT)
        if path.is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy / rel)
    assert not (copy.parent / "shared").exists()
    site = tmp_path / "site" / "fedchem"
    site.mkdir(parents=True)
    for name in PACKAGES:
        (site / name).symlink_to(copy / name, target_is_directory=True)
    env = {**__import__("os").environ, "PYTHONPATH": str(site.parent), "FEDCHEM_THREADS": "1"}

    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    probe = ("import fedchem.opener, json\n"
             "from fedchem.opener.public.herg import split_herg\n"
             "from fedchem.orchestrator.demo.public_data import build_tox21\n"
             "p = split_herg(2)\n"
             "s = build_tox21('out', 2)\n"
             "print(json.dumps([fedchem.opener.__file__, sum(x.n_measurements for x in p), "
             "sum(x.measurements for x in s.partners)]))\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, n_herg, n_tox21 = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert Path(where).resolve().is_relative_to(copy.resolve()), where  # the copy's own code and data
    assert n_herg == 8989 and n_tox21 > 70_000

    assert _collected(copy, env) == _collected(ROOT)
