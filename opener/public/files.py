"""The public data sets shipped with fedchem (package data, `fedchem/opener/public/data/`), read after a sha256 check.

Every file is listed in `data/SHA256SUMS` and described (source, commit, licence) in `data/README.md`; a reader
also pins the hash it was written for, so a swapped file is refused even when SHA256SUMS was edited with it.
Nothing here looks outside the installed package: a bare clone and a `pip install` see the same files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fedchem.opener.fileio import sha256_file
from fedchem.opener.errors import DataError

SUMS_FILE = "SHA256SUMS"


def data_dir() -> Path:
    """The folder of shipped public data (inside the installed or checked-out `fedchem.opener.public` package)."""
    return Path(str(resources.files("fedchem.opener.public").joinpath("data")))


def pinned_sums(folder: Path | None = None) -> dict[str, str]:
    """file name -> sha256, as listed in the folder's SHA256SUMS (`<hex>  <name>` lines)."""
    folder = Path(folder) if folder is not None else data_dir()
    path = folder / SUMS_FILE
    if not path.is_file():
        raise DataError("the public data folder has no SHA256SUMS", where=str(path),
                        fix="reinstall fedchem (the file ships with the package)")
    sums: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def public_file(name: str, sha256: str, folder: Path | None = None) -> Path:
    """A shipped public data file, checked against SHA256SUMS and against the reader's own pin `sha256`."""
    folder = Path(folder) if folder is not None else data_dir()
    path = folder / name
    if not path.is_file():
        raise DataError(f"public data file '{name}' not found", where=str(path),
                        fix="reinstall fedchem (the public sets ship with the package), or restore the file")
    listed = pinned_sums(folder).get(name)
    if listed != sha256:
        raise DataError(f"public data file '{name}' is not pinned as this reader expects in {SUMS_FILE}",
                        where=str(folder / SUMS_FILE), fix="reinstall fedchem or restore the original SHA256SUMS")
    if sha256_file(path) != sha256:
        raise DataError(f"public data file '{name}' does not match its pinned sha256 (changed or corrupt)",
                        where=str(path), fix=f"restore the original file (see {SUMS_FILE} in that folder)")
    return path
