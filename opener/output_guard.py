"""Which folder an output may replace: never a user's folder by mistake.

A command that writes a folder (prepare, train-local, report, run) may replace an existing one only when it is a
previous output of the same command (recognised by its manifest file), or with the command's force flag; and even
with force never a folder that holds the inputs or the configs (or is the current folder or one of its parents),
since replacing it would delete them. A file in the way is refused, never moved aside.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from fedchem.opener.errors import ConfigError


def _real(path: Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def holds(folder: Path, path: Path) -> bool:
    """True if `path` is `folder` or lies inside it (symbolic links resolved)."""
    folder, path = _real(folder), _real(path)
    return path == folder or folder in path.parents


def protected_paths(paths: Iterable[Path | None]) -> list[Path]:
    """The given input/config paths plus the current folder: none may lie inside a folder an output replaces."""
    return [Path(p) for p in paths if p] + [Path.cwd()]


def manifest_format(path: Path) -> str | None:
    """The "format" of a JSON manifest file, or None when it is missing, unreadable or not such a manifest."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc.get("format") if isinstance(doc, dict) and isinstance(doc.get("format"), str) else None


def is_output_of(folder: Path, manifest: str, fmt: str) -> bool:
    """True if `folder/manifest` is a JSON manifest of format `fmt` (the folder is a previous output)."""
    return manifest_format(Path(folder) / manifest) == fmt


def check_output_folder(out: Path, *, command: str, is_previous: Callable[[Path], bool], force: bool = False,
                        force_flag: str | None = "--force", protected: Iterable[Path | None] = (),
                        flag: str = "the output folder") -> None:
    """Refuse to replace `out` unless it is absent, an empty folder, or a previous output of `command`
    (`is_previous`), or `force` is given; never when it holds one of `protected` (inputs, configs) or the current
    folder, force or not. A file (or anything not a folder) at `out` is refused."""
    out = Path(out)
    if out.is_symlink():
        raise ConfigError(f"{flag} names a symbolic link, which would be replaced by a folder", where=str(out),
                          fix=f"give {flag} the folder the link points to ({os.path.realpath(out)}), or a new one")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} names an existing file, not a folder", where=str(out),
                          fix=f"give {flag} the path of a new folder (the file is left as it is)")
    for p in protected_paths(protected):
        if holds(out, p):
            what = "the current folder" if _real(p) == _real(Path.cwd()) else str(p)
            raise ConfigError(f"{flag} names a folder that holds {what}; replacing it would delete it",
                              where=str(out),
                              fix=f"give {flag} a new folder of its own (e.g. a subfolder); `{command}` never "
                                  "replaces a folder holding its inputs, its configs or the current folder")
    if not out.is_dir() or not any(out.iterdir()) or is_previous(out):
        return
    if force:
        return
    fix = "choose a new folder" + (f", or pass {force_flag} to replace it and everything in it" if force_flag
                                   else " (or empty this one)")
    raise ConfigError(f"the output folder already exists and is not an output of `{command}`", where=str(out),
                      fix=fix)

