"""Prepared datasets of the real public sets for the training benches, built once and cached.

A set is turned into one partner's T0/T1/T2 with the project's own builders (fedchem.opener.public_*), then
prepared with `prepare_partner` (consortium defaults: ECFP4 folded to 32,768 columns, scrambled, 5 scaffold folds)
into <cache>/<set>/prepared. Delete the cache folder to rebuild.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "fedchem-bench-cache"
SECRET = b"bench-consortium-secret-0123456789"


def _tables(name: str):
    if name in ("tox21", "muv"):
        from fedchem.opener.public import moleculenet as mn
        return mn.split_by_compound(f"{name}.csv.gz", 1)[0]
    if name == "herg":
        from fedchem.opener.public import herg as hg
        return hg.split_herg(1)[0]
    raise ValueError(f"unknown public set {name!r}")


def prepared(name: str, cache: Path = DEFAULT_CACHE, quiet: bool = False) -> Path:
    """The prepared folder of public set `name` ("tox21", "muv", "herg"), built on first use."""
    from fedchem.opener.config import FingerprintConfig, PreparationConfig
    from fedchem.opener.prepare import prepare_partner

    out = Path(cache) / name / "prepared"
    if (out / "manifest.json").is_file():
        return out
    raw = Path(cache) / name / "raw"
    if not quiet:
        print(f"[building and preparing {name} into {out} (once; cached)]", flush=True)
    _tables(name).write(raw)
    # MUV tasks have ~30 actives in 93k compounds: a loose quorum keeps them (as bench/prepare.py does)
    prep = (PreparationConfig(min_actives_total=1, min_inactives_total=1, min_actives_per_fold=0,
                              min_inactives_per_fold=0) if name == "muv" else PreparationConfig())
    prepare_partner(raw / "T0.csv", raw / "T1.csv", raw / "T2.csv", out, FingerprintConfig(), prep, SECRET,
                    f"bench-{name}")
    return out
